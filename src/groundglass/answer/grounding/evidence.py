"""The cited sources' side of the value check: their text prepared once, and the lookups in it.

Each kind of value has its own test of "the source holds it": an identifier as a whole token (or all
its parts), a name or the longer word it begins, a figure at the claim's precision near the claim's
other words, or a figure the sentence says it computed (a total, a difference, a count).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from groundglass.answer.grounding.figures import Number, distinctive, numbers, same_number
from groundglass.answer.grounding.values import POLARITY, norm_ident
from groundglass.answer.grounding.wording import FILLER_STEMS, STOP_WORDS, WORD, content_stems, stem
from groundglass.answer.sentences import OPENING_PRONOUN
from groundglass.answer.sentences import split_sentences as sentences_of_passage


@dataclass
class Evidence:
    """The cited sources' text, prepared once for the many lookups of :func:`.checker.check`."""

    text: str  # all of it, lower-cased, whitespace collapsed
    sentences: list[str]  # lower-cased
    sentence_stems: list[set[str]]
    sentence_numbers: list[list[Number]]
    stems: set[str]
    polarity: list[set[str]]  # per sentence: the yes/no classes and the polarity words it holds
    source: list[int]  # per sentence: which of the texts it is from

    @classmethod
    def of(cls, texts: Sequence[str]) -> Evidence:
        sentences: list[str] = []
        source: list[int] = []
        for n, t in enumerate(texts):
            split = sentences_of_passage(t)
            sentences += split
            source += [n] * len(split)
        lowered = [" ".join(s.split()).lower() for s in sentences]
        stems = _with_subjects(
            lowered, source, _with_table_headers(lowered, [content_stems(s) for s in sentences])
        )
        polarity = []
        for s in lowered:
            found = set()
            for w in WORD.findall(s):
                if w in POLARITY:
                    found.add(POLARITY[w])
                found.add(w)
            if "default" in s:
                found.add("by default")
            polarity.append(found)
        return cls(
            text=" ".join(" ".join(texts).split()).lower(),
            sentences=lowered,
            sentence_stems=stems,
            sentence_numbers=[numbers(s) for s in sentences],
            stems=set().union(*stems) if stems else set(),
            polarity=polarity,
            source=source,
        )

    def windows(self, anchors: set[str], radius: int = 0) -> list[int]:
        """Indices of the sentences within ``radius`` of one that holds an anchor stem (all of them
        when there are no anchors)."""
        if not anchors:
            return list(range(len(self.sentences)))
        hits = [i for i, s in enumerate(self.sentence_stems) if s & anchors]
        near: set[int] = set()
        for i in hits:
            near.update(range(max(0, i - radius), min(len(self.sentences), i + radius + 1)))
        return sorted(near)

    def sources_with(self, pattern: re.Pattern[str]) -> set[int]:
        """Which of the texts have a sentence that ``pattern`` (lower-case) is found in."""
        return {self.source[i] for i, s in enumerate(self.sentences) if pattern.search(s)}

    def contains_term(self, term: str) -> bool:
        """``term`` (lower-cased) occurs as a whole token in the text."""
        return holds_term(self.text, term)


# Words that name no subject: "The default is 5." says whose default only through the sentence before it.
_SUBJECTLESS = frozenset(stem(w) for w in ("default", "defaults", "value", "values"))


def _with_subjects(lowered: list[str], source: list[int], stems: list[set[str]]) -> list[set[str]]:
    """``stems`` where a sentence that names no subject of its own (only figures and words such as
    "default": "The default is 5.") or that opens with a pronoun ("It defaults to 30.") also has the
    stems of the sentence before it in the same text, which is what it speaks of. qshape's manual
    says "-m min_subdomains When used with the -p option, sets the minimum subdomain count needed to
    show a separate line for a parent domain. The default is 5.", and "The default minimum subdomain
    count is 5" found its 5 in no sentence about subdomains."""
    out = [set(s) for s in stems]
    for i in range(1, len(stems)):
        if source[i] != source[i - 1]:
            continue
        own = {w for w in stems[i] if not w.isdigit() and w not in FILLER_STEMS and w not in _SUBJECTLESS}
        if not own or OPENING_PRONOUN.match(lowered[i]):
            out[i] |= stems[i - 1]
    return out


