"""``response_format: {"type": "regex", "regex": {"regex": PATTERN}}`` (Perplexity's): an answer that
the pattern matches in full.

The pattern travels as the JSON schema ``{"type": "string", "pattern": "^(PATTERN)$"}``, so it rides
the engine's structured-output path unchanged: llama.cpp samples under the grammar that its own
converter (llama-cpp-python's ``SchemaConverter``, the port of llama.cpp's json-schema-to-grammar)
builds from the pattern, an OpenAI-compatible endpoint gets it as a ``json_schema``, and the result is
checked with ``jsonschema``. What comes back is a JSON string; :func:`plain_answers` turns the answer
into the string itself before the client sees it, streamed or not.

The pattern is parsed by Python's own regex parser and written out again in the plain form the
converter reads correctly (:func:`canonical`): it would write ``\\d`` as the letter d, quantify only
the last character of an escape, and loop for ever on a class that starts with ``]``. Classes are
spelled out in hex escapes, ``\\d \\w \\s`` as their ASCII ranges. Since the answer travels as a
JSON string, ``.`` and classes never write a double quote or a backslash, and a pattern that must is
refused. What the converter cannot express (lookarounds, backreferences, anchors inside, flags) is a
400 naming it, before any work starts, as is a repetition over :data:`MAX_REPEAT` (llama.cpp expands
repetitions into rules).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from re import _parser as sre  # Python's own regex parser: no public name (sre_parse is deprecated)
from typing import Any

from groundglass.answer.events import Done, Event, Token
from groundglass.server.errors import APIError

PARAM = "response_format.regex.regex"
MAX_REPEAT = 500  # the largest {m,n} count: llama.cpp expands repetitions into grammar rules
MAX_GRAMMAR_CHARS = 20_000
SUPPORTED = (
    "literals, [classes] (with \\d \\w \\s), (groups), |, . and the quantifiers * + ? {m,n}; no "
    "lookarounds, backreferences, anchors inside or flags"
)


def _core(pattern: str) -> str:
    """The pattern without the anchors the caller may have written (the schema adds its own)."""
    core = pattern[1:] if pattern.startswith("^") else pattern
    if core.endswith("$") and not core.endswith("\\$"):
        core = core[:-1]
    return core


_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-,:;/@#%&=<>~'!`")
_QUOTE, _BACKSLASH = 0x22, 0x5C  # never written: the answer travels as a JSON string
_CATEGORY_RANGES = {  # ASCII, as the grammar spells them (Python's \d and \w also take other scripts)
    "CATEGORY_DIGIT": [(0x30, 0x39)],
    "CATEGORY_WORD": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "CATEGORY_SPACE": [(0x09, 0x0D), (0x20, 0x20)],
}
_UNSUPPORTED_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE


def _refuse(what: str) -> APIError:
    return APIError(
        400,
        f"{what} cannot be honoured here: use {SUPPORTED}",
        code="invalid_value",
        param=PARAM,
    )


def _hex(code: int) -> str:
    return f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def _literal(code: int) -> str:
    if code in (_QUOTE, _BACKSLASH):
        raise _refuse("a regex that writes a double quote or a backslash")
    char = chr(code)
    return char if char in _SAFE else _hex(code)


def _without_quote(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` less the double quote and the backslash."""
    out = []
    for lo, hi in ranges:
        for cut in (_QUOTE, _BACKSLASH):
            if lo <= cut <= hi:
                if lo < cut:
                    out.append((lo, cut - 1))
                lo = cut + 1
        if lo <= hi:
            out.append((lo, hi))
    return out


