"""GBNF grammars from JSON schemas, for llama.cpp's constrained sampling.

llama-cpp-python's converter (``llama_cpp.llama_grammar.SchemaConverter``) handles the schema, except
for an integer's bounds: it leaves ``minimum``/``maximum`` (and the exclusive forms) out, so a model can
write ``"born": 1000000000000000`` under ``"maximum": 2100`` and the validation afterwards fails. The
converter of llama.cpp's C++ side handles bounds, but the Python package does not ship it, and no
maintained package on PyPI turns a number range into a grammar. :class:`BoundedConverter` adds that
one case by hand: it writes an integer range as the alternation of digit patterns that match exactly
its members (the classic range-to-regex construction), and leaves everything else to the library.

Numbers with no upper bound are capped at :data:`MAX_DIGITS` digits, as the library's own integer rule
is, so that a greedy model cannot run on digit after digit.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from groundglass.answer.llm import structured
from groundglass.log import get_logger

log = get_logger(__name__)

MAX_DIGITS = 16
_BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def integer_bounds(schema: dict[str, Any]) -> tuple[int | None, int | None]:
    """The inclusive ``(lowest, highest)`` integers that ``schema``'s bounds allow; None where unbounded."""
    lo: int | None = None
    hi: int | None = None
    if isinstance(schema.get("minimum"), int | float):
        lo = math.ceil(schema["minimum"])
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        x = math.floor(schema["exclusiveMinimum"]) + 1
        lo = x if lo is None else max(lo, x)
    if isinstance(schema.get("maximum"), int | float):
        hi = math.floor(schema["maximum"])
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        x = math.ceil(schema["exclusiveMaximum"]) - 1
        hi = x if hi is None else min(hi, x)
    return lo, hi


def _digits(lo: str, hi: str) -> list[str]:
    """GBNF sequences matching exactly the digit strings of one length from ``lo`` to ``hi`` (lo <= hi)."""
    if lo == hi:
        return [f'"{lo}"']
    rest = len(lo) - 1
    if rest == 0:
        return [f"[{lo}-{hi}]"]
    if lo[0] == hi[0]:
        return [f'"{lo[0]}" ({" | ".join(_digits(lo[1:], hi[1:]))})']
    if lo[1:] == "0" * rest and hi[1:] == "9" * rest:
        return [f"[{lo[0]}-{hi[0]}] [0-9]{{{rest}}}"]
    out = [f'"{lo[0]}" ({" | ".join(_digits(lo[1:], "9" * rest))})']
    low, high = int(lo[0]) + 1, int(hi[0]) - 1
    if low <= high:
        out.append(f"[{low}-{high}] [0-9]{{{rest}}}")
    out.append(f'"{hi[0]}" ({" | ".join(_digits("0" * rest, hi[1:]))})')
    return out


def _natural(lo: int, hi: int | None) -> list[str]:
    """GBNF alternatives for the integers ``lo`` (>= 0) to ``hi`` (None: up to MAX_DIGITS digits)."""
    top = hi if hi is not None else 10**MAX_DIGITS - 1
    out: list[str] = []
    for length in range(len(str(lo)), len(str(top)) + 1):
        first = max(lo, 10 ** (length - 1) if length > 1 else 0)
        last = min(top, 10**length - 1)
        if first <= last:
            out.extend(_digits(str(first), str(last)))
    return out


def integer_rule(lo: int | None, hi: int | None) -> str:
    """A GBNF expression for the JSON integers from ``lo`` to ``hi`` inclusive (None: unbounded).

    Raises ``ValueError`` when the range is empty."""
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"no integer lies between {lo} and {hi}")
    out: list[str] = []
    if hi is None or hi >= 0:
        out.extend(_natural(max(lo, 0) if lo is not None else 0, hi))
    if lo is None or lo < 0:
        smallest = -hi if hi is not None and hi < 0 else 1
        out.extend(f'"-" {alt}' for alt in _natural(smallest, -lo if lo is not None else None))
    return " | ".join(f"({alt})" if " | " in alt else alt for alt in out)


def _bounded_converter() -> Any:
    from llama_cpp.llama_grammar import RESERVED_NAMES, SchemaConverter

    class BoundedConverter(SchemaConverter):  # type: ignore[misc]
        """The library's converter, with integer bounds honoured."""

        def visit(self, schema: Any, name: str) -> Any:
            if (
                isinstance(schema, dict)
                and schema.get("type") == "integer"
                and any(k in schema for k in _BOUND_KEYS)
            ):
                rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
                return self._add_rule(rule_name, f"({integer_rule(*integer_bounds(schema))}) space")
            return super().visit(schema, name)

    return BoundedConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def gbnf(schema: dict[str, Any]) -> str:
    """The GBNF text of a grammar for ``schema`` (after :func:`structured.grammar_schema`)."""
    converter = _bounded_converter()
    resolved = converter.resolve_refs(structured.grammar_schema(schema), "input")
    converter.visit(resolved, "")
    text: str = converter.format_grammar()
    return text


@lru_cache(maxsize=64)
def grammar_for(schema_text: str) -> Any:
    """The llama.cpp grammar for a JSON schema given as text. The grammar writes properties in the
    schema's order, so list first what the model should decide first. Any-JSON when the converter
    cannot handle the schema (the result is still validated against it afterwards)."""
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    try:
        return LlamaGrammar.from_string(gbnf(json.loads(schema_text)), verbose=False)
    except Exception as exc:  # the converter asserts/raises on keywords it does not support
        log.warning("json_schema_grammar_fallback", error=repr(exc))
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
