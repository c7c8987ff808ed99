"""The model's text, shown only once each sentence has passed its check.

A streamed claim cannot be taken back, so the answer is streamed a sentence at a time: the model's
pieces wait in :class:`SentenceGate` until their sentence is complete (its full stop and the markers
after it have arrived), then :func:`groundglass.answer.cite.check_values` looks up the values it
adds in the sources it cites. A sentence that passes is released as the pieces the model wrote (the
stream keeps its token granularity, one sentence later); one that fails is never shown:

* while nothing has been shown, the draft has failed (:attr:`SentenceGate.failed`): the engine stops
  the model and asks again with the problem pointed out, and declines when the second draft fails
  too (so a retry never shows up in the stream: what was streamed is what the answer says);
* after that, the sentence is left out (:attr:`SentenceGate.dropped`) and the rest goes on.

A sentence that says again what an earlier one said (the small model repeats whole paragraphs, too
long for the window of :class:`~groundglass.answer.repetition.RepetitionGuard`) is left out; the
engine stops the model at the second. So is one that says nothing beyond the sentences shown before
it, in fewer words: "The default limit is 4300 digits in string form. [2][3]"
after "The default int/str conversion digit limit in Python 3.11 is 4300 digits in string form." added
no fact, and cited a page that was not the answer's.

A sentence without a marker of its own is held until the next marker of its paragraph (or the end of
the paragraph) says which sources it leans on, as the attribution reads it. A fenced code block is
one unit, shown whole and not checked (its names are the model's own; cutting lines out would break
it). A line of markers alone (``[1][2]``) is shown with what follows it; after a sentence it is that
sentence's markers when the sentence has none, and is left out when it has its own. An answer that is
nothing but markers has failed. A sentence that only names its sources ("The source for this
information is [1].") is shown as its markers alone, after the sentence it is about: its words say
nothing, but its markers are the citation.

Where a sentence ends is :func:`groundglass.answer.stream_sentences.units`; the source lines shown
on a retry are :func:`groundglass.answer.retry_hints.closest_sentences`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations, pairwise

from groundglass.answer import cite, entries, grounding, rows
from groundglass.answer.grounding import defaults, figures, labelled, pairs
from groundglass.answer.grounding.wording import restates_question
from groundglass.answer.sentences import split_sentences as sentences_of_passage
from groundglass.answer.stream_sentences import CITE, units
from groundglass.answer.types import Source

_WORDS = re.compile(r"\w")
_ENDS_CITED = re.compile(CITE + r"[\s.!?]*$")
# The words of a sentence that only points at its sources: "The source for this information is [1]."
_CITATION_WORDS = frozenset(
    """a above according an and answer as based be can citation cited context details
    described detailed document documentation documented documents explained fact facts find for found from
    given here in info information is it listed mentioned more of official on page please provided
    reference references refer section see seen shown source sources stated that the these this to was were
    which you also available check confirmed docs guide indicated manual noted read say says specified
    written""".split()
)


# Words that lead up to a marker and mean nothing without it: "... is 8, as stated in [1]."
_LEAD_IN = (
    r"(?P<lead>,?[ \t]+(?:as (?:stated|shown|described|mentioned|noted|documented|listed|given|seen"
    r"|explained) in|according to|(?P<open>\(\s*)?see|per|in))?"
)
_MARKER = re.compile(_LEAD_IN + r"(?P<gap>[ \t]*)(?P<cite>" + CITE + r")(?(open)\s*\))")


def _unmarked(text: str, kept: set[int]) -> str:
    """``text`` with only the markers of ``kept`` sources; a marker removed takes the words that led
    up to it along, so no sentence ends "... as stated in." """

    def rewrite(m: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"-?\d+", m.group("cite"))]
        left = markers(n for n in numbers if n in kept)
        if not left:
            return "" if m.group("lead") else m.group("gap")
        return m.group(0)[: m.start("cite") - m.start(0)] + left + m.group(0)[m.end("cite") - m.start(0) :]

    out = re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", _MARKER.sub(rewrite, text))
    return re.sub(r"[ \t]+(?=[.!?,;:)]|$)", "", out, flags=re.MULTILINE)


_LEADING = re.compile(
    r"^(?P<space>\s*)(?P<cites>(?:" + CITE + r"\s*)+)(?P<body>\S.*?)(?P<end>\s*)$", re.DOTALL
)


def _markers_last(text: str) -> str | None:
    """A sentence written markers-first ("[2] The default port is 8000.") with its markers after it, as
    every other sentence has them; None when it does not open with markers or has others."""
    m = _LEADING.match(text)
    if m is None or re.search(CITE, m.group("body")) or not _WORDS.search(m.group("body")):
        return None
    cited = markers(n for c in re.findall(CITE, m.group("cites")) for n in cite.parse_numbers(c))
    return f"{m.group('space')}{m.group('body')} {cited}{m.group('end')}"


@dataclass
class Rejection:
    """A sentence that was not shown, and why."""

    # unsupported_values | wrong_row | missing_row | other_figure | paired_otherwise | printed_otherwise
    # | stated_otherwise | other_entry | restates_question | empty | repetition | no_figure
    reason: str
    sentence: str
    values: list[str] = field(default_factory=list)  # the values no cited source holds (or the wrong row's)
    hints: list[tuple[int, str]] = field(default_factory=list)  # source lines to show on the retry

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def markers(numbers: Iterable[int]) -> str:
    """``[1][4]`` for sources 1 and 4 (each once)."""
    return "".join(f"[{n}]" for n in dict.fromkeys(numbers))


def citation_only(sentence: str) -> bool:
    """Whether ``sentence`` has markers and no word beyond pointing at them ("See [2]."). A figure is
    an answer: "The answer is: 1961. [1]"."""
    if not cite.cited_numbers(sentence):
        return False
    words = re.findall(r"[^\W_]+", cite.strip_markers(sentence).lower())
    return bool(words) and all(w in _CITATION_WORDS for w in words)


class SentenceGate:
    """Hold the model's text until each sentence has been checked against the sources it cites.

    ``feed`` takes the text pieces (after the marker filter) and returns those that may be shown now;
    ``finish`` at the end of the generation returns the rest. Without sources, nothing is checked.
    """

    def __init__(self, question: str, sources: Sequence[Source], *, hold_decline: bool = False) -> None:
        self.question = question
        # a draft that opens by declining fails ("declined") instead of being shown, so that the answer
        # a source settles beyond doubt can be read off in its place
        self.hold_decline = hold_decline
        self.sources = list(sources)
        self._texts = [cite.source_text(s) for s in self.sources]
        self.failed: Rejection | None = None  # the draft failed before anything was shown
        self.dropped: list[Rejection] = []  # sentences left out after something was shown
        self.shown = False
        self.draft = ""  # everything the model wrote, shown or not
        self._pending = ""  # text not yet released or dropped
        self._cuts: list[int] = []  # where the model's pieces end inside _pending
        self._paragraph_cites: list[int] = []  # the last markers seen in the current paragraph
        self._claim = ""  # the last sentence of the paragraph that was kept with markers of its own
        self._prefix: list[str] = []  # markers alone, waiting for the first sentence that passes
        self._last = ""  # the end of what was shown
        self._passed: list[str] = []  # the sentences that passed (those _said_key can tell)
        self.repeats = 0  # sentences left out because they said again what had passed

    # --- the stream ----------------------------------------------------------------------------------

    def feed(self, piece: str) -> list[str]:
        if self.failed is not None or not piece:
            return []
        self.draft += piece
        self._pending += piece
        self._cuts.append(len(self._pending))
        if not self.sources:
            return self._release(len(self._pending))
        return self._process(final=False)

    def finish(self) -> list[str]:
        if self.failed is not None:
            return []
        out = self._process(final=True) if self.sources else self._release(len(self._pending))
        if not self.shown and self.failed is None:
            self.failed = Rejection("empty", self.draft.strip())
        return out

    def stop(self, reason: str) -> list[str]:
        """The model was stopped (it looped): the complete sentences it wrote before the loop began are
        checked as an answer that ended there, and released when they pass; the loop is never shown.
        The default model answered "... is 1114111 (0x10FFFF in hexadecimal)." and then wrote "This
        value is always ..." over and over without a marker, so the right sentence, still waiting for
        its paragraph's marker, was lost with the loop and the whole draft asked again."""
        if self.failed is not None:
            return []
        looped = self._pending[_before_loop(self._pending) :]
        self._pending = self._pending[: len(self._pending) - len(looped)]
        out = self._process(final=True) if self.sources and self._pending.strip() else []
        if not self.shown and self.failed is None:
            self.failed = Rejection(reason, self.draft.strip()[:300])
        elif self.failed is None and (looped + self._pending).strip():
            self.dropped.append(Rejection(reason, (self._pending + looped).strip()[:300]))
        self._pending, self._cuts = "", []
        return out

    def end_where(self, done: Callable[[str], bool]) -> bool:
        """Whether the answer is whole by ``done`` (given what is shown, then each longer run of the held
        text's complete sentences): what follows that point is then dropped unseen, and :meth:`finish`
        checks and releases the rest. The model is stopped there (:mod:`~groundglass.answer.concise`)."""
        if self.failed is not None:
            return False
        # only after markers the model wrote: a sentence without its own borrows the next one's (on
        # the next line, or after the next sentence), and cut off before them it would go uncited
        spans = units(self._pending, final=False)
        ends = [0, *(end for start, end in spans if cite.cited_numbers(self._pending[start:end]))]
        for end in ends:
            if done(self._pending[:end]):
                self._pending = self._pending[:end]
                self._cuts = [c for c in self._cuts if c < end] + ([end] if end else [])
                return True
        return False

    # --- checking ------------------------------------------------------------------------------------

    def _process(self, final: bool) -> list[str]:
        out: list[str] = []
        while self.failed is None:
            spans = units(self._pending, final)
            if not spans:
                break
            group = self._next_group(spans, final)
            if group is None:
                break  # a sentence without markers waits for its paragraph's next marker
            released = self._decide(group)
            out += released
        return out

    def _next_group(self, spans: list[tuple[int, int]], final: bool) -> list[tuple[int, int]] | None:
        """The first complete sentence, with the unmarked ones before it that borrow its markers; None
        when they must wait for more text."""
        for i, (a, b) in enumerate(spans):
            text = self._pending[a:b]
            new_paragraph = i > 0 and "\n" in text[: len(text) - len(text.lstrip())]
            if new_paragraph:
                return spans[:i]  # the paragraph ended without another marker
            if cite.cited_numbers(text) or not _WORDS.search(cite.strip_markers(text)):
                return spans[: i + 1]
            if cite.is_decline(text):
                return spans[: i + 1]
        complete_paragraph = final or "\n" in self._pending[spans[-1][1] :]
        return spans if complete_paragraph else None

    def _decide(self, group: list[tuple[int, int]]) -> list[str]:
        """Check each sentence of ``group``; release those that pass (or drop them), in order."""
        last = group[-1][1]
        texts = [self._pending[a:b] for a, b in group]
        if "\n" in texts[0][: len(texts[0]) - len(texts[0].lstrip())]:
            self._paragraph_cites, self._claim = [], ""
        own = [[n for n in cite.cited_numbers(t) if 1 <= n <= len(self.sources)] for t in texts]
        borrowed = next((c for c in reversed(own) if c), self._paragraph_cites)
        lender = max((i for i, c in enumerate(own) if c), default=-1)  # whose markers they borrow
        borrowers: list[tuple[int, str]] = []  # (place in keep, text) of kept sentences without markers
        keep: list[tuple[int, int] | str] = []
        for i, ((a, b), text, cites) in enumerate(zip(group, texts, own, strict=True)):
            if cites and citation_only(text):
                # its markers cite the sentences before it; shown once, after them, and only those
                # of the sources that hold what those sentences say
                claims = borrowers or ([(0, self._claim)] if self._claim and not keep else [])
                if claims:
                    cites, borrowers = self._served(claims, cites), []
                if i > 0 or not set(cites) <= set(self._paragraph_cites):
                    keep.append(" " + markers(cites))
                self._paragraph_cites = cites
                continue
            said = _said_key(text)
            # the same sentence again, or one whose words the earlier ones all hold
            if said and self._passed and restates_question(text, " ".join(self._passed)):
                self.dropped.append(Rejection("repetition", " ".join(text.split())))
                self.repeats += 1
                if i == lender:  # the sentences before it leaned on its markers: they get their own
                    borrowers = self._lend(keep, borrowers, borrowed, [])
                continue
            rejection = self._verdict(text, cites or borrowed)
            if rejection is None and said:
                self._passed.append(text)
            if rejection is not None and rejection.reason == "unsupported_values":
                recited = self._recited(text)
                if recited is not None:
                    text, cites, rejection = recited[0], recited[1], None
                    if i == lender:
                        borrowers = self._lend(keep, borrowers, borrowed, cites)
                    keep.append(text)
                    self._paragraph_cites = cites
                    continue
            if rejection is None:
                trimmed = self._better_cited(text, cites) or self._without_idle_markers(text, cites)
                if i == lender and trimmed is not None:
                    borrowers = self._lend(keep, borrowers, borrowed, cite.cited_numbers(trimmed))
                moved = _markers_last(text if trimmed is None else trimmed)
                keep.append(moved or ((a, b) if trimmed is None else trimmed))
                if not cites:
                    borrowers.append((len(keep), text))
                cites = cite.cited_numbers(trimmed) if trimmed is not None else cites
                if cites:
                    self._paragraph_cites, self._claim = cites, text
                elif not borrowed and (found := self._holders(text)):
                    keep.append(" " + markers(found))  # the model cited nothing
                continue
            if not self.shown and not keep:
                self.failed = rejection
                return []
            if rejection.reason == "declined":  # after a claim: said as written
                keep.append((a, b))
                continue
            self.dropped.append(rejection)
            if i == lender:
                borrowers = self._lend(keep, borrowers, borrowed, [])
        return self._emit(keep, last)

    def _lend(
        self,
        keep: list[tuple[int, int] | str],
        borrowers: list[tuple[int, str]],
        borrowed: list[int],
        final: list[int],
    ) -> list[tuple[int, str]]:
        """When the sentence whose markers ``borrowers`` leaned on ends up citing ``final`` instead of
        ``borrowed`` (it was left out, or its markers moved to the sources that hold its own values),
        the borrowers get markers of their own (:meth:`_lent`), placed after the last of them in
        ``keep``; returns the borrowers still waiting (none). The default model ended "... means "Day
        of the year as a zero-padded decimal number." ... It is a part of the ISO 8601 date format ...
        [1][2]"; the last sentence's marker moved to What's New, the one page with 8601, and the
        table's definition was shown as if What's New said it."""
        if not borrowers or not borrowed or set(final) == set(borrowed):
            return borrowers
        at, lent = self._lent(borrowers, borrowed)
        if set(lent) != set(final):
            keep.insert(at, " " + markers(lent))
        return []

    def _emit(self, keep: list[tuple[int, int] | str], last: int) -> list[str]:
        """The pieces of what :meth:`_decide` kept (spans of the model's text, or rewritten text), with
        ``_pending`` consumed up to ``last``. Markers alone, before any claim, wait for the next one."""
        out: list[str] = []
        for kept in keep:
            out += [kept] if isinstance(kept, str) else self._slice(*kept)
        self._pending = self._pending[last:]
        self._cuts = [c - last for c in self._cuts if c > last]
        if not _WORDS.search(cite.strip_markers("".join(out))):
            if not self.shown:
                self._prefix += out  # markers alone, before any claim: shown with the next sentence
                return []
            if _ENDS_CITED.search(self._last):
                # after a claim that carried its own markers they cite nothing new: the default model
                # ended "The answer is: INTEGER affinity. [1]" with a line "[1][2]"
                return []
        out, self._prefix = (_opening(self._prefix, out) if not self.shown else [*self._prefix, *out]), []
        self.shown = self.shown or bool(out)
        self._last = (self._last + "".join(out))[-80:]
        return out

    def _served(self, borrowers: list[tuple[int, str]], cites: list[int]) -> list[int]:
        """Of the markers ``cites`` that the sentences ``borrowers`` lean on (a pointer's, "This is
        mentioned in [1][2] and [3][4].", or a later sentence's), those that a sentence of theirs with
        these markers would keep (:meth:`_better_cited`, :meth:`_without_idle_markers`). The default
        model wrote "... is protocol version 4. This is mentioned in [1][2] and [3][4].", [3] and [4]
        What's New pages that do not say it, and all four were shown."""
        body = " ".join(" ".join(cite.strip_markers(t).split()) for _, t in borrowers)
        probe = f"{body} {markers(cites)}"
        trimmed = self._better_cited(probe, cites) or self._without_idle_markers(probe, cites)
        return cite.cited_numbers(trimmed) if trimmed is not None else cites

    def _lent(self, borrowers: list[tuple[int, str]], borrowed: list[int]) -> tuple[int, list[int]]:
        """Where (after the last borrower) and which markers to show for sentences that passed on the
        markers of a sentence that was then left out: the sources that hold their values, or else the
        borrowed ones that hold their words best. The default model wrote two sentences without markers
        and a third with [1][2][3][4] and a value no source holds; the answer was shown uncited."""
        found: list[int] = []
        for _, text in borrowers:
            found += [n for n in self._holders(text) if n not in found]
        if not found:
            found = self._served(borrowers, borrowed)
        return borrowers[-1][0], sorted(found)

    def _verdict(self, text: str, cites: list[int]) -> Rejection | None:
        sentence = " ".join(text.split())
        if not _WORDS.search(cite.strip_markers(sentence)):
            return None  # markers alone: nothing to check
        if cite.is_decline(sentence) and not cite.cited_numbers(sentence):
            # "I could not find this in the provided sources."
            return Rejection("declined", sentence) if self.hold_decline and not self.shown else None
        if sentence.startswith("```"):
            return None  # code the model wrote: its names are its own, and a block is not cut up
        # first, as no citing makes it right: a source (cited or not) gives the asked name another figure
        wrong = pairs.contradicted(cite.strip_markers(sentence), self.question, self._texts)
        if wrong is not None:
            figure, i, quote = wrong
            return Rejection("paired_otherwise", sentence, [figure], [(i + 1, quote)])
        default = labelled.contradicted(cite.strip_markers(sentence), self.question, self._texts)
        if default is not None:  # ... or a line labelled Default states the asked name's default
            value, i, line = default
            return Rejection("stated_otherwise", sentence, [value], [(i + 1, line)])
        other = entries.named_otherwise(cite.strip_markers(sentence), self.question, self._texts)
        if other is not None:  # ... or the option the question describes is another list entry
            name, entry = other
            return Rejection("other_entry", sentence, [name], [(entry.source + 1, entry.line())])
        numbers = cites or list(range(1, len(self.sources) + 1))
        cited = [self.sources[n - 1] for n in numbers]
        checked = cite.check_values(sentence, self.question, cited)
        if checked.restates_question:
            return Rejection("restates_question", sentence)
        if checked.unsupported:
            printed = self._signature(sentence, numbers)
            if printed is not None:  # the cited signature gives the default: say so, and show it
                return Rejection("printed_otherwise", sentence, [printed[0]], [printed[1]])
            return Rejection("unsupported_values", sentence, checked.unsupported)
        bare = cite.strip_markers(sentence)
        own = [v.text for v in grounding.values_of(bare) if v.text.lower() not in self.question.lower()]
        texts = [cite.source_text(s) for s in cited]
        row = rows.wrong_row(own, bare, self.question, texts)
        if row is not None:
            held = [v for v in own if v.lower() not in row.line.lower()]
            return Rejection("wrong_row", sentence, held, [(numbers[row.source - 1], row.quote())])
        missing = rows.missing_row(own, bare, self.question, texts)
        if missing is not None:  # the asked row is in no source: the value came from another row
            return Rejection("missing_row", sentence, [missing[0]])
        asked = rows.unstated_row(own, bare, self.question, texts)
        if asked is not None:  # a figure, but not the one of the row the question names
            return Rejection("other_figure", sentence, own, [(numbers[asked.source - 1], asked.labelled())])
        return None

    def _signature(self, sentence: str, numbers: list[int]) -> tuple[str, tuple[int, str]] | None:
        """(``param=value`` as printed, (source number, its line)) of a cited signature that prints the
        default ``sentence`` states otherwise; None when none does. Told only that its values were in no
        source, the 1.5B model gave gzip.open()'s compression level as zlib's -1 three drafts running,
        with ``gzip.open(filename, mode='rb', compresslevel=9, ...)`` cited."""
        texts = [cite.source_text(self.sources[n - 1]) for n in numbers]
        evidence = grounding.evidence_for(texts)
        _, printed = defaults.contradiction(cite.strip_markers(sentence), self.question, evidence)
        if printed is None:
            return None
        wanted = " ".join(printed.line.split()).lower()
        lines = texts[printed.source_of].splitlines()
        line = next((x for x in lines if wanted in " ".join(x.split()).lower()), printed.line).strip()
        pair = re.search(rf"\b{re.escape(printed.param)}\s*=\s*[^,)]+", line)
        return (pair.group(0) if pair else f"{printed.param}={printed.value}"), (
            numbers[printed.source_of],
            line,
        )

    def _recited(self, text: str) -> tuple[str, list[int]] | None:
        """A sentence whose values its markers do not hold, with the markers of the sources that do
        hold them all (the fewest, see :meth:`_holders`), or None when no source or pair of sources does.
        The 1.5B model wrote "... gzip.open() is 9, and ... zlib.compress() is -1. [1][2]" with the
        zlib page as [4]: every value was in the sources it was given, only the marker was wrong."""
        found = self._holders(text)
        if not found:
            return None
        return _cited_instead(text, found), found

    def _better_cited(self, text: str, cites: list[int]) -> str | None:
        """``text`` citing, instead of the sources it cites, a source that holds what it adds with far
        more of its words around it (:data:`BETTER_SOURCE`); None when a cited one is about as good, or
        when none of them holds all of it alone (two sources that each hold a value stay). The 1.5B
        model wrote "The minimum size in bytes of the array module's type code 'd' is 8. [3][4]",
        where [3] and [4], the ctypes page, have an 8 among other words and [1] is the array page's
        table with the row for 'd' under the header "Minimum size in bytes". A sentence without values
        moves to the source that holds far more of its words."""
        if not cites:
            return None
        sentence = " ".join(text.split())
        bare = cite.strip_markers(sentence)
        own = [v.text for v in grounding.values_of(bare) if v.text.lower() not in self.question.lower()]
        scores: dict[int, float] = {}
        for n, source in enumerate(self.sources, start=1):
            if not own:  # words only: the source that holds them
                scores[n] = cite.lexical_support(bare, cite.source_text(source))
            elif cite.check_values(sentence, self.question, [source]).ok:
                scores[n] = min(_context_support(bare, v, source, self.question) for v in own)
        cited = max(scores.get(n, 0.0) for n in cites)
        best = max(scores, key=lambda n: scores[n], default=cites[0])
        if (own and not cited) or best in cites:
            return None
        return (
            _cited_instead(text, [best])
            if scores[best] >= max(cited * BETTER_SOURCE, cited + BETTER_MARGIN)
            else None
        )

    def _without_idle_markers(self, text: str, cites: list[int]) -> str | None:
        """``text`` with only the markers of the cited sources that best hold what it adds; None when
        every marker stays.

        For each value the sentence adds beyond the question, the cited sources that hold it are
        ranked by how much of the sentence surrounds the value there (:func:`_context_support`), and
        those with at least :data:`CONTEXT_SHARE` of the best one's are kept: "... protocol version
        4. [1][2][3]", where [3] is a page about something else, becomes "... [1][2]", and "... number
        ... is 1000000. [1][2][3]" keeps the timeit page, not the What's New pages that also print
        1000000. A sentence without values of its own keeps the sources whose text holds its words
        best (the local index returns many near-duplicates, and the model cited all of them)."""
        if len(cites) < 2:
            return None
        sentence = " ".join(text.split())
        bare = cite.strip_markers(sentence)
        own = [v.text for v in grounding.values_of(bare) if v.text.lower() not in self.question.lower()]
        kept: set[int] = set()
        if own:
            held: dict[int, set[str]] = {}
            covering = set(cites)  # the cited sources that hold every value
            for n in cites:
                one = cite.check_values(sentence, self.question, [self.sources[n - 1]])
                held[n] = {v for v in own if v in one.values and v not in one.unsupported}
            for value in own:
                # a sentence of two clauses is checked whole against each source: "The default timeout
                # of sqlite3.connect() ... is 5.0, and timeit.timeit() runs by default 1000000
                # executions. [1][2]" reads as a timeout of 1000000 against the timeit page alone, which
                # then held none of it, and lost its marker. A value no cited source holds alone stays
                # with those that print it, and when none does, every marker stays.
                # A small count passes the check anywhere ("counted from a list"): of the sources that
                # hold it, those that print it are the ones that say it.
                holding = [n for n in cites if value in held[n]]
                printing = [n for n in cites if _prints(value, self.sources[n - 1])]
                holders = [n for n in holding if n in printing] or holding or printing
                if not holders:
                    return None
                covering &= set(holders)
                scores = {
                    n: _context_support(bare, value, self.sources[n - 1], self.question) for n in holders
                }
                kept.update(n for n in holders if scores[n] >= max(scores.values()) * CONTEXT_SHARE)
            # a source that holds only some of the values adds nothing to one that holds them all: "...
            # the UTC offset in the form ±HHMM[SS[.ffffff]]. [1][2]" where the time module's page
            # prints only "+HHMM" and datetime's prints the whole form
            kept = (kept & covering) or kept
        else:
            scores = {n: cite.lexical_support(bare, cite.source_text(self.sources[n - 1])) for n in cites}
            if max(scores.values()) > 0:
                kept = {n for n in cites if scores[n] >= max(scores.values()) * CONTEXT_SHARE}
        if not kept or kept >= set(cites):
            return None

        out = _unmarked(text, kept)
        return out if out != text else None

    def _holders(self, text: str) -> list[int]:
        """For a sentence that passed without a marker: the fewest sources (first best) that hold its
        values on their own, as markers; [] when it has no value to look up, or no source holds all."""
        sentence = " ".join(text.split())
        own = [v for v in grounding.values_of(cite.strip_markers(sentence)) if v.text not in self.question]
        if not own or cite.is_decline(sentence) or sentence.startswith("```"):
            return []  # nothing of its own to find: any source would "hold" it
        holding = [
            n
            for n, source in enumerate(self.sources, start=1)
            if cite.check_values(sentence, self.question, [source]).ok
        ]
        # a small count passes the check in any source; first the one that prints the values
        printing = [n for n in holding if all(_prints(v.text, self.sources[n - 1]) for v in own)]
        if printing or holding:
            return [(printing or holding)[0]]
        for n, m in combinations(range(1, len(self.sources) + 1), 2):
            if cite.check_values(sentence, self.question, [self.sources[n - 1], self.sources[m - 1]]).ok:
                return [n, m]
        return []

    # --- releasing -----------------------------------------------------------------------------------

    def _slice(self, a: int, b: int) -> list[str]:
        """``_pending[a:b]`` as the model's pieces (cut at a and b)."""
        edges = [a, *[c for c in self._cuts if a < c < b], b]
        return [self._pending[x:y] for x, y in pairwise(edges) if y > x]

    def _release(self, end: int) -> list[str]:
        out = self._slice(0, end)
        self._pending = self._pending[end:]
        self._cuts = [c - end for c in self._cuts if c > end]
        if _WORDS.search("".join(out)):
            self.shown = True
        return out