def _class(items: list[tuple[Any, Any]]) -> str:
    if len(items) == 1 and str(items[0][0]) == "CATEGORY" and "_NOT_" in str(items[0][1]):
        items = [("NEGATE", None), ("CATEGORY", str(items[0][1]).replace("_NOT_", "_"))]  # \D alone
    negate = False
    ranges: list[tuple[int, int]] = []
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            ranges.append((av, av))
        elif name == "RANGE":
            ranges.append(av)
        elif name == "CATEGORY" and str(av) in _CATEGORY_RANGES:
            ranges += _CATEGORY_RANGES[str(av)]
        else:
            raise _refuse(f"{str(av).lower().replace('_', ' ')} inside [...]")
    if negate:  # nor a quote or a backslash
        ranges += [(_QUOTE, _QUOTE), (_BACKSLASH, _BACKSLASH)]
    else:
        ranges = _without_quote(ranges)
        if not ranges:
            raise _refuse("a class of only a double quote or a backslash")
    body = "".join(_hex(lo) if lo == hi else f"{_hex(lo)}-{_hex(hi)}" for lo, hi in ranges)
    return f"[{'^' if negate else ''}{body}]"


def _quantifier(low: int, high: Any, scale: int) -> str:
    """The quantifier; ``scale``: how many times the enclosing repetitions repeat this one already."""
    unbounded = high is sre.MAXREPEAT
    if scale * max(low, 0 if unbounded else high) > MAX_REPEAT:
        raise APIError(
            400,
            f"the regex repeats something more than {MAX_REPEAT} times (counting repetitions inside "
            "repetitions): llama.cpp expands each "
            "repetition into its grammar; use a smaller count",
            code="invalid_value",
            param=PARAM,
        )
    if unbounded:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if (low, high) == (0, 1):
        return "?"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _emit(parsed: Any, scale: int = 1) -> str:
    """A parsed pattern as the regex the converter reads without surprises: every character that is
    not a plain letter, digit or punctuation mark as a hex escape, every class spelled out (so no
    ``]`` or ``^`` where the converter would loop or misread it), every repeated part in a group."""
    out = []
    for op, av in parsed:
        name = str(op)
        if name == "LITERAL":
            out.append(_literal(av))
        elif name == "NOT_LITERAL":
            out.append(_class([("NEGATE", None), ("LITERAL", av)]))
        elif name == "ANY":  # any character but a newline (and the quote and backslash)
            out.append(f"[^{_hex(0x0A)}{_hex(_QUOTE)}{_hex(_BACKSLASH)}]")
        elif name == "IN":
            out.append(_class(av))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = av
            quantifier = _quantifier(low, high, scale)
            count = low if high is sre.MAXREPEAT else high
            out.append(f"({_emit(sub, scale * max(count, 1))}){quantifier}")
        elif name == "SUBPATTERN":
            _, add_flags, del_flags, sub = av
            if add_flags or del_flags:
                raise _refuse("a group with its own flags")
            out.append(f"({_emit(sub, scale)})")
        elif name == "BRANCH":
            out.append("(" + "|".join(_emit(b, scale) for b in av[1]) + ")")
        else:  # anchors inside, lookarounds, backreferences, conditionals, atomic groups
            raise _refuse(f"{name.lower().replace('_', ' ')} ({name})")
    return "".join(out)


def canonical(core: str) -> str:
    """``core`` (a Python regex without its outer anchors) rewritten for llama.cpp's converter; a 400
    for what it cannot express."""
    try:
        parsed = sre.parse(core)
    except (re.error, OverflowError, RecursionError) as exc:
        raise APIError(400, f"the regex is invalid: {exc}", code="invalid_value", param=PARAM) from exc
    if parsed.state.flags & _UNSUPPORTED_FLAGS:
        raise _refuse("a regex with flags ((?i), (?m), (?s), (?x))")
    return _emit(parsed)


def regex_schema(pattern: str) -> dict[str, Any]:
    """The JSON schema of a string the whole of which ``pattern`` matches; a 400 for a pattern that
    Python cannot compile or llama.cpp's grammar converter cannot express."""
    if not pattern:
        raise APIError(400, "the regex is empty", code="invalid_value", param=PARAM)
    schema = {"type": "string", "pattern": f"^({canonical(_core(pattern))})$"}
    from llama_cpp.llama_grammar import SchemaConverter

    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    try:
        converter.visit(schema, "")
        grammar = converter.format_grammar()
    except Exception as exc:  # the converter asserts on what it cannot express
        raise _refuse(f"this regex ({exc or type(exc).__name__})") from exc
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
