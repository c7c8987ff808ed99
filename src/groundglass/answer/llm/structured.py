"""Schema-constrained generation: JSON that a JSON schema accepts, or a clear error.

The runtimes constrain what the model may write (``LLM.complete_json``):

- llama.cpp: the schema becomes a GBNF grammar (llama-cpp-python's ``json_schema_to_gbnf``, the same
  converter ``create_chat_completion(response_format={"type": "json_object", "schema": ...})`` uses),
  so every sampled token keeps the output inside the schema;
- OpenAI-compatible endpoints: ``response_format: {"type": "json_schema", ...}``, falling back to
  ``json_object`` (with the schema in the prompt) and then plain text for servers that refuse it.

Constraints do not guarantee a valid result (the output can stop at ``max_tokens`` mid-object, a grammar
cannot express every keyword, an endpoint may ignore ``response_format``), so this module checks what
came back: :func:`parse_json_output` finds the JSON value in the text and validates it with the
``jsonschema`` package, raising :class:`StructuredOutputError` when it is malformed. Callers that must
not fail (the planner, related questions) catch that error and fall back.

Keep schemas small and bounded (``maxItems``, ``maxLength``): a bound on the output is what keeps a
small model from writing until ``max_tokens`` and so truncating the JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from groundglass.errors import GroundglassError, ModelError

# A grammar spells out each repetition a count asks for, and llama.cpp's grammar compiler recurses
# through them: "maxLength": 20000 ended the process with SIGSEGV, 2,000-10,000 failed to compile, and
# the converter itself took 1.8 GB for 3e7. A count past this bound is refused when it is a minimum
# (the grammar cannot hold it) and left to the check after generation when it is a maximum or a pattern's.
MAX_GRAMMAR_COUNT = 500
# Deeper schemas made jsonschema's own check recurse past Python's limit (a 500 for 300 nested objects);
# 64 levels of JSON are 32 nested object schemas, more than any answer's shape needs.
MAX_SCHEMA_DEPTH = 64
_MIN_COUNTS = ("minLength", "minItems", "minProperties", "minContains")
_MAX_COUNTS = ("maxLength", "maxItems", "maxProperties", "maxContains")
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


class StructuredOutputError(ModelError):
    """The model's output is not JSON, or is JSON the schema rejects."""

    code = "invalid_model_output"


def schema_key(schema: dict[str, Any]) -> str:
    """A canonical text form of ``schema`` (for caches)."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=64)
def _validator(key: str) -> Any:
    from jsonschema.validators import validator_for

    schema = json.loads(key)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check_schema(schema: Any, *, param: str = "response_format") -> None:
    """Raise :class:`GroundglassError` (``param``) unless ``schema`` is a valid JSON schema object."""
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        raise GroundglassError(
            f"the JSON schema must be an object, got {type(schema).__name__}",
            'pass a schema like {"type": "object", "properties": {...}}',
            param=param,
        )
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise GroundglassError(
            f"the JSON schema is nested more than {MAX_SCHEMA_DEPTH} levels deep",
            "flatten the schema (use $defs for shapes that repeat)",
            param=param,
        )
    where = _find(schema, lambda key, v: isinstance(v, float) and not math.isfinite(v))
    if where is not None:  # jsonschema takes inf and NaN as numbers, but no answer meets such a bound
        raise GroundglassError(
            f"the JSON schema has a number that is not finite at {where or '(top level)'} "
            "(NaN, Infinity, or too large for a double)",
            "write finite numbers in the schema",
            param=param,
        )
    where = _find(schema, _too_long)
    if where is not None:
        raise GroundglassError(
            f"the JSON schema asks for more than {MAX_GRAMMAR_COUNT:,} repetitions at {where}",
            f"ask for at most {MAX_GRAMMAR_COUNT:,} (llama.cpp's grammar cannot hold more)",
            param=param,
        )
    try:
        _validator(schema_key(schema))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(top level)"
        raise GroundglassError(
            f"the JSON schema is invalid at {where}: {exc.message}",
            "fix the schema (see https://json-schema.org)",
            param=param,
        ) from None
    except (TypeError, ValueError) as exc:  # not serialisable
        raise GroundglassError(
            f"the JSON schema is not plain JSON: {exc}",
            "use only objects, arrays, strings, numbers, booleans and null",
            param=param,
        ) from None


def _depth(value: Any, limit: int = MAX_SCHEMA_DEPTH + 1) -> int:
    """How deep ``value`` (parsed JSON) nests, counted up to ``limit`` (so no deep recursion here)."""
    level, frontier = 0, [value]
    while frontier and level < limit:
        nested: list[Any] = []
        for v in frontier:
            nested.extend(v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())
        frontier = [v for v in nested if isinstance(v, dict | list)]
        level += 1
    return level


def _find(value: Any, bad: Callable[[str, Any], bool], path: str = "") -> str | None:
    """The path of the first member of ``value`` (parsed JSON) for which ``bad(key, member)``, else None."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return None
    for key, child in items:
        here = f"{path}/{key}" if path else str(key)
        if bad(key, child):
            return here
        found = _find(child, bad, here)
        if found is not None:
            return found
    return None