# The share of the best-placed source's support that a cited source needs to keep its marker: the
# function's signature and the paragraph that explains its default both stay; a page where the figure
# stands beside other words goes.
CONTEXT_SHARE = 0.5


# An uncited source takes the place of the one a sentence cites when its support (_context_support) is at
# least this many times the cited one's, and this much higher: a page that holds the value with the
# sentence's words around it, against one where the same figure stands beside other words.
BETTER_SOURCE = 1.5
BETTER_MARGIN = 0.2


# "The answer is: By default, ..." and "The answer is that when ...": the 1.5B model's way of
# "starting with the answer itself", said before a whole sentence that needs no lead-in
# "The answer is [1] The logging alternative: ...": its markers, run into the sentence, are the sentence's
_ANSWER_IS = re.compile(
    r"^(?P<space>\s*)the answer is(?::\s*|\s+that\s+|\s*(?P<marks>(?:\[\d+\])+)\s+(?=[A-Z]))(?=\w)",
    re.IGNORECASE,
)
_LOWER_WORD = re.compile(r"[a-z]+\b(?![_.(-])")


def _opening(prefix: list[str], out: list[str]) -> list[str]:
    """The first text shown, tidied: "The answer is:" left out before a sentence of four words or more
    (not before a bare value: "The answer is: 1961." has no other subject), and markers the model wrote
    before its first sentence ("[1][3] A shallow clone is created ...") moved after it, when it has
    none of its own."""
    text = "".join(out)
    lead = _ANSWER_IS.match(text)
    marks = cite.cited_numbers("".join(prefix))
    if lead is not None:
        rest = text[lead.end() :]
        first = re.split(r"(?<=[.!?])\s", cite.strip_markers(rest), maxsplit=1)[0]
        if len(re.findall(r"\w+", first)) >= 4:
            upper = rest[:1].upper() if _LOWER_WORD.match(rest) else rest[:1]  # "pg_dump" stays as it is
            text = lead.group("space") + upper + rest[1:]
            marks = list(dict.fromkeys([*marks, *cite.cited_numbers(lead.group("marks") or "")]))
        else:
            lead = None
    if lead is None and not marks:
        return [*prefix, *out]
    if marks and not cite.cited_numbers(text):
        body = text.rstrip()
        return [body.lstrip(), " " + markers(marks), text[len(body) :]]
    return [*prefix, text]


