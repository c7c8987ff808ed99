"""An answer read off a printed signature, quoted from a sentence that states the default, or read
off the table row the question names (:mod:`groundglass.answer.extractive`)."""

from __future__ import annotations

from groundglass.answer.extractive import paired_figure, signature_default, stated_default, table_row
from groundglass.answer.types import Source


def src(text: str, n: int) -> Source:
    return Source(url=f"https://docs.test/{n}", title=f"Doc {n}", text=text, score=0.5, doc_id=str(n))


PPRINT = src("- class pprint.PrettyPrinter(indent=1, width=80, depth=None, stream=None):", 1)
TEXTWRAP = src("- textwrap.fill(text, width=70, *, initial_indent='', placeholder=' [...]'):", 2)


def test_the_default_asked_about_is_read_off_the_signature_of_the_callable_asked_about() -> None:
    question = "What is the default width of textwrap.fill()?"
    assert (
        signature_default(question, [PPRINT, TEXTWRAP]) == "The default width of textwrap.fill() is 70. [2]"
    )
    # the callable named without parentheses
    assert signature_default("default indent of pprint.PrettyPrinter?", [TEXTWRAP, PPRINT]) == (
        "The default indent of pprint.PrettyPrinter() is 1. [2]"
    )


def test_a_parameter_the_question_names_in_words_is_read_off_its_signature() -> None:
    # "compression levels" for compresslevel: the 1.5B model gave zlib's -1 for gzip.open() three times
    gzip = src("- gzip.open(filename, mode='rb', compresslevel=9, encoding=None, errors=None):", 2)
    part = "What are the default compression levels of gzip.open()"
    assert signature_default(part, [TEXTWRAP, gzip]) == "The default compresslevel of gzip.open() is 9. [2]"
    # "mode" is a word of neither question
    assert signature_default("What is the default level of gzip.open()?", [gzip]) is None


def test_nothing_is_read_off_without_one_default_asked_and_printed() -> None:
    assert signature_default("How does textwrap.fill() wrap text?", [TEXTWRAP]) is None  # no default asked
    assert (
        signature_default("What is the default width of textwrap.wrap()?", [TEXTWRAP]) is None
    )  # not printed
    # two defaults asked: one sentence would answer one of them
    both = "What are the default widths of pprint.PrettyPrinter and textwrap.fill()?"
    assert signature_default(both, [PPRINT, TEXTWRAP]) is None
    # a call in an example passes an argument; it is no signature
    example = src("Example: >>> textwrap.fill(text, width=40)", 1)
    assert signature_default("What is the default width of textwrap.fill()?", [example]) is None
    # None says nothing of what the default does: the prose explains it
    cache = src("@functools.lru_cache(maxsize=None)", 1)
    assert signature_default("What is the default maxsize of functools.lru_cache?", [cache]) is None


HTTP_SERVER = Source(
    url="https://docs.test/http.server",
    title="http.server — HTTP servers",
    text=(
        "http.server can also be invoked directly using the -m switch of the interpreter. This serves files "
        "relative to the current directory: python -m http.server\nThe server listens to port 8000 by "
        "default. The default can be overridden by passing the desired port number as an argument: "
        "python -m http.server 9000"
    ),
)
PICKLE = Source(
    url="https://docs.test/pickle",
    title="pickle — Python object serialization",
    text=(
        "An integer, the default protocol version used for pickling. Currently the default protocol is 4, "
        "first introduced in Python 3.4. Changed in version 3.0: The default protocol is 3. Changed in "
        "version 3.8: The default protocol is 4."
    ),
)
ISOLATION = Source(
    url="https://docs.test/runtime-config-client",
    title="Client Connection Defaults",
    text=(
        "- default_transaction_isolation (enum):\n- Each SQL transaction has an isolation level. This "
        "parameter controls the default isolation level of each new transaction. The default is "
        "“read committed”."
    ),
)


