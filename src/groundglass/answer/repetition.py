"""Stopping a model that loops: the same block of text over and over.

A small model can fall into "0.000000000..." or one sentence repeated without end; the stream is cut
there rather than left to run to its token limit.
"""

from __future__ import annotations


class RepetitionGuard:
    """Detects a model that loops: the text so far ends in the same block, over and over.

    Periods of 1 to ``max_period`` characters are tried; a block repeats when the last
    ``max(min_span, 2 * period)`` characters equal the ones a period earlier (so at least three copies
    of a sentence-sized block, or ``min_span`` + 1 of one character). A block without a letter or
    digit needs four times as long a run: a ruler line ("-----") is not a loop.
    """

    def __init__(self, min_span: int = 40, max_period: int = 200) -> None:
        self.min_span = min_span
        self.max_period = max_period
        self._tail = ""

    def feed(self, text: str) -> bool:
        """Add ``text``; True when the output has degenerated."""
        if not text:
            return False
        self._tail = (self._tail + text)[-(3 * self.max_period + self.min_span) :]
        tail = self._tail
        for period in range(1, self.max_period + 1):
            span = max(self.min_span, 2 * period)
            if len(tail) < span + period:
                break
            if tail[-span:] == tail[-span - period : -period]:
                block = tail[-period:]
                if not any(c.isalnum() for c in block):  # a ruler line ("-----") may be long
                    long_span = max(span, 4 * self.min_span)
                    looped = (
                        len(tail) >= long_span + period
                        and tail[-long_span:] == tail[-long_span - period : -period]
                    )
                    if not looped:
                        continue
                if block.strip():
                    return True
        return False
