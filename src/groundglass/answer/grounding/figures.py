"""Numbers as an answer writes them and as a source prints them, with their units and precision.

``1,000`` = ``1000`` = ``1k`` = ``one thousand``; ``10 MB`` = ``10MB``; ``0.5`` = ``.5``. A figure
carries the rounding step its writer used, so ``8,849 m`` matches a source's ``8,848.86 m`` while a
bare ``4`` does not match ``3.8``.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass

UNITS = {
    "%": "%",
    "percent": "%",
    "per cent": "%",
    "pct": "%",
    "b": "byte",
    "byte": "byte",
    "bytes": "byte",
    "kb": "kb",
    "kib": "kb",
    "kilobyte": "kb",
    "kilobytes": "kb",
    "mb": "mb",
    "mib": "mb",
    "megabyte": "mb",
    "megabytes": "mb",
    "gb": "gb",
    "gib": "gb",
    "gigabyte": "gb",
    "gigabytes": "gb",
    "tb": "tb",
    "tib": "tb",
    "terabyte": "tb",
    "terabytes": "tb",
    "ms": "ms",
    "millisecond": "ms",
    "milliseconds": "ms",
    "msec": "ms",
    "µs": "us",
    "us": "us",
    "microsecond": "us",
    "microseconds": "us",
    "ns": "ns",
    "nanosecond": "ns",
    "nanoseconds": "ns",
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "min",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
    "m": "m",
    "metre": "m",
    "metres": "m",
    "meter": "m",
    "meters": "m",
    "km": "km",
    "kilometre": "km",
    "kilometres": "km",
    "kilometer": "km",
    "kilometers": "km",
    "km2": "km2",
    "km²": "km2",
    "mi2": "mi2",
    "mi²": "mi2",
    "m2": "m2",
    "m²": "m2",
    "cm": "cm",
    "mm": "mm",
    "ft": "ft",
    "feet": "ft",
    "foot": "ft",
    "mi": "mi",
    "mile": "mi",
    "miles": "mi",
    "kg": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "lb": "lb",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "hz": "hz",
    "khz": "khz",
    "mhz": "mhz",
    "ghz": "ghz",
    "px": "px",
    "pixel": "px",
    "pixels": "px",
    "pt": "pt",
    "°c": "°c",
    "°f": "°f",
}
SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "dozen": 12,
    "twice": 2,
    "once": 1,
    "single": 1,
    "double": 2,
    "triple": 3,
    "half": 0.5,
}
# "one" is more often a pronoun than a count ("one of the modules"), "once" and "single" too: in an
# answer they are not claims unless a scale or a unit follows ("one million", "one minute"); in a source
# they still count as evidence.
_NOT_CLAIMS = {"one", "once", "single", "half", "double"}
_NUMBER = re.compile(
    # "20.4.1" (a section, a version, an address) is no figure: nor is its "20.4"
    r"(?<![\w.])(?P<num>\d+(?:\.\d+)?[eE][-+]?\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\.?\d)"
    r"(?:(?:st|nd|rd|th)\b)?"
    r"(?P<unit>\s?(?:per cent|[a-zA-Zµ°%]+[23²³]?(?![\w²³])|%))?"
)
_NUMBER_WORD = re.compile(
    r"\b("
    + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
    + r")(?:-(one|two|three|four|five|six|seven|eight|nine))?\b",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:about|approximately|approx\.?|around|roughly|nearly|almost|over|some|"
    r"more than|less than|under|up to|close to|estimated)\s*$|~\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Number:
    value: float
    unit: str | None  # canonical unit ("mb", "s", "%"), None when none or not a unit
    text: str  # as written
    precision: float  # the rounding step the writer used: 1 for "8,849", 1e6 for "14 million"
    start: int = 0


def _power_of_ten(exponent: int) -> float:
    return math.inf if exponent > sys.float_info.max_10_exp else 10.0**exponent  # small ones go to 0.0


def _precision(digits: str, scale: float, hedged: bool) -> float:
    if "e" in digits.lower():  # 1e-09, 1.5E+3: the mantissa's last digit, scaled
        mantissa, exponent = digits.lower().split("e")
        # beyond float's range (the decimal module's docs print 1e9999999999999999999) the value
        # is inf or 0.0 anyway; so is its step, where ``10.0 ** e`` would raise OverflowError
        return _precision(mantissa, scale, hedged) * _power_of_ten(int(exponent))
    if "." in digits:
        return 10.0 ** -len(digits.split(".")[1]) * scale
    step = 1.0
    if hedged or scale > 1:  # "about 1,900", "14 million": trailing zeros are rounding
        stripped = digits.replace(",", "")
        zeros = len(stripped) - len(stripped.rstrip("0"))
        step = 10.0**zeros if stripped.strip("0") else 1.0
    return step * scale


# a number that names a part of the document, not a quantity: "Section 20.4", "Table 3", "§ 2"
_REFERENCE = re.compile(
    r"(?:\b(?:sections?|chapters?|tables?|figures?|examples?|appendix|part|step)|§)\s*$", re.IGNORECASE
)


def _numbering(text: str, m: re.Match[str]) -> bool:
    """Whether the number ``m`` numbers a section, a heading or a list item ("20.4. Resource
    Consumption", "See Section 20.4", "1. Install it"): the model read a page title's "20.4." as the
    default of a setting, and the value check found it in the same title."""
    if _REFERENCE.search(text[max(0, m.start() - 12) : m.start()]):
        return True
    line_start = text.rfind("\n", 0, m.start()) + 1
    after = text[m.end("num") : m.end("num") + 2]  # "20.4." then a space, a new line or the end
    opens_line = not text[line_start : m.start()].strip(" -*•#")
    return opens_line and after[:1] == "." and after[1:2] in ("", " ", "\n")


_SHIFT_BEFORE = re.compile(r"(?:<<|>>)\s*\(?\s*$")
_SHIFT_AFTER = re.compile(r"^\s*(?:<<|>>)")


def _shift_operand(text: str, m: re.Match[str]) -> bool:
    """Whether the number ``m`` is an operand of a bit shift, as C headers define codes
    (``#define SQLITE_CONSTRAINT_UNIQUE (SQLITE_CONSTRAINT | (8<<8))``): neither 8 is the value, and
    the default model answered "... SQLITE_CONSTRAINT_UNIQUE ... is 8" (it is 2067)."""
    before = text[max(0, m.start() - 4) : m.start()]
    return bool(_SHIFT_BEFORE.search(before) or _SHIFT_AFTER.match(text[m.end("num") : m.end("num") + 4]))


def numbers(text: str, *, claims: bool = False) -> list[Number]:
    """The numbers of ``text`` with their units. ``claims``: as an answer states them (pronoun-like
    number words left out)."""
    out: list[Number] = []
    for m in _NUMBER.finditer(text):
        if _numbering(text, m) or _shift_operand(text, m):
            continue
        digits = m.group("num")
        value = float(digits.replace(",", ""))
        unit_text = (m.group("unit") or "").strip()
        key = unit_text.lower()
        scale, unit = 1.0, None
        if key in SCALES and not (key == "k" and m.group("unit").startswith(" ")):
            scale = SCALES[key]
            rest = text[m.end() :]
            following = re.match(r"\s?([a-zA-Z%]+)\b", rest)
            if following and following.group(1).lower() in UNITS:
                unit = UNITS[following.group(1).lower()]
        elif key in UNITS and not (key == "s" and not m.group("unit").startswith(" ")):
            unit = UNITS[key]  # "30 s" is seconds, "1990s" a decade
        hedged = bool(_HEDGE.search(text[max(0, m.start() - 16) : m.start()]))
        shown = m.group(0).strip() if unit or scale > 1 else digits
        out.append(Number(value * scale, unit, shown, _precision(digits, scale, hedged), m.start()))
    for m in _NUMBER_WORD.finditer(text):
        word = m.group(1).lower()
        after = re.match(r"\s?([a-zA-Z%]{3,})\b", text[m.end() :])  # "five seconds", "two million"
        scale = SCALES.get(after.group(1).lower(), 1.0) if after else 1.0
        unit = UNITS.get(after.group(1).lower()) if after else None
        # "one of the modules" is a pronoun; "one million times" and "one minute" are figures
        if claims and word in _NOT_CLAIMS and not m.group(2) and scale == 1.0 and unit is None:
            continue
        value = _NUMBER_WORDS[word] + (_NUMBER_WORDS[m.group(2).lower()] if m.group(2) else 0)
        out.append(Number(value * scale, unit, m.group(0), scale, m.start()))
    if not claims:
        # a source's product states its value too: Node.js's "maxBuffer ... Default: 1024 * 1024." is
        # the 1048576 bytes that "1 MB" restates (an answer's own products are not claims of it)
        for m in _PRODUCT.finditer(text):
            value = math.prod(float(f) for f in re.findall(r"\d+", m.group(0)))
            out.append(Number(value, None, m.group(0), 1.0, m.start()))
    return out


_PRODUCT = re.compile(r"(?<![\w.])\d+(?:\s*[*×]\s*\d+)+(?!\w|\.\d)")


# Sizes in bytes, by their power of 1024 (or of 1000: a manual may mean either)
_BYTE_POWERS = {"byte": 0, "kb": 1, "mb": 2, "gb": 3, "tb": 4}


def _same_size(claim: Number, evidence: Number) -> bool:
    """A size stated in another unit: "1 gigabyte" for a source's "1073741824" (bytes), rounded as the
    claim is written ("1.07 GB", not "1073 MB") and close to it."""
    powers = _BYTE_POWERS[evidence.unit or "byte"] - _BYTE_POWERS[claim.unit or "byte"]
    return any(_restated(claim, evidence.value * base**powers) for base in (1024, 1000))


def _same_time(claim: Number, evidence: Number) -> bool:
    """A duration stated in another unit: "15 minutes" for "900 seconds", rounded as the claim is
    written."""
    return _restated(claim, evidence.value * _SECONDS[evidence.unit or ""] / _SECONDS[claim.unit or ""])


def _restated(claim: Number, stated: float) -> bool:
    """Whether ``stated`` (a source's figure, in the claim's unit) is the claim's figure, rounded as
    the claim is written and close to it."""
    step = claim.precision if claim.precision > 0 else 1.0
    rounded = round(stated / step) * step
    return math.isclose(rounded, claim.value, rel_tol=1e-9) and math.isclose(
        claim.value, stated, rel_tol=SIZE_TOLERANCE
    )


SIZE_TOLERANCE = 0.05  # "1 GB" for 1073741824 bytes (base 1000: 7% off, base 1024: exact), not for 1.5e9
_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "day": 86400.0,
    "week": 604800.0,
}


def same_number(claim: Number, evidence: Number) -> bool:
    """Does ``evidence`` (from a source) state ``claim``'s figure, at the claim's precision? A size may
    be stated in another unit of bytes (a bare figure in the source counts as bytes), a duration in
    another unit of time."""
    sizes = claim.unit in _BYTE_POWERS and (evidence.unit or "byte") in _BYTE_POWERS
    if sizes and claim.unit != evidence.unit and _same_size(claim, evidence):
        return True
    times = claim.unit in _SECONDS and evidence.unit in _SECONDS
    if times and claim.unit != evidence.unit and _same_time(claim, evidence):
        return True
    if claim.unit and evidence.unit and claim.unit != evidence.unit:
        return False
    if math.isclose(claim.value, evidence.value, rel_tol=1e-9, abs_tol=1e-12):
        return True
    if not (math.isfinite(claim.value) and math.isfinite(evidence.value)):
        return False  # 1e500 is inf, the same only as itself; round() of it would raise
    step = claim.precision
    if step <= 0:
        return False
    if step >= 1 and abs(claim.value) < 10 and not claim.unit:
        # a bare single digit is a setting, a level, a version ("protocol 4", "level 9"), not a rounded
        # measurement: "3.8" in a source does not say "4"
        return False
    return math.isclose(round(evidence.value / step) * step, claim.value, rel_tol=1e-9, abs_tol=step * 1e-6)


def distinctive(n: Number) -> bool:
    """A figure unlikely to be in a source by chance: three or more significant digits, a decimal, a
    unit or a scale ("8,849", "0.5", "30 seconds", "2 million"). Small bare integers are everywhere."""
    significant = n.text.replace(",", "").replace(".", "").lstrip("0").rstrip("0")
    return len(significant) >= 3 or "." in n.text or n.unit is not None or n.precision > 1