def holds_term(text: str, term: str) -> bool:
    """``term`` occurs in ``text`` as a whole token (whitespace in ``term`` collapsed; compare
    lower-cased texts for a match whatever the case)."""
    term = " ".join(term.split())
    if not term:
        return True
    return re.search(r"(?<![\w])" + re.escape(term) + r"(?![\w])", text) is not None


_TABLE_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")


def _with_table_headers(lowered: list[str], stems: list[set[str]]) -> list[set[str]]:
    """Each table row's stems with its header's: "| d | double | float | 8 |" is about the "minimum
    size in bytes" only through the header row above it, which the sentence split cuts off."""
    out = [set(s) for s in stems]
    header: set[str] = set()
    for i, line in enumerate(lowered):
        if not line.startswith("|"):
            header = set()
        elif _TABLE_RULE.match(line.replace(" ", "")):
            header = stems[i - 1] if i > 0 and lowered[i - 1].startswith("|") else set()
        else:
            out[i] |= header
    return out


# a release number, which Node.js's manual writes "v18.0.0" and an answer often "18.0.0" (or the reverse)
_RELEASE = re.compile(r"v?\d+(?:\.\d+)+")


def identifier_found(token: str, evidence: Evidence) -> bool:
    norm = norm_ident(token)
    if evidence.contains_term(norm):
        return True
    if _RELEASE.fullmatch(norm) and evidence.contains_term(norm[1:] if norm[0] == "v" else f"v{norm}"):
        return True
    # "json.dumps" when the page says "dumps(obj)" in the json module's section; "--no-cache" as
    # "no-cache": every part of it must still be there.
    parts = [p for p in re.split(r"[./\\:]+|^-+", norm) if p]
    return len(parts) > 1 and all(evidence.contains_term(p) for p in parts)


def code_found(code: str, evidence: Evidence) -> bool:
    if evidence.contains_term(code.lower()):
        return True
    names = [t for t in re.findall(r"[A-Za-z_][\w]*", code) if len(t) > 1]
    nums = numbers(code)
    return all(evidence.contains_term(n.lower()) for n in names) and all(
        any(same_number(n, e) for ns in evidence.sentence_numbers for e in ns) for n in nums
    )


def name_found(word: str, evidence: Evidence) -> bool:
    """The name, or a longer word it begins ("Democrat" in "Democratic Party")."""
    w = word.lower()
    if evidence.contains_term(w) or stem(word) in evidence.stems:
        return True
    return len(w) >= 5 and re.search(r"(?<![\w])" + re.escape(w), evidence.text) is not None


def quoted_found(quoted: str, evidence: Evidence) -> bool:
    plain = " ".join(re.findall(r"\w+", quoted.lower()))
    return (
        evidence.contains_term(quoted.lower())
        or evidence.contains_term(plain)
        or plain in " ".join(re.findall(r"\w+", evidence.text))
    )


# "the number of columns", "the maximum size of a field": what a limit is a limit of.
_COUNTED = re.compile(r"\b(?:number|count|amount|size|length|depth)\s+of\s+(?:an?\s+|the\s+)?(\w+)")


def bound_found(word: str, sentence: str, evidence: Evidence) -> bool:
    """A limit said in words ("unlimited") in a cited sentence that names what it limits, when
    ``sentence`` says what ("the maximum number of columns ... is unlimited"): the information
    schema's "arrays always have unlimited maximum cardinality" says nothing of columns. Only the
    sentence's own words count, not its table's column names ("Column" heads that table)."""
    holding = [s for s in evidence.sentences if re.search(rf"\b{re.escape(word)}\b", s)]
    counted = {stem(m.group(1)) for m in _COUNTED.finditer(sentence.lower())}
    if not counted:
        return bool(holding)
    return any(counted & content_stems(s) for s in holding)


_ARITHMETIC = re.compile(
    r"\b(?:total|sum|combined|together|difference|apart|after|later|before|earlier|"
    r"older|younger|longer|shorter|more than|fewer than|less than|aged?|old|"
    r"between|span|spanned|lasted|gap|increase|decrease)\b",
    re.IGNORECASE,
)
_COUNT_QUESTION = re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b", re.IGNORECASE)
_ARITHMETIC_QUESTION = re.compile(r"\bhow (?:long|old|much|far)\b", re.IGNORECASE)
# A count that a source states rather than lists: a default or a limit. "How many subdomains must a
# parent domain have by default to get a line of its own?" was answered "The answer is 2." from
# sources that print no 2, where qshape's manual says "The default is 5."
_STATED_FIGURE = re.compile(r"\b(?:default\w*|at (?:most|least)|maxim\w+|minim\w+|limit\w*)\b", re.IGNORECASE)


