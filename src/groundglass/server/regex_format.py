"""``response_format: {"type": "regex", "regex": {"regex": PATTERN}}`` (Perplexity's): an answer that
the pattern matches in full.

The pattern travels as the JSON schema ``{"type": "string", "pattern": "^(PATTERN)$"}``, so it rides
the engine's structured-output path unchanged: llama.cpp samples under the grammar that its own
converter (llama-cpp-python's ``SchemaConverter``, the port of llama.cpp's json-schema-to-grammar)
builds from the pattern, an OpenAI-compatible endpoint gets it as a ``json_schema``, and the result is
checked with ``jsonschema``. What comes back is a JSON string; :func:`plain_answers` turns the answer
into the string itself before the client sees it, streamed or not.

The converter handles literals, classes, groups, alternation, ``.`` and the quantifiers ``* + ? {m,n}``
(``\\d``, ``\\w`` and ``\\s`` are spelled out as classes first: it would write them as letters);
a pattern it cannot express (lookarounds, ``(?:...)``, backreferences) is a 400 naming it, checked
here before any work starts rather than found by a grammar that silently falls back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from groundglass.answer.events import Done, Event, Token
from groundglass.server.errors import APIError

PARAM = "response_format.regex.regex"
MAX_REPEAT = 500  # the largest {m,n} count: llama.cpp expands repetitions into grammar rules
MAX_GRAMMAR_CHARS = 20_000
SUPPORTED = "literals, [classes], (groups), |, . and the quantifiers * + ? {m,n}"


def _core(pattern: str) -> str:
    """The pattern without the anchors the caller may have written (the schema adds its own)."""
    core = pattern[1:] if pattern.startswith("^") else pattern
    if core.endswith("$") and not core.endswith("\\$"):
        core = core[:-1]
    return core


_CLASSES = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " \\t\\n\\r"}


def _expand_classes(core: str) -> str:
    """``\\d``, ``\\w``, ``\\s`` (and, outside brackets, ``\\D``, ``\\W``, ``\\S``) as explicit classes:
    the converter would write them as the letters d, w, s."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(core):
        c = core[i]
        if c == "\\" and i + 1 < len(core):
            nxt = core[i + 1]
            if nxt.lower() in _CLASSES:
                chars = _CLASSES[nxt.lower()]
                if nxt.islower():
                    out.append(chars if in_class else f"[{chars}]")
                elif in_class:
                    raise APIError(
                        400,
                        f"\\{nxt} inside [...] cannot be honoured here: list the characters instead",
                        code="invalid_value",
                        param=PARAM,
                    )
                else:
                    out.append(f"[^{chars}]")
            else:
                out.append(core[i : i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def regex_schema(pattern: str) -> dict[str, Any]:
    """The JSON schema of a string the whole of which ``pattern`` matches; a 400 for a pattern that
    Python cannot compile or llama.cpp's grammar converter cannot express."""
    if not pattern:
        raise APIError(400, "the regex is empty", code="invalid_value", param=PARAM)
    core = _core(pattern)
    try:
        re.compile(core)
    except re.error as exc:
        raise APIError(400, f"the regex is invalid: {exc}", code="invalid_value", param=PARAM) from exc
    if '"' in core or "\\\\" in core:
        # the grammar writes them raw inside the JSON string the answer travels as, which breaks it
        raise APIError(
            400,
            'a regex that writes a double quote or a backslash cannot be honoured here: leave " and \\\\ out',
            code="invalid_value",
            param=PARAM,
        )
    schema = {"type": "string", "pattern": f"^({_expand_classes(core)})$"}
    from llama_cpp.llama_grammar import SchemaConverter

    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    counts = [int(n) for n in re.findall(r"\{(\d+)(?:,(\d*))?\}", core) for n in n if n]
    if any(n > MAX_REPEAT for n in counts):
        raise APIError(
            400,
            f"the regex repeats something more than {MAX_REPEAT} times: llama.cpp expands each "
            "repetition into its grammar; use a smaller count",
            code="invalid_value",
            param=PARAM,
        )
    try:
        converter.visit(schema, "")
        grammar = converter.format_grammar()
    except Exception as exc:  # the converter asserts on what it cannot express
        raise APIError(
            400,
            f"llama.cpp's grammar cannot express this regex ({exc or type(exc).__name__}): use "
            f"{SUPPORTED}; no lookarounds, (?:...) groups or backreferences",
            code="invalid_value",
            param=PARAM,
        ) from exc
    if len(grammar) > MAX_GRAMMAR_CHARS:
        raise APIError(
            400,
            f"the regex makes a grammar of {len(grammar):,} characters, over {MAX_GRAMMAR_CHARS:,}: "
            "simplify it",
            code="invalid_value",
            param=PARAM,
        )
    return schema


def _string_value(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def plain_answers(events: Iterator[Event]) -> Iterator[Event]:
    """``events`` with the answer's JSON string (one Token, and the end of the answer's content) given
    as the string itself. Closing this closes ``events`` (which stops the model)."""
    written: str | None = None  # the JSON text of the answer, as the model wrote it
    try:
        for event in events:
            if isinstance(event, Token) and (value := _string_value(event.text)) is not None:
                written, event = event.text, Token(value)
            elif isinstance(event, Done) and written is not None:
                answer = event.answer
                head, found, _ = answer.content.rpartition(written)
                if found:
                    answer.content = head + str(_string_value(written))
            yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
