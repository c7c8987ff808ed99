"""An answer read off a source when the model has failed to write a checked one.

Asked "What are the default width of pprint.PrettyPrinter and the default width of textwrap.fill()?",
the 1.5B model answered the second part "80" (pprint's) in every draft, refused each time, although
``textwrap.fill(text, width=70, ...)`` was among its sources; told what was wrong and pointed at the
line, it declined. A question about the default of a parameter of a callable that a source prints the
signature of is answered by that signature alone: "The default width of textwrap.fill() is 70. [3]".
That sentence is built from the question's own names and the signature's value, so it says nothing a
source does not; it is still checked like any other, and used only after the model's drafts failed.

A default stated in prose is quoted instead (:func:`stated_default`): asked which port ``python -m
http.server`` uses, the model wrote only "[2]" twice, with "The server listens to port 8000 by
default." in [2]. The quote is taken only when nothing is left in doubt: every verbatim term of the
question is in that source, every word of its subject is in the sentence (or the one before it, or
the page's title), the question's figures ("since Python 3.8") are in it too, and every sentence of
the sources that states such a default states the same value. A question the sources cannot answer
names a term, a version or a subject that no source holds.

A figure in a table is read off its row (:func:`table_row`): asked "What is the maximum number of
columns in a PostgreSQL table?", with ``| columns per table | 1,600 | ... |`` in its first source, the
model copied the note under the table ("... is further reduced as the tuple being stored must fit in a
single 8192-byte heap page.") in both drafts. The row is shown, labelled by its header, only when the
question names it by the words of its key and no other row is named so
(:func:`groundglass.answer.rows.named_in_words`), and with the same guards as a quote: the question's
verbatim terms in that source, its subject in the row, its header or the page's title, its figures
in the row.

A constant's figure is read off the pair that gives it (:func:`paired_figure`): asked "What is the
numeric value of the SQLITE_CONSTRAINT_UNIQUE extended result code?", with the heading "(2067)
SQLITE_CONSTRAINT_UNIQUE" in its first source, the model answered 8, from ``#define
SQLITE_CONSTRAINT_UNIQUE (SQLITE_CONSTRAINT | (8<<8))`` in another, twice. The pair is shown when the
question names that one constant and asks its value, and every pair of the sources that names it
gives the same figure.

An option is read off the entry that describes it (:func:`described_entry`): asked which option of
httpd runs syntax tests on its configuration files, the model wrote "The command-line option ... is
[1]." twice, with "- -t: Run syntax tests for configuration files only." in [1]. The entry is quoted
when its description says clearly more of the question's words in their order than any other entry's
(:func:`groundglass.answer.entries.described`).
"""

from __future__ import annotations

from collections.abc import Sequence

from groundglass.answer import cite, entries, rows
from groundglass.answer.grounding import check, pairs
from groundglass.answer.grounding.defaults import asks_default, stated_values
from groundglass.answer.grounding.figures import numbers, same_number
from groundglass.answer.grounding.premise import subject_words
from groundglass.answer.grounding.wording import clean, content_stems
from groundglass.answer.querytext import Verbatim, literal_terms
from groundglass.answer.sentences import split_sentences
from groundglass.answer.types import Source

# words of a question too general to tell what it is about: "the default value of the X argument"
_GENERIC = frozenset({"value", "argument", "parameter", "option", "setting", "use"})


def signature_default(question: str, sources: Sequence[Source]) -> str | None:
    """ "The default <parameter> of <callable>() is <value>. [n]" from the first source that prints the
    signature of a callable ``question`` names with a parameter it asks the default of; None when the
    question asks no default, or no source prints one, or the question names several such defaults (one
    sentence would answer only one of them)."""
    if not asks_default(question):
        return None
    verbatim = Verbatim.of(question)
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for n, source in enumerate(sources, start=1):
        for name, param, value in verbatim.signature_defaults(source.text):
            found.setdefault((name, param), (n, value))
    if len(found) != 1:
        return None
    [((name, param), (n, value))] = found.items()
    sentence = f"The default {param} of {name}() is {value}. [{n}]"
    return sentence if check(sentence, question, [sources[n - 1].text]).ok else None