def _cited_instead(text: str, found: list[int]) -> str:
    """``text`` with its markers replaced by those of ``found``, at its end."""
    bare = _unmarked(text, set())
    body = bare.rstrip()
    return body + " " + markers(found) + bare[len(body) :]


def _context_support(sentence: str, value: str, source: Source, question: str) -> float:
    """How much of ``sentence`` the ``source`` says around ``value``: the best lexical support of the
    source's sentences that hold it (with one neighbour each side) and of its table rows that hold it
    (with their header: a row's own words are its key and figures, its meaning is in the header), or
    of the whole text when the value is written differently there ("1,000,000" for "1000000"). A
    row that the ``question`` names by its key, and that holds the value, is full support."""
    text = cite.source_text(source)
    parts = sentences_of_passage(text)
    needle = " ".join(value.split()).lower()
    windows = [" ".join(parts[max(0, i - 1) : i + 2]) for i, p in enumerate(parts) if needle in _flat(p)]
    # a table prints "8" under "Minimum size in bytes" where the sentence says "8 bytes"
    held, _ = rows.holding_rows(rows.table_rows([text]), value, question, [text])
    if any(rows.names_row(question, row.line) for row in held):
        return 1.0
    windows += [row.quote() for row in held]
    if not windows:
        return cite.lexical_support(sentence, text)
    return max(cite.lexical_support(sentence, w) for w in windows)


