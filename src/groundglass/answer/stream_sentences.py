"""Where the sentences of a streamed answer end, so each can be checked before it is shown.

A sentence is complete once the next one has begun on its line (or the line has ended): the markers
after its full stop belong to it, abbreviations ("Dr. Smith"), an ellipsis ("INSERT ... ON CONFLICT") and
a stop inside parentheses do not end it, and a fenced code block is one unit from its opening to its
closing fence.
"""

from __future__ import annotations

import re

from groundglass.answer.sentences import ABBREVIATIONS

CITE = r"\[\s*-?\d+(?:\s*,\s*-?\d+)*\s*\]"
# A sentence ends at . ! ? (closing quotes/brackets and trailing markers kept with it), once the next
# sentence has begun on the same line; a line break ends one too.
_END = re.compile(r"[.!?]+[\"')\]]*(?:[ \t]*" + CITE + r")*(?=[ \t]+[^\s\[])")
# In a line that opens with a marker ("[3] Actinium was found in 1899. [4] Thorium ..."), a marker
# after the full stop opens the next sentence.
_END_LEADING = re.compile(r"[.!?]+[\"')\]]*(?=[ \t]*\[|[ \t]+\S)")
_LEADING = re.compile(r"\s*" + CITE)
_BULLET = re.compile(r"\s*(?:[-*•]|\d{1,2}[.)]|#{1,6})\s+")


def units(text: str, final: bool) -> list[tuple[int, int]]:
    """``(start, end)`` of each complete sentence of ``text``: its leading whitespace, the sentence and
    the markers after it. ``final``: the text is all there is (its last sentence is complete)."""
    out: list[tuple[int, int]] = []
    start = 0
    offset = 0
    in_code = False
    lines = text.split("\n")
    for i, line in enumerate(lines):
        line_done = i < len(lines) - 1 or final
        fence = line.lstrip().startswith("```")
        if in_code or fence:  # a fenced code block is one unit, from its opening to its closing fence
            closes = in_code and fence
            in_code = not closes if in_code else not line.strip().endswith("```") or line.count("```") < 2
            line_end = offset + len(line)
            if not in_code and line_done:
                out.append((start, line_end))
                start = line_end
            elif in_code and final and i == len(lines) - 1:
                out.append((start, line_end))  # the model stopped inside the block
                start = line_end
            offset = line_end + 1
            continue
        bullet = _BULLET.match(line)
        body_from = bullet.end() if bullet else 0
        end_at = _END_LEADING if _LEADING.match(line[body_from:]) else _END
        for m in end_at.finditer(line, body_from):
            end = offset + m.end()
            before = text[start : offset + m.start()].split()
            last = before[-1].lower().rstrip(".") if before else ""
            if last in ABBREVIATIONS or re.fullmatch(r"[a-z]", last):
                continue  # "Dr. Smith", "J. R. R. Tolkien"
            if m.group().startswith("..") or _unclosed(text[start : offset + m.start()]):
                continue  # "UPSERT (INSERT ... ON CONFLICT DO UPDATE) was added in 3.24.0"
            out.append((start, end))
            start = end
        line_end = offset + len(line)
        if line_done and text[start:line_end].strip():
            out.append((start, line_end))
            start = line_end
        offset = line_end + 1
    return out


def _unclosed(sentence: str) -> bool:
    """Whether ``sentence`` has opened a parenthesis it has not closed: a full stop inside one
    ("(see the notes. They ...)") does not end the sentence around it."""
    return sentence.count("(") > sentence.count(")")
