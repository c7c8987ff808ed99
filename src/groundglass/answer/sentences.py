"""Sentence splitting for passages and answers (chunking, snippets, budget trimming, attribution).

Hand-written (a regular expression plus an abbreviation list) because the well-kept alternatives
need data downloads (nltk punkt) or are heavy for this job (spaCy, pysbd). It errs on the side of not
splitting: "Dr. Smith", "e.g. this", initials like "J. R. R. Tolkien" and "3.5" stay whole.
"""

from __future__ import annotations

import re

# A sentence that opens with one of these speaks of what a sentence before it names.
OPENING_PRONOUN = re.compile(r"(?:it|its|this|that|these|they|their)\b", re.IGNORECASE)
_BULLET = re.compile(r"\s*[-*•]\s+")


def without_bullet(line: str) -> str:
    """``line`` without a list item's bullet ("- ", "* ", "• "); an option's own dash stays: "-i queue_id
    Schedule immediate delivery ..." is not a list item, and without its dash it names no option."""
    bullet = _BULLET.match(line)
    return line[bullet.end() if bullet else 0 :].strip()


_ABBREVIATION_TEXT = (
    "mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al approx ca fig figs no nos vol vols ed eds "
    "inc ltd co corp dept est gen gov lt col capt sgt rev u.s u.k u.n a.d b.c jan feb mar apr jun jul "
    "aug sep sept oct nov dec p pp ch sec op"
)
ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())

# A sentence ends at . ! ? (or …) plus closing quotes/brackets, followed by whitespace and a token that
# can start a sentence (capital, digit, quote, bracket) — or at a line break.
_BOUNDARY = re.compile(r"""([.!?…]+["'”’)\]]*)(\s+)(?=["'“‘(\[]?[A-Z0-9À-ÖØ-Þ])""")


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences (line breaks inside a paragraph also end a sentence)."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        start = 0
        for m in _BOUNDARY.finditer(line):
            end = m.end(1)
            before = line[start:end]
            last_word = before.rsplit(None, 1)[-1].rstrip(".!?…\"'”’)]").lower() if before.strip() else ""
            # "Dr. Smith", "e.g. This", initials "J. R. R. Tolkien": not boundaries
            if m.group(1).startswith(".") and (
                last_word in ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())
            ):
                continue
            piece = line[start:end].strip()
            if piece:
                out.append(piece)
            start = m.end()
        tail = line[start:].strip()
        if tail:
            out.append(tail)
    return out