def _prints(value: str, source: Source) -> bool:
    """Whether ``source`` writes ``value`` itself: its text, or for a figure the same number in any
    format ("1,000,000" for "1000000"). The R*Tree page prints the 5 of "... supports is 5. [1][2]";
    the run-time limits page [2] has no 5, only the words "the maximum number of"."""
    text = cite.source_text(source)
    claimed = figures.numbers(value)
    if not claimed:
        return " ".join(value.split()).lower() in _flat(text)
    held = figures.numbers(text)
    return all(any(figures.same_number(f, e) for e in held) for f in claimed)


def _flat(text: str) -> str:
    return " ".join(text.split()).lower()


def _before_loop(text: str) -> int:
    """Where the loop that ends ``text`` begins: at its first sentence that comes again later, or, when
    no complete sentence comes again ("0.000..."), after the last complete one."""
    spans = units(text, final=False)
    keys = [_flat(cite.strip_markers(text[a:b])) for a, b in spans]
    for i, key in enumerate(keys):
        if key and key in keys[i + 1 :]:
            return spans[i][0]
    return spans[-1][1] if spans else 0


def _said_key(text: str) -> str:
    """A sentence as compared for repeats (its words, lower-cased, without markers); "" for one too
    short to tell ("Yes.")."""
    key = " ".join(cite.strip_markers(text).lower().split())
    return key if len(key) >= 20 else ""