def _too_long(key: str, value: Any) -> bool:
    """A minimum count, or a pattern's minimum repetition, that no answer can reach."""
    if key in _MIN_COUNTS:
        return isinstance(value, int | float) and value > MAX_GRAMMAR_COUNT
    if key == "pattern" and isinstance(value, str):
        return any(_count(m.group(1)) > MAX_GRAMMAR_COUNT for m in _REPEAT.finditer(value))
    return False


def grammar_schema(schema: Any) -> Any:
    """``schema`` as a grammar converter should get it: whole floats as integers (JSON Schema counts
    ``"maxLength": 20.0`` as 20, and Python's json.dumps writes a float 20 so, but the converter repeats
    a rule 20.0 times and fails), and without maximum counts or patterns that repeat more than
    MAX_GRAMMAR_COUNT times (they would cost gigabytes; the output is still checked against the whole
    schema afterwards). Call :func:`check_schema` first."""
    if isinstance(schema, float) and schema.is_integer():
        return int(schema)
    if isinstance(schema, list):
        return [grammar_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in _MAX_COUNTS and isinstance(value, int | float) and value > MAX_GRAMMAR_COUNT:
            continue
        if key == "pattern" and isinstance(value, str) and _repeats_past(value):
            continue
        out[key] = grammar_schema(value)
    return out


def _repeats_past(pattern: str) -> bool:
    return any(_count(n) > MAX_GRAMMAR_COUNT for m in _REPEAT.finditer(pattern) for n in m.groups() if n)


def _count(digits: str) -> int:
    """A regex repetition count (Python refuses to read integers of thousands of digits)."""
    return int(digits) if len(digits) <= 9 else 10**9


def validation_errors(value: Any, schema: dict[str, Any], limit: int = 3) -> list[str]:
    """Up to ``limit`` readable reasons why ``schema`` rejects ``value`` (empty when it accepts it)."""
    errors = sorted(_validator(schema_key(schema)).iter_errors(value), key=lambda e: list(e.path))
    out = []
    for err in errors[:limit]:
        where = "/".join(str(p) for p in err.path) or "(top level)"
        out.append(f"{where}: {err.message}")
    return out


def extract_json(text: str) -> Any:
    """The JSON value in ``text``: the whole text, a fenced block, or the first balanced object or array.

    Raises ``ValueError`` when there is none. Grammar-constrained output is plain JSON; the rest is for
    endpoints that could not be constrained and wrap their JSON in prose or a code fence."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    for i, ch in enumerate(stripped):
        if ch in "{[":
            try:
                value, _ = decoder.raw_decode(stripped, i)
            except ValueError:
                continue
            return value
    raise ValueError("no JSON object or array in the text")


def _snippet(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_json_output(text: str, schema: dict[str, Any], *, model: str, finish_reason: str = "stop") -> Any:
    """The value ``text`` holds, checked against ``schema``; :class:`StructuredOutputError` otherwise."""
    try:
        value = extract_json(text)
    except ValueError:
        if finish_reason == "length":
            raise StructuredOutputError(
                f"{model} stopped at max_tokens before finishing its JSON output: {_snippet(text)!r}",
                "raise max_tokens, or bound the schema (maxItems, maxLength)",
            ) from None
        shown = _snippet(text) or "(empty)"
        raise StructuredOutputError(
            f"{model} returned text that is not JSON: {shown!r}",
            "use a model or endpoint that supports JSON output",
        ) from None
    problems = validation_errors(value, schema)
    if problems:
        raise StructuredOutputError(
            f"{model} returned JSON that does not match the schema ({'; '.join(problems)}): "
            f"{_snippet(text)!r}",
            "simplify the schema, or use a model or endpoint that supports schema-constrained output",
        )
    return value


def json_instruction(schema: dict[str, Any]) -> str:
    """What to tell a model that cannot be constrained (appended to the last message)."""
    return "Reply with one JSON value only, no other text, that matches this JSON schema:\n" + json.dumps(
        schema, separators=(",", ":")
    )
