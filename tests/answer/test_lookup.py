"""Drafts looked up in the prompt, and the text a drafted generation hands on (no model needed)."""

from __future__ import annotations

import numpy as np

from groundglass.answer.llm.lookup import TextOut, draft


def ids(*tokens: int) -> np.ndarray:
    return np.array(tokens, dtype=np.intc)


def test_the_draft_follows_the_most_recent_occurrence_of_the_longest_match() -> None:
    # the context ends with 7 8 9: "8 9" is followed by 1 2 early on and by 5 6 later; "7 8 9" by 3 4
    context = ids(8, 9, 1, 2, 7, 8, 9, 3, 4, 0, 8, 9, 5, 6, 0, 7, 8, 9)
    assert draft(context, k=2) == [3, 4]
    assert draft(context, min_ngram=2, max_ngram=2, k=2) == [5, 6]
    assert draft(context, k=10) == [3, 4, 0, 8, 9, 5, 6, 0, 7, 8]


def test_no_draft_without_a_long_enough_match() -> None:
    assert draft(ids(1, 2, 3, 4, 5, 3), min_ngram=1) == [4, 5, 3]
    assert draft(ids(1, 2, 3, 9, 2, 3)) == [], "two matching tokens are not enough by default"
    assert draft(ids(1, 2, 3, 9, 2, 3), min_ngram=2) == [9, 2, 3]
    assert draft(ids(1, 2, 3, 9, 1, 2, 3)) == [9, 1, 2, 3]
    assert draft(ids(5)) == [] and draft(ids()) == []


def test_text_is_handed_on_whole_characters_and_cut_at_a_stop() -> None:
    pieces: list[str] = []
    vocab = {1: "The ", 2: "caf", 3: "\xc3", 4: "\xa9", 5: " is <|im", 6: "_end|> more", 7: "<|i", 8: "x"}

    def detok(tokens: list[int]) -> bytes:
        return b"".join(vocab[t].encode("latin-1") if t in (3, 4) else vocab[t].encode() for t in tokens)

    out = TextOut(detok, ["<|im_end|>"], pieces.append)
    for token in (1, 2, 3):
        out.add(token)
    assert "".join(pieces) == "The caf", "half of a two-byte character is held back"
    out.add(4)
    assert "".join(pieces) == "The café"
    out.add(5)
    assert "".join(pieces) == "The café is ", "what may start the stop string is held back"
    out.add(6)
    assert out.stopped and "".join(pieces) == "The café is "

    held: list[str] = []
    partial = TextOut(detok, ["<|im_end|>"], held.append)
    for token in (1, 7, 8):
        partial.add(token)
    assert "".join(held) == "The <|ix" and not partial.stopped, "a false start is handed on"