def test_a_default_stated_in_prose_is_quoted_with_its_source() -> None:
    # the 1.5B model wrote only "[2]" for this part, twice; the 9000 after it is an example, no default
    said = stated_default("Which ports do python -m http.server use by default?", [PICKLE, HTTP_SERVER])
    assert said == 'The sources say: "The server listens to port 8000 by default." [2]'
    # the version asked picks the sentence; "The default is ..." is quoted with what it is the default of
    said = stated_default("Which pickle protocol is the default since Python 3.8?", [PICKLE])
    assert said == 'The sources say: "Changed in version 3.8: The default protocol is 4." [1]'
    said = stated_default("What is the default transaction isolation level?", [ISOLATION])
    assert said == (
        'The sources say: "This parameter controls the default isolation level of each new transaction. '
        'The default is “read committed”." [1]'
    )
    # the value before "is the default", and the same value written otherwise in another source
    levels = Source(
        url="https://docs.test/transaction-iso",
        title="Transaction Isolation",
        text="Read Committed is the default isolation level in PostgreSQL. Serializable is the strictest.",
    )
    said = stated_default("What is the default isolation level?", [levels, ISOLATION])
    assert said == 'The sources say: "Read Committed is the default isolation level in PostgreSQL." [1]'
    # what is normally so: asked alone, the default model wrote "[3]" for this part of a question, then
    # declined
    daemon = Source(
        url="https://docs.test/git-daemon.html",
        title="git-daemon(1) Manual Page",
        text=(
            'DESCRIPTION\nA really simple TCP Git daemon that normally listens on port "DEFAULT_GIT_PORT" '
            "aka 9418. It waits for a connection asking for a service, and will serve that service if it is "
            "enabled."
        ),
    )
    said = stated_default("On which TCP port does git daemon listen by default?", [daemon])
    assert said == (
        'The sources say: "A really simple TCP Git daemon that normally listens on port "DEFAULT_GIT_PORT" '
        'aka 9418." [1]'
    )


def test_no_default_is_quoted_for_what_the_sources_do_not_state() -> None:
    # a term, a version or a subject that the sources do not hold
    asked = "Which port does python -m http.server use by default with its --tls-cert option?"
    assert stated_default(asked, [HTTP_SERVER]) is None
    assert stated_default("In Python 3.14, what is the new default pickle protocol?", [PICKLE]) is None
    assert stated_default("What is the default pickle compression level?", [PICKLE]) is None
    # two values stated as the default (3 and 4): which one is meant is not the quote's to decide
    assert stated_default("What is the default pickle protocol?", [PICKLE]) is None
    assert stated_default("Which port does python -m http.server use?", [HTTP_SERVER]) is None  # no default


LIMITS = Source(
    url="https://docs.test/limits.html",
    title="Appendix K. PostgreSQL Limits",
    text=(
        "| Item | Upper Limit | Comment |\n| --- | --- | --- |\n"
        "| columns per table | 1,600 | further limited by tuple size fitting on a single page; "
        "see note below |\n"
        "| columns in a result set | 1,664 |  |\n"
        "| columns per index | 32 | can be increased by recompiling PostgreSQL |\n\n"
        "The maximum number of columns for a table is further reduced as the tuple being stored must fit in "
        "a single 8192-byte heap page."
    ),
)


def test_the_table_row_the_question_names_in_words_is_read_off_with_its_header() -> None:
    said = table_row("What is the maximum number of columns in a PostgreSQL table?", [PICKLE, LIMITS])
    assert said == (
        'The sources give: "Item: columns per table; Upper Limit: 1,600; Comment: further limited by tuple '
        'size fitting on a single page; see note below" [2]'
    )
    assert "32" in (table_row("How many columns can an index have at most?", [LIMITS]) or "")


def test_no_row_is_read_off_for_what_the_table_does_not_say() -> None:
    # a subject the page never names, a version it does not give, a row named by one word
    assert table_row("What is the maximum number of columns in a SQLite table?", [LIMITS]) is None
    assert table_row("What is the maximum number of columns in a PostgreSQL 19 table?", [LIMITS]) is None
    assert table_row("How many columns may PostgreSQL return?", [LIMITS]) is None
    # two rows named as well by the question: which one it asks about is not known
    assert table_row("How many columns per index and per table are allowed?", [LIMITS]) is None