def stated_default(question: str, sources: Sequence[Source]) -> str | None:
    """'The sources say: "<the source's sentence>" [n]' for the one default ``question`` asks that
    the sources state in prose (see the module's docstring); None when the question asks no default,
    or no sentence states it with the question's subject around it, or two sentences state different
    values."""
    if not asks_default(question):
        return None
    terms = [t.lower() for t in literal_terms(question)]
    subject = subject_words(question) - {w for t in terms for w in content_stems(t)} - _GENERIC
    if not subject:
        return None
    figures = numbers(question)
    found: list[tuple[int, str, str]] = []  # (source, quote, value)
    for n, source in enumerate(sources, start=1):
        text = cite.source_text(source).lower()
        if not all(t in text for t in terms):
            continue
        title = content_stems(source.title)
        page = content_stems(source.text)
        sentences = [clean(s) for s in split_sentences(source.text)]  # no list bullets in a quote
        for i, sentence in enumerate(sentences):
            values = stated_values(sentence, question)
            if not values:
                continue
            before = sentences[i - 1] if i else ""
            own = content_stems(sentence)
            near = own | content_stems(before) | title
            if not _about(subject, near, own | content_stems(before), page):
                continue
            held = numbers(f"{before} {sentence}")
            if not all(any(same_number(f, h) for h in held) for f in figures):
                continue  # "In Python 3.14, ...?" is not answered by "Changed in version 3.8: ..."
            quote = sentence if subject & own else f"{before} {sentence}"
            found.append((n, quote, _value_key(values[0])))
    keys = {value for _, _, value in found}
    if not found or not all(a in b or b in a for a in keys for b in keys):
        return None  # "Committed" and "read committed" are one value; 3 and 4 are two
    n, quote, _ = found[0]
    # the quote is checked as a sentence of its own: its values are the source's by construction, the
    # rest of the check (a default said of another setting, an unspoken premise) still applies
    if not check(quote, question, [sources[n - 1].text]).ok:
        return None
    return f'The sources say: "{quote.strip()}" [{n}]'


def table_row(question: str, sources: Sequence[Source]) -> str | None:
    """'The sources give: "Item: columns per table; Upper Limit: 1,600; ..." [n]' for the one table row
    ``question`` names in words (module docstring); None when none, or a guard fails."""
    texts = [cite.source_text(s) for s in sources]
    row = rows.named_in_words(content_stems(question), texts)
    if row is None:
        return None
    source = sources[row.source - 1]
    terms = [t.lower() for t in literal_terms(question)]
    if not all(t in texts[row.source - 1].lower() for t in terms):
        return None
    subject = subject_words(question) - _GENERIC
    near = content_stems(f"{row.header} {row.line}") | content_stems(source.title)
    if not subject or not _about(subject, near, near, content_stems(source.text)):
        return None
    held = numbers(row.line)
    if not all(any(same_number(f, h) for h in held) for f in numbers(question)):
        return None
    quote = row.labelled()
    if not check(quote, question, [source.text]).ok:
        return None
    return f'The sources give: "{quote}" [{row.source}]'


def paired_figure(question: str, sources: Sequence[Source]) -> str | None:
    """'The sources give: "(2067) SQLITE_CONSTRAINT_UNIQUE" [n]' for a question that asks the value of
    the one constant it names, when the sources pair that name with one figure (module docstring);
    None otherwise."""
    name = pairs.asks_value(question)
    if name is None:
        return None
    found = pairs.pairs_naming(name, [cite.source_text(s) for s in sources])
    if not found or len({figure for _, _, figure in found}) != 1:
        return None
    i, quote, _ = found[0]
    return f'The sources give: "{" ".join(quote.split())}" [{i + 1}]'


def _about(subject: set[str], near: set[str], window: set[str], page: set[str]) -> bool:
    """The sentence speaks of the question's subject: the sentence or the one before it holds one of
    its words, and those two with the page's title hold them all, or all but one that the page holds
    ("PostgreSQL" is said on the page, not in each setting's entry)."""
    missing = subject - near
    return bool(subject & window) and (
        not missing or (len(missing) == 1 and len(subject) >= 3 and missing <= page)
    )


def _value_key(value: str) -> str:
    """The same default written "28" or "28 places", "4" or "4."."""
    figures = numbers(value)
    return f"{figures[0].value:g}" if figures else value.lower().strip(" .'\"“”")


def described_entry(question: str, sources: Sequence[Source]) -> str | None:
    """'The sources give: "-t: Run syntax tests for configuration files only." [n]' for a question that
    asks which option (directive, command...) does what one entry of a source's definition list says
    it does (:func:`groundglass.answer.entries.described`); None otherwise. Asked which option of httpd
    runs syntax tests, the 1.5B model wrote "The option ... is [1]." twice, with that entry in [1]."""
    entry = entries.described(question, [cite.source_text(s) for s in sources], entries.QUOTED_RUN)
    if entry is None:
        return None
    return f'The sources give: "{entry.line()}" [{entry.source + 1}]'