_ASKED_IN = re.compile(r"\b(?:how many|in)\s+([a-z]+)\b", re.IGNORECASE)


def asked_unit(question: str) -> str | None:
    """The unit ``question`` asks its figure in ("For how many seconds ...", "... in bytes?"), canonical
    as :func:`.figures.numbers` writes units, or None."""
    for word in _ASKED_IN.findall(question):
        found = numbers(f"1 {word}")
        if found and found[0].unit:
            return found[0].unit
    return None


def may_compute(sentence: str, question: str) -> bool:
    """The sentence or question asks for a figure worked out from the sources (a total, a gap, a count),
    which no source need print."""
    return bool(
        _ARITHMETIC.search(sentence)
        or _ARITHMETIC_QUESTION.search(question)
        or _COUNT_QUESTION.search(question)
    )


def _counted(claim: Number, sentence: str, evidence: Evidence) -> bool:
    """ "two Nobel prizes" where the sources name a Nobel prize exactly twice: a count of what they say."""
    after = sentence[claim.start + len(claim.text) :]
    following = [stem(w) for w in WORD.findall(after)[:2] if w.lower() not in STOP_WORDS]
    tokens = [stem(w) for w in WORD.findall(evidence.text)]
    return any(tokens.count(w) == int(claim.value) for w in following)


def number_found(claim: Number, sentence: str, question: str, evidence: Evidence, near: list[int]) -> bool:
    everywhere = range(len(evidence.sentences)) if distinctive(claim) else near
    lowered = sentence.lower()
    at = lowered.find(claim.text.lower())
    if distinctive(claim) and at > 0 and _COUNTED.search(lowered[:at]):
        # a figure that rarely occurs by chance may stand anywhere in the sources, unless the sentence
        # says what it counts: then a source sentence must speak of that. "The maximum number of
        # columns in a table is 25% of the memory in your system" passed on shared_buffers' "... is 25%
        # of the memory in your system", whose words after the figure it had copied
        everywhere = evidence.windows(content_stems(lowered[:at]) - FILLER_STEMS)
    # a unit makes a figure rare only where the source writes it too: "at most 20 bytes" of what a
    # client sent is not said by "postscreen_command_count_limit (20)", a bare 20 on another page
    rare_digits = distinctive(replace(claim, unit=None, text=re.sub(r"[^\d.,]", "", claim.text)))
    close = set(near)

    def held(numbers_at: Callable[[int], list[Number]], *, bare: bool = False) -> bool:
        """``bare``: the figures are the source's bare ones, given a unit."""
        return any(
            same_number(claim, e)
            and (rare_digits or (e.unit is not None and not bare) or claim.unit is None or i in close)
            for i in everywhere
            for e in numbers_at(i)
        )

    if held(lambda i: evidence.sentence_numbers[i]):
        return True
    asked = asked_unit(question)
    # the source's bare figures are in the unit the question asks in: "Number of seconds to cache
    # credentials (default: 900)" says "15 minutes" for "For how many seconds ...?"
    if (
        claim.unit
        and asked
        and asked != claim.unit
        and held(
            lambda i: [replace(e, unit=asked) for e in evidence.sentence_numbers[i] if not e.unit], bare=True
        )
    ):
        return True
    small = claim.value == int(claim.value) and 0 <= claim.value <= 20
    if small and _COUNT_QUESTION.search(question) and not _STATED_FIGURE.search(question):
        return True  # counted from a list in the sources
    if small and claim.value >= 2 and _counted(claim, sentence, evidence):
        return True
    if _ARITHMETIC.search(sentence) or _ARITHMETIC_QUESTION.search(question):
        pool = sorted({e.value for ns in evidence.sentence_numbers for e in ns})[:300]
        target = claim.value
        for i, a in enumerate(pool):
            for b in pool[i + 1 :]:
                if math.isclose(a + b, target) or math.isclose(abs(b - a), target):
                    return True
    return False


@lru_cache(maxsize=64)
def _evidence_cached(texts: tuple[str, ...]) -> Evidence:
    return Evidence.of(texts)


def evidence_for(texts: Sequence[str]) -> Evidence:
    """:meth:`Evidence.of`, cached for repeated checks against the same cited sources."""
    return _evidence_cached(tuple(texts))
