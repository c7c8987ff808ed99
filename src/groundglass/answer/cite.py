"""Citations that hold up: markers <-> sources, and per-sentence support scores.

Numbering. Marker ``[n]`` refers to the n-th source given to the model, and the answer returns *all*
given sources in that same order (as Perplexity returns all ``search_results``), so ``[n]`` is
``search_results[n-1]`` and ``citations[n-1]``. We never renumber: the answer is streamed token by
token, and renumbering after the fact would make the streamed text disagree with the final one.

Markers. ``[1]``, ``[1][2]`` and ``[1, 2]`` are understood. A number that does not refer to a given
source is removed; what stays is written as ``[1][2]``. :class:`MarkerFilter` does this on the
stream itself, so the tokens a user sees never carry an invalid marker, and :func:`clean_markers`
is the same filter run over a whole text.

Attribution. Each sentence of the answer gets a support score against the sources it cites: the
best, over those sources, of ``max(semantic, lexical)`` where

* semantic = MiniLM cosine similarity between the sentence and the cited chunk, or its closest
  sentence (a short claim is diluted when compared with a whole 180-token chunk);
* lexical = the share of the sentence's content words (stop words dropped) found in the chunk.

Taking the larger of the two is deliberate: embeddings see paraphrase but blur names, numbers and
dates, while word overlap sees exactly those and misses paraphrase; either one high is evidence
that the chunk says what the sentence says. A sentence with no citation, or whose best score is
below ``retrieval.min_support``, is flagged unsupported. A sentence without a marker of its own is
covered by the next marker in its paragraph (or the last one before it), the way a footnote at the
end of a paragraph covers the paragraph; a paragraph with no marker at all is unsupported.

Neither signal checks negation or a swapped fact ("Paris is the capital of Germany"): the score
says *the cited text is about this*, not *the cited text entails this*; no entailment model is
packaged for offline use.

Sources are split into sentences by :mod:`groundglass.answer.sentences`, as everywhere else. Answers
have their own small splitter here (:func:`split_sentences`): a citation marker that follows the
full stop (``... in 1989.[1] It ...``) belongs to the sentence before it, list items are sentences,
and general splitters (pysbd, nltk, or the passage splitter) would glue or detach those markers. A
line that opens with a marker ("[3] Actinium was ...") is written markers-first, and there a marker
after a full stop opens the next sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from groundglass.answer import grounding
from groundglass.answer.sentences import ABBREVIATIONS
from groundglass.answer.sentences import split_sentences as sentences_of_passage
from groundglass.answer.types import SentenceSupport, Source

# Any integer, so that "[25008]", "[1,25008]", "[0]" and "[-1]" are recognised as markers, and removed.
_NUMBER_LIST = r"-?\d+(?:\s*,\s*-?\d+)*"
MARKER = re.compile(r"\[\s*(" + _NUMBER_LIST + r")\s*\]")
_MARKER_PREFIX = re.compile(r"\[\s*(?:-?\d+\s*,\s*)*-?\d*\s*$")  # an unfinished marker, e.g. "[1, "
_MAX_MARKER_CHARS = 24
_CLOSING_PUNCT = set(".,;:!?)")


def parse_numbers(marker_body: str) -> list[int]:
    return [int(n) for n in re.findall(r"-?\d+", marker_body)]


def cited_numbers(text: str) -> list[int]:
    """All source numbers cited in ``text``, in order of first appearance, without repeats."""
    seen: list[int] = []
    for m in MARKER.finditer(text):
        for n in parse_numbers(m.group(1)):
            if n not in seen:
                seen.append(n)
    return seen


def render_marker(marker: str, n_sources: int) -> str:
    """``[1, 9, 2]`` with 3 sources -> ``[1][2]``; ``[9]`` -> ``""``."""
    m = MARKER.fullmatch(marker)
    if m is None:
        return marker
    kept: list[int] = []
    for n in parse_numbers(m.group(1)):
        if 1 <= n <= n_sources and n not in kept:
            kept.append(n)
    return "".join(f"[{n}]" for n in kept)


class MarkerFilter:
    """Rewrite citation markers in a token stream: drop numbers that match no source, and a number
    that the markers just before it cite already.

    Feed it the model's text pieces as they come; it returns what can be shown so far, holding back
    only an unfinished ``[...`` and trailing whitespace (so a dropped marker takes its leading space
    with it: ``"in 1989 [7]."`` becomes ``"in 1989."``). Code is left alone: text inside backticks, and
    an index written against a name (``a[0]``, ``items[-1]``), which no citation ever is.
    """

    def __init__(self, n_sources: int) -> None:
        self.n_sources = n_sources
        self._marker = ""  # an unfinished "[..." that may still become a marker
        self._space = ""  # whitespace not yet emitted
        self._dropped = False  # the last thing seen was a marker we removed
        self._code = False  # inside a `code span`
        self._prev = ""  # the last character emitted
        self._attached = False  # the pending "[" follows a name with no space: maybe an index
        self._run: set[int] = set()  # the numbers of the markers since the last text

    def feed(self, piece: str) -> str:
        out: list[str] = []
        for ch in piece:
            self._step(ch, out)
        return "".join(out)

    def flush(self) -> str:
        out = self._space + self._marker
        self._space = self._marker = ""
        return out

    def _step(self, ch: str, out: list[str]) -> None:
        if self._marker:
            candidate = self._marker + ch
            if ch == "]" and (m := MARKER.fullmatch(candidate)):
                self._marker = ""
                if self._attached and all(n <= 0 for n in parse_numbers(m.group(1))):
                    self._emit_text(candidate, out)  # "a[0]", "items[-1]": an index
                else:
                    self._emit_marker(render_marker(candidate, self.n_sources), out)
                return
            if _MARKER_PREFIX.fullmatch(candidate) and len(candidate) <= _MAX_MARKER_CHARS:
                self._marker = candidate
                return
            text, self._marker = self._marker, ""  # not a marker after all: it is plain text
            self._emit_text(text, out)
        if ch == "`":
            self._code = not self._code
            self._emit_text(ch, out)
        elif self._code:
            self._emit_text(ch, out)
        elif ch == "[":
            self._marker = ch
            self._attached = not self._space and (self._prev.isalnum() or self._prev in "_)")
        elif ch.isspace():
            if not (self._dropped and self._space):
                self._space += ch
        else:
            self._emit_text(ch, out)

    def _emit_marker(self, rendered: str, out: list[str]) -> None:
        # a number the run of markers just before already cites is said once: "[1][1]" -> "[1]"
        fresh = [n for n in parse_numbers(rendered) if n not in self._run]
        rendered = "".join(f"[{n}]" for n in fresh)
        if rendered:
            out.append(self._space + rendered)
            self._space, self._dropped, self._prev = "", False, "]"
            self._run.update(fresh)
        else:
            self._dropped = True  # keep the space pending: the next character decides its fate

    def _emit_text(self, text: str, out: list[str]) -> None:
        if self._dropped and text[0] in _CLOSING_PUNCT:
            self._space = ""  # "claim [7]." -> "claim."
        out.append(self._space + text)
        self._space, self._dropped, self._prev = "", False, text[-1]
        self._run.clear()


def clean_markers(text: str, n_sources: int) -> str:
    """The whole-text form of :class:`MarkerFilter`."""
    f = MarkerFilter(n_sources)
    return f.feed(text) + f.flush()


def strip_markers(text: str) -> str:
    return " ".join(MARKER.sub(" ", text).split()).replace(" .", ".").replace(" ,", ",")


# --- declining -------------------------------------------------------------------------------------

_NEG = r"(?:could not|couldn't|cannot|can not|can't|did not|didn't|do not|don't|(?:am |was )?unable to)"
_DECLINE = re.compile(
    r"\b" + _NEG + r"\s+(?:find|locate)\b"  # "I could not find this in the provided sources."
    r"|\bI\s+" + _NEG + r"\s+know\b"
    r"|\b(?:sources?|context|documents?|passages?)\s+(?:provided\s+)?(?:do|does|did)\s*(?:not|n't)\s+"
    r"(?:contain|mention|say|include|provide|specify|state|give|list|document|indicate|describe|discuss)"
    r"|\bno (?:relevant )?information\b"
    r"|\bnot (?:mentioned|found|provided|specified|stated|given|documented|described) in the "
    r"(?:provided |given )?(?:sources?|context|documents?)",
    re.IGNORECASE,
)


def is_decline(text: str) -> bool:
    """True when ``text`` says the sources do not hold the answer."""
    return bool(_DECLINE.search(text))


def is_declined_answer(content: str) -> bool:
    """The answer as a whole is a decline: it says so, and cites nothing."""
    return is_decline(content) and not cited_numbers(content)


# --- sentences -------------------------------------------------------------------------------------

_BOUNDARY = re.compile(
    r"[.!?]+[\"')\]]*"  # the end of a sentence, closing quotes or brackets
    r"(?:\s*\[\s*" + _NUMBER_LIST + r"\s*\])*"  # markers that follow the full stop stay with it
    r"(?=\s+\S|$)"
)
# Some models (Qwen2.5 among them) put the marker *before* the sentence it supports: "[3] Actinium was
# found in 1899. [4] Thorium ...". In a line that opens with a marker, markers after a full stop
# start the next sentence instead of closing the previous one.
_BOUNDARY_LEADING = re.compile(r"[.!?]+[\"')\]]*(?=\s*\[\s*" + _NUMBER_LIST + r"\s*\]|\s+\S|$)")
_LEADING_MARKER = re.compile(r"^\[\s*" + _NUMBER_LIST + r"\s*\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")


def paragraphs_of_sentences(text: str) -> list[list[str]]:
    """Each line (paragraph or list item) of ``text`` as its sentences, markers kept with them."""
    paragraphs: list[list[str]] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        sentences: list[str] = []
        start = 0
        boundary = _BOUNDARY_LEADING if _LEADING_MARKER.match(line) else _BOUNDARY
        for m in boundary.finditer(line):
            before = line[start : m.start()]
            last_word = before.rsplit(None, 1)[-1].lower() if before.split() else ""
            if last_word.rstrip(".") in ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
                continue  # "Dr. Smith", "J. R. R. Tolkien"
            sentences.append(line[start : m.end()].strip())
            start = m.end()
        sentences.append(line[start:].strip())
        sentences = [s for s in sentences if re.search(r"\w", strip_markers(s))]
        if sentences:
            paragraphs.append(sentences)
    return paragraphs


def split_sentences(text: str) -> list[str]:
    """Sentences and list items of ``text``, each with the markers that belong to it."""
    return [s for paragraph in paragraphs_of_sentences(text) for s in paragraph]


# --- support scores --------------------------------------------------------------------------------


class Encoder(Protocol):
    def encode(self, texts: list[str]) -> np.ndarray:
        """L2-normalised embeddings, one row per text."""
        ...


_STOP_WORDS = frozenset(
    """a an the and or but if then than that this these those there here of in on at to for from by with
    without about as into over under after before between during through is are was were be been being
    am do does did done has have had having it its it's they them their he him his she her we our you
    your i me my not no nor so such very can could would should will shall may might must also too
    which who whom whose what when where why how all any both each few more most other some own same
    only just one per via according source sources""".split()
)
_WORD = re.compile(r"[\w][\w'-]*")


def content_words(text: str) -> set[str]:
    words = set()
    for w in _WORD.findall(strip_markers(text).lower()):
        w = w.strip("'-")
        if w.endswith("'s"):
            w = w[:-2]
        if w and w not in _STOP_WORDS and (len(w) > 1 or w.isdigit()):
            words.add(w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w)
    return words


def lexical_support(sentence: str, source_text: str, question: str = "") -> float:
    """Share of the sentence's content words beyond the question's that the source contains (words
    the question gave it prove nothing: every relevant source has them)."""
    claim = content_words(sentence) - content_words(question)
    if not claim:
        return 0.0
    return len(claim & content_words(source_text)) / len(claim)


def source_text(source: Source) -> str:
    """What a source says: its title line (with the names its collection is about, which the
    question gave the model) and its text."""
    title = f"{source.title} ({source.about})" if source.about else source.title
    return f"{title}\n{source.text}"


def attribute(
    content: str, sources: Sequence[Source], encoder: Encoder, min_support: float, question: str = ""
) -> list[SentenceSupport]:
    """Per-sentence attribution of ``content`` against the ``sources`` it cites (1-based markers).

    A sentence with no marker of its own is measured against the markers of the next cited sentence
    of its paragraph (or, when none follows, the closest one before it), as a footnote at the end of
    a paragraph covers it: small models often cite once per run of sentences. A paragraph or list
    item without any valid marker is unsupported. A sentence that says the sources lack the answer
    (and cites nothing) is not a claim: it is left out.

    With the ``question``, the values a sentence adds (numbers, identifiers, names, yes/no words) are
    looked up in its cited sources (:func:`groundglass.answer.grounding.check`): a sentence with a
    value that none of them holds, or one that only restates the question, is unsupported whatever
    its score, and ``unsupported_values`` lists what was missing.
    """
    sentences: list[str] = []
    cites: list[list[int]] = []
    for paragraph in paragraphs_of_sentences(content):
        claims = [s for s in paragraph if not (is_decline(s) and not cited_numbers(s))]
        own = [[n for n in cited_numbers(s) if 1 <= n <= len(sources)] for s in claims]
        for i, sentence in enumerate(claims):
            later = [c for c in own[i + 1 :] if c]
            earlier = [c for c in own[:i] if c]
            sentences.append(sentence)
            cites.append(own[i] or (later[0] if later else earlier[-1] if earlier else []))
    if not sentences:
        return []
    cited = sorted({n for c in cites for n in c})

    # One batch through the encoder: the claims, then each cited chunk and its sentences.
    texts = [strip_markers(s) for s in sentences]
    spans: dict[int, tuple[int, int]] = {}
    for n in cited:
        parts = [sources[n - 1].text, *sentences_of_passage(sources[n - 1].text)]
        spans[n] = (len(texts), len(texts) + len(parts))
        texts.extend(parts)
    vectors = encoder.encode(texts) if cited else np.zeros((0, 0))

    result: list[SentenceSupport] = []
    for i, (sentence, numbers) in enumerate(zip(sentences, cites, strict=True)):
        best = 0.0
        for n in numbers:
            lo, hi = spans[n]
            semantic = float(np.max(vectors[lo:hi] @ vectors[i]))
            lexical = lexical_support(sentence, sources[n - 1].text, question)
            best = max(best, semantic, lexical)
        best = min(max(best, 0.0), 1.0)
        checked = check_values(sentence, question, [sources[n - 1] for n in numbers] or sources)
        result.append(
            SentenceSupport(
                text=sentence,
                citations=numbers,
                support=round(best, 4),
                supported=bool(numbers) and best >= min_support and checked.ok,
                unsupported_values=checked.unsupported,
                restates_question=checked.restates_question,
            )
        )
    return result


def check_values(sentence: str, question: str, cited: Sequence[Source]) -> grounding.Check:
    """:func:`grounding.check` of ``sentence`` against the text of the ``cited`` sources."""
    texts = [source_text(s) for s in cited]
    return grounding.check(sentence, question, texts, grounding.evidence_for(texts))
