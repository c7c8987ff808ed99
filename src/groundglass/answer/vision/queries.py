"""Search queries from visual facts and the user's words: deterministic rules, no model.

Hand-written because no library turns OCR lines and class labels into search queries; the rules are
few and each is tested.

1. Clues are collected from every image, each with a kind; kinds rank
   ``error`` > ``name`` > ``caption`` > ``label`` > ``text``:

   - ``error``: an OCR line that reads like an error message: a ``SomethingError``/``Exception``/
     ``Warning`` name, or words such as error, failed, fatal, denied, not found, cannot, unable,
     invalid, segmentation fault, panic, errno, exit code. Lines with an exception name come first.
     Cleaned for search: prompts (``$``, ``>>>``), file paths, hex addresses, ``line N``, timestamps
     and quotes are removed. The bare ``Traceback (most recent call last):`` header is skipped.
   - ``name``: a short OCR line (1-6 words) whose words are mostly Capitalised or UPPER CASE (place
     names on signs, titles, brands), unless all its words are sign boilerplate ("Welcome to",
     "Exit"). Bigger text first (signs print the place name largest). UPPER CASE words become
     Capitalised.
   - ``caption``: the first sentence of the vision model's caption.
   - ``label``: the best ImageNet label at or above ``label_min_score``. When the image has text
     clues, a label counts only at 0.5 or more and never when it names the medium rather than the
     subject (web site, screen, monitor, menu, envelope, street sign...).
   - ``text``: when an image has no error or name line, its longest line of 3+ words that reads
     like prose (not code).

2. The first query puts the question and the best clue together. A deictic word in the question
   (this, that, it, these, those, "the image/photo/screenshot", "this error") is replaced by the
   clue: "how do I fix this?" -> "how do I fix ModuleNotFoundError: No module named requests?".
   Without one, the clue is appended to the question. With no question ("what is this?" implied)
   the first query is "what is CLUE" for names and labels, the clue itself for errors, captions
   and text.
3. The other clues follow as queries of their own, in rank order, without duplicates (compared on
   lower-case words), up to ``max_queries``.
4. With no clue at all the question is the only query; with no question either, the best label
   whatever its score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from groundglass.answer.index.query import STOPWORDS
from groundglass.answer.vision.facts import VisualFacts

IMPLIED_QUESTION = "what is this?"
ClueKind = Literal["error", "name", "caption", "label", "text"]
_RANK: dict[str, int] = {"error": 0, "name": 1, "caption": 2, "label": 3, "text": 4}

_EXCEPTION_NAME = re.compile(r"\b[A-Z][A-Za-z0-9_]*(?:Error|Exception|Warning|Fault)\b")
_ERROR_WORDS = re.compile(
    r"\b(?:error|errors|exception|fatal|failed|failure|fails|denied|refused|not found|no such|cannot|"
    r"can't|could not|couldn't|unable to|invalid|undefined|unexpected|segmentation fault|panic|errno|"
    r"exit (?:code|status)|traceback|timed out|timeout|abort(?:ed)?|crash(?:ed)?|missing|not enough|"
    r"insufficient|out of (?:memory|space)|disk full|no space)\b",
    re.IGNORECASE,
)
_TRACEBACK_HEADER = re.compile(r"^traceback \(most recent call last\):?$", re.IGNORECASE)
_PROMPT = re.compile(r"^\s*(?:(?:\$|>>>|%|PS [^>]*>|[A-Za-z]:\\[^>]*>)\s*|[#>]\s+)")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@~+-]+){2,}[\\/]?")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_LINE_NO = re.compile(r"\bline \d+\b,?", re.IGNORECASE)
_TIMESTAMP = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?Z?)?\b"
    r"|\b\d{2}:\d{2}:\d{2}\b"
)
_QUOTES = re.compile(r"[\"'`‘’“”«»]")
_ALPHA_WORD = re.compile(r"[^\W\d_]+")
_CODE_LIKE = re.compile(
    r"[=;{}<>\[\]]|\w\(|^\s*(?:def|import|return|class|function|var|const|let)\s"
    r"|^\s*from\s+\S+\s+import\b"
)
_DEICTIC = re.compile(
    r"\b(?:(?:the|this|that|my)\s+(?:image|picture|photo|photograph|pic|screenshot|screen ?shot)|"
    r"(?:this|that|these|those)(?:\s+(?:error|message|thing|object|place|sign|one|here))?|it)\b",
    re.IGNORECASE,
)
_CONNECTOR_TEXT = "of the and de la le du des di del da van von der den am an im on upon sur to at in y e et"
_CONNECTORS = frozenset(_CONNECTOR_TEXT.split())
_BOILERPLATE_TEXT = """
welcome welcomes exit entrance entry open closed push pull stop way street road st rd avenue ave city town
village centre center station km mi m min no parking please thank thanks
"""
_BOILERPLATE = STOPWORDS | frozenset(_BOILERPLATE_TEXT.split())
_MEDIUM_LABELS = frozenset(
    {
        "web site",
        "screen",
        "monitor",
        "television",
        "menu",
        "envelope",
        "book jacket",
        "comic book",
        "crossword puzzle",
        "scoreboard",
        "street sign",
        "notebook",
        "packet",
        "carton",
        "binder",
        "jigsaw puzzle",
        "digital clock",
        "analog clock",
        "rule",
        "slide rule",
        "oscilloscope",
        "desktop computer",
        "laptop",
        "home theater",
        "toyshop",
        "bookshop",
        "tobacco shop",
        "confectionery",
        "barbershop",
        "pay-phone",
        "cash machine",
        "vending machine",
        "prayer rug",
        "doormat",
        "handkerchief",
        "paper towel",
    }
)


@dataclass(frozen=True)
class Clue:
    kind: ClueKind
    text: str
    weight: float = 0.0  # orders clues of one kind: bigger first


# ---------------------------------------------------------------------------------------- line rules


def clean_error(line: str) -> str:
    """An error line without what changes from machine to machine (paths, addresses, times, quotes)."""
    text = _PROMPT.sub("", line)
    for pattern in (_PATH, _HEX, _LINE_NO, _TIMESTAMP, _QUOTES):
        text = pattern.sub(" ", text)
    words = text.split()[:16]
    return " ".join(words).strip(" ,;:-")


def is_error_line(line: str) -> bool:
    return bool(_EXCEPTION_NAME.search(line) or _ERROR_WORDS.search(line))


def as_name(line: str) -> str | None:
    """The line as a proper name (place, title, brand), or None when it does not read like one."""
    if _CODE_LIKE.search(line) or sum(c.isdigit() for c in line) > len(line) / 2:
        return None
    words = _ALPHA_WORD.findall(line)
    if not 1 <= len(words) <= 6 or sum(len(w) for w in words) < 3:
        return None
    if all(w.lower() in _BOILERPLATE for w in words):
        return None
    content = [w for w in words if w.lower() not in _CONNECTORS and len(w) > 1]  # "m" of "4478 m" is a unit
    if not content:
        return None
    capitalised = sum(1 for w in content if w[0].isupper())
    if capitalised / len(content) < 0.6:
        return None
    text = " ".join(line.split()).strip(" ,;:-.!")
    if text.isupper():
        text = " ".join(w.capitalize() if len(w) > 3 else w for w in text.split())
    return text


def is_prose(line: str) -> bool:
    words = line.split()
    letters = sum(c.isalpha() for c in line)
    return len(words) >= 3 and letters >= 0.6 * len(line.replace(" ", "")) and not _CODE_LIKE.search(line)


def _first_sentence(text: str, max_words: int = 25) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return " ".join(sentence.split()[:max_words]).rstrip(".")


# ------------------------------------------------------------------------------------------- clues


def image_clues(facts: VisualFacts, label_min_score: float = 0.2) -> list[Clue]:
    """The clues of one image, best first."""
    errors: list[Clue] = []
    names: list[Clue] = []
    prose: list[Clue] = []
    for line in facts.lines:
        text = " ".join(line.text.split())
        if _TRACEBACK_HEADER.match(text):
            continue
        height = float(line.box[3] - line.box[1])
        if is_error_line(text):
            cleaned = clean_error(text)
            if len(_ALPHA_WORD.findall(cleaned)) >= 1:
                errors.append(Clue("error", cleaned, 1.0 if _EXCEPTION_NAME.search(text) else 0.5))
            continue
        name = as_name(_PROMPT.sub("", text))
        if name:
            names.append(Clue("name", name, height))
        elif is_prose(text):
            prose.append(Clue("text", " ".join(text.split()[:16]), float(len(text))))
    clues = sorted(errors, key=lambda c: -c.weight)[:2] + sorted(names, key=lambda c: -c.weight)[:2]
    if facts.caption:
        clues.append(Clue("caption", _first_sentence(facts.caption)))
    has_text = bool(errors or names or prose)
    for label in facts.labels[:1]:
        if label.score < label_min_score:
            continue
        if has_text and (label.score < 0.5 or label.name in _MEDIUM_LABELS):
            continue
        clues.append(Clue("label", label.name, label.score))
    if not errors and not names:
        clues += sorted(prose, key=lambda c: -c.weight)[:1]
    return clues


def _key(text: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in re.findall(r"\w+", text))


def _main_query(question: str, clue: Clue) -> str:
    if not question:
        return f"what is {clue.text}" if clue.kind in ("name", "label") else clue.text
    if _DEICTIC.search(question):
        return _DEICTIC.sub(lambda _: clue.text, question, count=1)
    return f"{question.rstrip()} {clue.text}"


def image_queries(
    facts: VisualFacts | Sequence[VisualFacts],
    question: str = "",
    *,
    max_queries: int = 4,
    label_min_score: float = 0.2,
) -> list[str]:
    """Search queries for a question about images (``question`` may be empty: "what is this?")."""
    all_facts = [facts] if isinstance(facts, VisualFacts) else list(facts)
    question = " ".join(question.split())
    per_image = [image_clues(f, label_min_score) for f in all_facts]
    clues = sorted((c for cs in per_image for c in cs), key=lambda c: _RANK[c.kind])  # stable: image order
    if not clues:
        if question:
            return [question]
        labels = sorted((lb for f in all_facts for lb in f.labels), key=lambda lb: -lb.score)
        return [f"what is {labels[0].name}"] if labels else []
    candidates = [_main_query(question, clues[0])] + [c.text for c in clues]
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for query in candidates:
        key = _key(query)
        if key and key not in seen:
            seen.add(key)
            out.append(query)
        if len(out) == max_queries:
            break
    return out