def test_a_sentence_that_says_where_a_default_is_kept_is_not_quoted_as_its_value() -> None:
    # SQLite's pragma.html, in the entry of default_cache_size (the default model's SQLite sq-s04):
    # quoted for "What is the default value of PRAGMA cache_size?", it says where, not what
    pragma = Source(
        url="https://docs.test/pragma.html",
        title="Pragma statements supported by SQLite",
        text=(
            "PRAGMA schema.default_cache_size = Number-of-pages; This pragma queries or sets the suggested "
            "maximum number of pages of disk cache that will be allocated per open database file. The "
            "difference between this pragma and cache_size is that the value set here persists across "
            "database connections. The value of the default cache size is stored in the 4-byte big-endian "
            "integer located at offset 48 in the header of the database file."
        ),
    )
    assert stated_default("What is the default value of PRAGMA cache_size?", [pragma]) is None
    said = pragma.text.replace(
        "The value of the default cache size is stored in", "The default cache size is"
    )
    stated = Source(url=pragma.url, title=pragma.title, text=said)
    assert stated_default("What is the default value of PRAGMA cache_size?", [stated]) is not None


CODES = src(
    "(1811) SQLITE_CONSTRAINT_TRIGGER\nThe SQLITE_CONSTRAINT_TRIGGER error code is an extended error code.\n"
    "(2067) SQLITE_CONSTRAINT_UNIQUE\nThe SQLITE_CONSTRAINT_UNIQUE error code is an extended error code for "
    "SQLITE_CONSTRAINT indicating that a UNIQUE constraint failed.",
    1,
)
HEADER = src("#define SQLITE_CONSTRAINT_UNIQUE (SQLITE_CONSTRAINT | (8<<8))", 2)


def test_the_figure_of_the_constant_asked_about_is_read_off_its_pair() -> None:
    # the model answered 8, from the header's shift, in both drafts
    q = "What is the numeric value of the SQLITE_CONSTRAINT_UNIQUE extended result code?"
    assert paired_figure(q, [HEADER, CODES]) == 'The sources give: "(2067) SQLITE_CONSTRAINT_UNIQUE" [2]'
    listed = src("Extended codes: SQLITE_CONSTRAINT_UNIQUE (2067) SQLITE_CONSTRAINT_VTAB (2323)", 3)
    assert paired_figure(q, [listed]) == 'The sources give: "SQLITE_CONSTRAINT_UNIQUE (2067)" [1]'


def test_no_figure_is_read_off_a_pair_that_is_not_the_asked_constants_alone() -> None:
    q = "What is the numeric value of the SQLITE_CONSTRAINT_UNIQUE extended result code?"
    assert paired_figure(q, [HEADER]) is None  # no pair names it
    assert paired_figure(q.replace("UNIQUE", "VTAB"), [CODES]) is None
    other = src("SQLITE_CONSTRAINT_UNIQUE = 8", 2)
    assert paired_figure(q, [CODES, other]) is None  # two figures for one name
    assert paired_figure("What does SQLITE_CONSTRAINT_UNIQUE mean?", [CODES]) is None  # no value asked
    both = "What are the values of SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_TRIGGER?"
    assert paired_figure(both, [CODES]) is None  # one sentence would answer one of them


def test_a_keyword_argument_of_a_call_is_not_a_constants_pair() -> None:
    # What's New in 3.2 shows an example call; the engine quoted it as the default of max_workers
    example = src(
        "with futures.ThreadPoolExecutor(max_workers=4) as e:\n    e.submit(shutil.copy, 'a', 'b')", 1
    )
    question = "Since Python 3.8, what is the default value of max_workers for ThreadPoolExecutor?"
    assert paired_figure(question, [example]) is None
    assert paired_figure(question, [src("f(x, max_workers = 4, y=2)", 1)]) is None
    # a constant assigned on its own line is still a pair
    assert paired_figure(question, [src("max_workers = 4", 1)]) == 'The sources give: "max_workers = 4" [1]'
