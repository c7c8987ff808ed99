"""Normalised answer match for FanOutQA gold answers (strings, numbers, booleans, lists, dicts).

Follows FanOutQA's own string metric (``fanoutqa.eval.string.answer_in_text``): the gold answer is
flattened into reference strings (a list: its items; a dict: its keys *and* its values; a boolean:
"yes"/"no"), each is looked for in the generated answer, and

- **loose accuracy** = the share of reference strings found (FanOutQA's "loose"),
- **strict accuracy** = 1 when every reference string is found, else 0.

FanOutQA normalises with spaCy lemmas, which are not installed here (spaCy's model is not on PyPI);
instead, both texts are normalised as follows (hand-written because it is a dozen lines and must
match the documentation exactly):

1. Unicode accents folded (``Dā`` -> ``da``), a few letters that have no decomposition transliterated
   (``ø`` -> ``o``, ``ə`` -> ``e``, ``ß`` -> ``ss``...), lower case;
2. thousands separators dropped (``9,596,961`` -> ``9596961``); ``&`` read as "and"; punctuation
   becomes a space, except a decimal point between digits;
3. the articles a/an/the and the honorific "sir" removed; whitespace collapsed.

A reference string is found when

- its normalised form occurs in the answer between word boundaries; or
- it has 2-5 words, and they all occur in order within a window of (its length + 3) answer words
  ("Johann Galle" matches "Johann Gottfried Galle"); or
- it is a number, optionally followed by a unit of at most two words (``9,596,961 km2``), and the
  answer holds a number close to it: integers below 10,000 (years, counts) exactly, anything else
  within 2 % (``2,102,650`` matches "2.1 million"); "million", "billion" and "thousand" scale the
  number before them, and the words one..twenty count as numbers; or
- it is several comma-separated parts (``Henry Cavendish, 1766``) and every part is found.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

DROPPED_WORDS = frozenset({"a", "an", "the", "sir"})
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
EXACT_BELOW = 10_000
REL_TOLERANCE = 0.02
MAX_UNIT_WORDS = 2
_LETTERS = str.maketrans(
    {"ø": "o", "ə": "e", "æ": "ae", "œ": "oe", "ß": "ss", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i"}
)
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_TIMES = re.compile(r"^(\d+(?:\.\d+)?)[x×]$")  # "1.25x": a factor, the number 1.25


def normalize(text: str) -> str:
    """The normalised form of ``text`` (see the module docstring)."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower().translate(_LETTERS)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text).replace("&", " and ")
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)
    text = re.sub(r"[^\w\s.]|_", " ", text)
    return " ".join(w for w in text.split() if w not in DROPPED_WORDS)


def reference_strings(gold: Any) -> list[str]:
    """The gold answer flattened into the strings to look for (FanOutQA's flattening)."""
    if isinstance(gold, bool):
        return ["yes" if gold else "no"]
    if isinstance(gold, dict):
        return [s for kv in gold.items() for x in kv for s in reference_strings(x)]
    if isinstance(gold, (list, tuple)):
        return [s for x in gold for s in reference_strings(x)]
    if gold is None:
        return []
    if isinstance(gold, float) and gold.is_integer():
        gold = int(gold)
    return [str(gold)]


def numbers_in(words: list[str]) -> list[float]:
    """The numbers written in ``words`` (normalised answer words), scales applied."""
    out: list[float] = []
    for i, w in enumerate(words):
        if _NUMBER.match(w):
            value = float(w)
        elif times := _TIMES.match(w):
            value = float(times.group(1))
        elif w in NUMBER_WORDS:
            value = float(NUMBER_WORDS[w])
        else:
            continue
        if i + 1 < len(words) and words[i + 1] in SCALES:
            value *= SCALES[words[i + 1]]
        out.append(value)
    return out


def number_matches(gold: float, found: list[float]) -> bool:
    if float(gold).is_integer() and abs(gold) < EXACT_BELOW:
        return any(x == gold for x in found)
    return any(math.isclose(x, gold, rel_tol=REL_TOLERANCE) for x in found)


def _in_window(ref: list[str], words: list[str]) -> bool:
    """``ref``'s words in order within a window of len(ref) + 3 answer words."""
    span = len(ref) + 3
    for start, w in enumerate(words):
        if w != ref[0]:
            continue
        j = 1
        for k in range(start + 1, min(len(words), start + span)):
            if j < len(ref) and words[k] == ref[j]:
                j += 1
        if j == len(ref):
            return True
    return False


def _found_one(ref: str, text: str, words: list[str], numbers: list[float]) -> bool:
    norm = normalize(ref)
    if not norm:
        return True
    if re.search(rf"(?<!\w){re.escape(norm)}(?!\w)", text):
        return True
    ref_words = norm.split()
    if _NUMBER.match(ref_words[0]) and len(ref_words) <= 1 + MAX_UNIT_WORDS:
        return number_matches(float(ref_words[0]), numbers)
    return 2 <= len(ref_words) <= 5 and _in_window(ref_words, words)


def found(ref: str, answer: str) -> bool:
    """Whether the reference string ``ref`` is found in ``answer`` (see the module docstring)."""
    text = normalize(answer)
    words = text.split()
    numbers = numbers_in(words)
    if _found_one(ref, text, words, numbers):
        return True
    parts = [p for p in re.split(r",(?!\d{3}\b)", ref) if p.strip()]
    return len(parts) > 1 and all(_found_one(p, text, words, numbers) for p in parts)


@dataclass
class Match:
    loose: float  # share of reference strings found
    strict: bool  # all of them found
    missing: list[str] = field(default_factory=list)


def score(gold: Any, answer: str) -> Match:
    """FanOutQA-style loose and strict accuracy of ``answer`` against ``gold``."""
    refs = reference_strings(gold)
    if not refs:
        return Match(1.0, True)
    missing = [r for r in refs if not found(r, answer)]
    return Match((len(refs) - len(missing)) / len(refs), not missing, missing)
