"""Values of answer sentences checked against the sources they cite (grounding), the sentence gate that
holds the stream until each sentence has passed, and the loop detector. Crafted answers stand for what
a model may write; the sources are real text (Wikipedia summaries of the embedded corpus, and a page
of configuration documentation)."""

from __future__ import annotations

import random

import pytest
from test_cite import wikipedia

from groundglass.answer import cite, grounding, prompt
from groundglass.answer.checked import SentenceGate
from groundglass.answer.grounding import labelled
from groundglass.answer.prompt import DECLINE
from groundglass.answer.querytext import literal_terms
from groundglass.answer.repetition import RepetitionGuard
from groundglass.answer.stream_sentences import units
from groundglass.answer.types import Source

CONFIG_DOC = (
    "Configuration\n"
    "timeout: the number of seconds to wait for a reply, default 30.\n"
    "The cache holds up to 1,000 entries of 10MB each.\n"
    "ssl_verify is True by default.\n"
    "Use the --no-cache flag, or set cache.enabled = false in config.toml.\n"
    "| setting | limit |\n| max_connections | 64 |\n| max_requests | 128 |"
)


@pytest.fixture(scope="module")
def berlin() -> list[str]:
    [wall] = wikipedia("Berlin Wall")
    return [wall.text]


def check(sentence: str, question: str, texts: list[str]) -> grounding.Check:
    return grounding.check(sentence, question, texts)


# --- values that are in the sources pass, in any of their usual spellings ---------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "The default timeout is 30 seconds [1].",
        "The default timeout is thirty seconds [1].",
        "The cache holds 1000 entries of 10 MB each [1].",
        "The cache holds 1k entries of 10 megabytes each [1].",
        "ssl_verify is true by default [1].",
        "`ssl_verify` defaults to `True` [1].",
        "Pass --no-cache to turn the cache off [1].",
        "max_connections is limited to 64 [1].",
    ],
)
def test_values_copied_from_the_source_pass(sentence: str) -> None:
    result = check(sentence, "What are the defaults?", [CONFIG_DOC])
    assert result.ok, result
    assert result.values  # each of these sentences adds at least one value, and it was checked


def test_a_date_from_a_wikipedia_summary_passes_and_a_wrong_one_fails(berlin: list[str]) -> None:
    q = "When was the Berlin Wall built?"
    assert check("Construction of the Berlin Wall began on 13 August 1961 [1].", q, berlin).ok
    wrong = check("The Berlin Wall was built in 1975 [1].", q, berlin)
    assert wrong.unsupported == ["1975"] and not wrong.ok


def test_a_quote_that_holds_an_identifier_is_looked_up_whole() -> None:
    # the identifier was masked out of the quote, which was then looked up with blanks in its place
    source = ["Read Committed is the default isolation level in PostgreSQL."]
    quoted = 'The manual says: "Read Committed is the default isolation level in PostgreSQL." [1]'
    said = check(quoted, "What is the default isolation level?", source)
    assert said.ok and "Read Committed is the default isolation level in PostgreSQL." in said.values
    altered = 'The manual says: "Serializable is the default isolation level in PostgreSQL." [1]'
    assert not check(altered, "What is the default isolation level?", source).ok


def test_a_figure_given_for_what_no_cited_source_speaks_of_fails(berlin: list[str]) -> None:
    # 1989 is in the summary (the year the Wall fell), but nothing in it speaks of coats of paint
    q = "In what year did the Berlin Wall get its second coat of paint?"
    said = check("The Berlin Wall got its second coat of paint in 1989, [1].", q, berlin)
    assert said.unsupported == ["second coat paint"]
    graffiti = "Graffiti ranges from simple written monikers to elaborate wall paintings."
    assert not check(
        "The Berlin Wall got its second coat of paint in 1989 [1][2].", q, [*berlin, graffiti]
    ).ok
    # a name for it too, on three such words in a row; a relation word or two is often unwritten
    said = check(
        "The GDR gave the Berlin Wall its second coat of paint [1].",
        "Who gave the Berlin Wall its second coat of paint?",
        berlin,
    )
    assert said.unsupported == ["second coat paint"]
    # a relation word between two unwritten words does not lengthen their run: "the defence against
    # inbound SMTP smuggling" is the question's aside; its subject and answer are in the cited entry
    # (Postfix's postconf(5))
    smuggling = [
        "smtpd_forbid_bare_newline (default: Postfix < 3.9: no): Reject or restrict input lines from an "
        "SMTP client that end in <LF> instead of the standard <CR><LF>. Such line endings are commonly "
        "allowed with UNIX-based SMTP servers, but they violate RFC 5321, and allowing such line endings "
        "can make a server vulnerable to SMTP smuggling."
    ]
    q = (
        "Which Postfix parameter decides how the SMTP server treats input lines that end in a bare line "
        "feed instead of CR LF, the defence against inbound SMTP smuggling?"
    )
    said = check(
        "The Postfix parameter that decides how the SMTP server treats input lines that end in a bare "
        "line feed instead of CR LF, the defence against inbound SMTP smuggling, is [1] "
        "smtpd_forbid_bare_newline.",
        q,
        smuggling,
    )
    assert said.ok, said.unsupported
    assert check(
        "The GDR gave the Berlin Wall its second coat of paint against the rain [1].",
        "Who gave the Berlin Wall its second coat of paint against the rain?",
        berlin,
    ).unsupported == ["second coat paint rain"]  # a relation word inside a run does not end it either
    korea = ["Seoul is the capital of South Korea."]
    assert check(
        "The capital city of South Korea is Seoul [1].", "What is the capital city of South Korea?", korea
    ).ok
    # a word is spoken of as a part of an identifier (Python's stdtypes page, PSF licence)
    limit = ["The default limit is 4300 digits as provided in sys.int_info.default_max_str_digits."]
    q = "What is the default limit on the number of digits for int/str conversion?"
    assert check("The default limit for int/str conversion is 4300 digits. [1]", q, limit).ok
    near = ["The default limit is 4300 digits as provided in interpreter_flags.strict_mode."]
    assert check("The default limit for int/str conversion is 4300 digits. [1]", q, near).unsupported == [
        "int str conversion"
    ]  # a whole part of a name, not its first letters
    # a word the question names a command by is a name: one word of it in no source fails the sentence
    apachectl = (
        "graceful: Gracefully restarts the Apache httpd daemon. This command automatically checks the "
        "configuration files as in configtest before initiating the restart to make sure Apache doesn't die."
    )
    doctor = check(
        "The apachectl doctor command checks the configuration files as in configtest [1].",
        "What does the apachectl doctor command check?",
        [apachectl],
    )
    assert doctor.unsupported == ["doctor command"]
    assert check(
        "The apachectl graceful command checks the configuration files as in configtest [1].",
        "What does the apachectl graceful command check?",
        [apachectl],
    ).ok
    # a subcommand is named with its command: git archive's page says "archive" and "worktree", but no
    # worktree archive (Git's pages, GPL-2.0)
    archive = (
        "git archive [--format=<fmt>] <tree-ish>. Creates an archive of the specified format containing "
        "the tree structure for the named tree. The attributes of the current worktree are used."
    )
    question = "What does the git worktree archive subcommand do?"
    said = check(
        "The git worktree archive subcommand creates a tar archive of the tree [1].", question, [archive]
    )
    assert said.unsupported == ["worktree archive subcommand"]
    worktree = (
        "COMMANDS\n- add <path>:\n- Create <path> and check out a branch.\n- prune:\n"
        "- Prune worktree information in $GIT_DIR/worktrees."
    )
    question = "What does the git worktree prune subcommand do?"
    said = "The git worktree prune subcommand prunes worktree information in $GIT_DIR/worktrees [1]."
    assert check(said, question, [worktree]).ok
    # the question's words said another way, or a unit written with its power, still pass
    assert check(
        "Construction of the Berlin Wall began in 1961 [1].", "When did construction begin?", berlin
    ).ok
    italy = "Italy is the tenth-largest country in Europe by area, covering 301,340 km2 (116,350 sq mi)."
    assert check(
        "Italy's area is 301,340 squared km [1].", "What is the area in squared km of Italy?", [italy]
    ).ok


def test_a_figure_rounded_from_the_source_passes_but_another_figure_does_not() -> None:
    [everest] = wikipedia("Mount Everest")
    q = "How high is Mount Everest?"
    assert "8,848.86" in everest.text
    assert check("Mount Everest is 8,849 m high [1].", q, [everest.text]).ok
    assert check("Mount Everest is about 8,800 metres high [1].", q, [everest.text]).ok
    assert check("Mount Everest is 8,850 m high [1].", q, [everest.text]).unsupported == ["8,850 m"]


# --- invented values fail -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "missing"),
    [
        ("The default timeout is 60 seconds [1].", ["60 seconds"]),
        ("The cache holds 1,000 entries of 10 KB each [1].", ["10 KB"]),  # the right figure, the wrong unit
        ("ssl_verify is false by default [1].", ["false"]),
        ("Set `ssl_verify=False` to be safe [1].", []),  # False is in the source: this one passes
        ("Use the --no-verify flag [1].", ["--no-verify"]),
        ("Set http.proxy_url in config.toml [1].", ["http.proxy_url"]),
        ("The RetryPolicy class controls this [1].", ["RetryPolicy"]),
        ("The limit is 3 [1].", ["3"]),
        ("max_requests is limited to 64 [1].", ["64"]),  # the neighbouring row's figure
    ],
)
def test_values_no_source_holds_are_reported(sentence: str, missing: list[str]) -> None:
    result = check(sentence, "What are the limits and defaults?", [CONFIG_DOC])
    assert result.unsupported == missing


def test_the_subject_of_the_question_must_be_in_the_sources() -> None:
    """A setting that does not exist: the sentence repeats its name from the question, adds a value
    the page happens to contain ("False"), and still fails, because no source names the setting."""
    q = "What is the default value of the frobnicate_level setting?"
    result = check("The default value of frobnicate_level is False [1].", q, [CONFIG_DOC])
    assert "frobnicate_level" in result.unsupported and not result.ok
    future = check(
        "Python 3.15 removes the GIL [1].",
        "What does Python 3.15 remove?",
        ["Python 3.13 adds an experimental free-threaded build without the GIL."],
    )
    assert future.unsupported == ["3.15"]
    limits = "| Item | Upper Limit |\n| --- | --- |\n| columns per table | 1,600 |\nPostgreSQL 15 limits."
    q = "What is the maximum number of columns in a PostgreSQL 19 table?"
    major = check("The maximum number of columns in a PostgreSQL 19 table is 1,600 [1].", q, [limits])
    assert major.unsupported == ["PostgreSQL 19"]
    asked = "What is the maximum number of columns in a PostgreSQL 15 table?"
    assert check("The maximum number of columns in a PostgreSQL 15 table is 1,600 [1].", asked, [limits]).ok


def test_a_camel_case_name_the_question_asks_about_must_be_in_the_sources() -> None:
    """Apache httpd has no SSLSessionTicketLifetime: the default model gave the value of the directive
    the page does document, and the sentence passed because the question's other term (mod_ssl) is on
    the page and a name taken from the question was not looked up."""
    ssl = (
        "SSLSessionCacheTimeout Directive\n| Description: | Number of seconds before an SSL session expires "
        "in the Session Cache |\n| Default: | SSLSessionCacheTimeout 300 |\nmod_ssl provides SSL v3 and TLS."
    )
    q = "What is the default value of SSLSessionTicketLifetime in mod_ssl?"
    invented = check("The default value of SSLSessionTicketLifetime in mod_ssl is 300 seconds [1].", q, [ssl])
    assert invented.unsupported == ["SSLSessionTicketLifetime"] and not invented.ok
    asked = "What is the default value of SSLSessionCacheTimeout in mod_ssl?"
    assert check(
        "The default value of SSLSessionCacheTimeout in mod_ssl is 300 seconds [1].", asked, [ssl]
    ).ok


def test_a_size_may_be_restated_in_another_unit_of_bytes() -> None:
    """Apache httpd's LimitRequestBody defaults to 1073741824 (bytes): "or 1 gigabyte" restates it, and
    the sentence was refused twice until the model gave up."""
    body = (
        "LimitRequestBody Directive\n| Syntax: | LimitRequestBody bytes |\n"
        "| Default: | LimitRequestBody 1073741824 |"
    )
    q = "What is the default limit that LimitRequestBody puts on the size of an HTTP request body?"
    assert check("The default limit is 1073741824 bytes, or 1 gigabyte [1].", q, [body]).ok
    assert [v.kind for v in grounding.values_of("It is 1 GiB.")] == ["number"]  # a unit, not a CamelCase name
    assert check("The default limit is 1073741824 bytes (1GB) [1].", q, [body]).ok
    assert check("The default limit is 2 gigabytes [1].", q, [body]).unsupported == ["2 gigabytes"]
    assert check("The default limit is 1073741824 bytes (2GB) [1].", q, [body]).unsupported == ["2GB"]
    assert check("The default limit is 1073 megabytes [1].", q, [body]).unsupported == ["1073 megabytes"]


def test_a_product_in_a_source_states_its_value() -> None:
    """Node.js's child_process.exec() has "maxBuffer ... Default: 1024 * 1024."; the default model wrote
    "... is 1024 * 1024 bytes, which is 1MB.", refused for "1MB", and the engine declined."""
    exec_options = (
        "- maxBuffer <number> Largest amount of data in bytes allowed on stdout or stderr. If exceeded, the "
        "child process is terminated and any output is truncated. Default: 1024 * 1024."
    )
    q = "What is the default maxBuffer of the exec options, the most bytes allowed on stdout or stderr?"
    assert check("The default maxBuffer is 1024 * 1024 bytes, which is 1MB [1].", q, [exec_options]).ok
    assert check("The default maxBuffer is 1048576 bytes [1].", q, [exec_options]).ok
    assert check("The default maxBuffer is 2 MB [1].", q, [exec_options]).unsupported == ["2 MB"]
    assert check("The default maxBuffer is 2048 bytes [1].", q, [exec_options]).unsupported == ["2048 bytes"]


def test_a_duration_may_be_restated_in_another_unit_of_time() -> None:
    """git credential-cache keeps credentials for 900 seconds: "(15 minutes)" restates it, and the
    sentence was refused twice until the engine declined."""
    cache = "- --timeout <seconds>:\n- Number of seconds to cache credentials (default: 900)."
    q = "For how many seconds does git credential-cache keep credentials in memory by default?"
    assert check("The default timeout is 900 seconds (15 minutes) [1].", q, [cache]).ok
    assert check("Credentials are kept for 15 minutes by default [1].", q, [cache]).ok
    assert check("The default timeout is 900 seconds (16 minutes) [1].", q, [cache]).unsupported == [
        "16 minutes"
    ]
    assert check("The default timeout is 900 seconds (15 hours) [1].", q, [cache]).unsupported == ["15 hours"]


_DAEMON = (
    'A really simple TCP Git daemon that normally listens on port "DEFAULT_GIT_PORT" aka 9418. It waits for '
    "a connection asking for a service."
)
_MARKERS = (
    "This line can be used to tell the merge machinery to leave much longer (instead of the usual "
    "7-character-long) conflict markers. Documentation/git-merge.txt conflict-marker-size=32"
)


@pytest.mark.parametrize(
    ("source", "question", "said", "other"),
    [
        (
            _DAEMON,
            "On which TCP port does git daemon listen by default?",
            "The default TCP port that git daemon listens on is {}. [1]",
            ("9418", "9419"),
        ),
        (
            _MARKERS,
            "How many characters long are conflict markers by default according to gitattributes?",
            "The default length of conflict markers is {} characters. [1]",
            ("7", "32"),
        ),
    ],
)
def test_what_a_manual_says_is_normally_so_states_the_default(
    source: str, question: str, said: str, other: tuple[str, str]
) -> None:
    """Git's manual says git daemon "normally listens on port ... 9418" and speaks of "the usual
    7-character-long" conflict markers: neither says "default", and both answers were refused."""
    right, wrong = other
    assert check(said.format(right), question, [source]).ok
    assert check(said.format(wrong), question, [source]).unsupported == [wrong]


def test_a_backslash_command_the_question_asks_about_must_be_in_the_sources() -> None:
    """A psql meta-command that does not exist, next to one that does: the page's ``\\q`` is not ``\\qz``."""
    psql = (
        "\\q or \\quit: Quits the psql program. In a script file, only execution of that script is "
        "terminated. \\dt+ lists tables with their sizes and descriptions."
    )
    q = "What does the psql \\qz meta-command do?"
    invented = check("The psql \\qz meta-command is used to quit psql [1].", q, [psql])
    assert invented.unsupported == ["\\qz"] and not invented.ok
    assert check("The psql \\q meta-command quits the psql program [1].", "What does \\q do?", [psql]).ok
    assert check(
        "Use \\dt+ to list tables with their sizes [1].", "How to list tables with sizes?", [psql]
    ).ok


def test_a_dot_command_the_question_asks_about_must_be_in_the_sources() -> None:
    """sqlite3's shell has no ``.autosave``: the default model described it from the page of the others."""
    cli = (
        "The .dump command converts the entire structure and data of an SQLite database into a single "
        "text file. The .mode command sets the output mode. Use .save FILE to write the in-memory "
        "database into FILE."
    )
    q = "What does the sqlite3 shell's .autosave dot-command do?"
    invented = check(
        "The sqlite3 shell's .autosave dot-command does not change the database itself [1].", q, [cli]
    )
    assert invented.unsupported == [".autosave"] and not invented.ok
    assert check(
        "The .dump command writes the database as one text file [1].", "What does .dump do?", [cli]
    ).ok
    assert literal_terms(q) == ["sqlite3", ".autosave"]
    # a dotted name, a path and a decimal are not dot-commands
    assert literal_terms("os.path, ~/.bashrc, 0.5, e.g. this") == ["os.path", "e.g"]


def test_a_default_given_in_brackets_after_its_name_is_the_one_stated() -> None:
    """SQLite's FTS5 page states its default tokenizer only as "the default tokenizer (unicode61)", in
    the porter tokenizer's section; the default model read that section and answered "porter"."""
    fts5 = (
        "By default, the porter tokenizer operates as a wrapper around the default tokenizer (unicode61). "
        'Or, if one or more extra arguments are added to the "tokenize" option following "porter", they '
        "are treated as a specification for the underlying tokenizer that the porter stemmer uses."
    )
    q = "Which tokenizer does an FTS5 table use by default?"
    porter = check("The default tokenizer for an FTS5 table is the porter tokenizer [1].", q, [fts5])
    assert porter.unsupported == ["porter"] and not porter.ok
    assert check("The default tokenizer for an FTS5 table is unicode61 [1].", q, [fts5]).ok
    # a bracket that is no value stays none: "(see below)" holds no one word
    aside = "The default tokenizer (see below) is unicode61."
    assert check("The default tokenizer is unicode61 [1].", q, [aside]).ok


def test_what_an_answer_adds_after_its_defaults_clause_is_not_called_the_default() -> None:
    """SQLite's pragma page: the default model's right answer, with the page's own explanation after
    "which", failed as if 2048000 bytes were said to be the default; the naive pipeline gave it."""
    pragma = (
        "PRAGMA schema.cache_size = pages; Query or change the suggested maximum number of database disk "
        "pages that SQLite will hold in memory at once per open database file. "
        "The default suggested cache size is -2000, which means the cache size is limited to 2048000 bytes "
        "of memory. The default suggested cache size can be altered using the SQLITE_DEFAULT_CACHE_SIZE "
        "compile-time options. The TEMP database has a default suggested cache size of 0 pages."
    )
    q = "What is the default value of PRAGMA cache_size?"
    right = "The default value of PRAGMA cache_size is -2000, which means the cache size is limited to "
    assert check(right + "2048000 bytes of memory [1].", q, [pragma]).ok
    # the figure after the clause is still a value the sources must hold, and the default is still checked
    assert check(right + "4096000 bytes of memory [1].", q, [pragma]).unsupported == ["4096000 bytes"]
    wrong = check("The default value of PRAGMA cache_size is 2048000 bytes [1].", q, [pragma])
    assert wrong.unsupported == ["2048000 bytes"]


def test_a_lower_case_word_called_the_default_must_be_in_the_cited_text() -> None:
    """The default model on SQLite's manual: "The default tokenizer for an FTS5 table is the porter
    tokenizer.", with the marker of the JSON page that names no tokenizer (the default is unicode61)."""
    q = "Which tokenizer does an FTS5 table use by default, and what does json_array_length() return?"
    json1 = (
        "json_array_length(X) returns the number of elements in the JSON array X, or 0 if X is not an array."
    )
    fts5 = (
        "The built-in tokenizers are unicode61, ascii, porter and trigram. By default, FTS5 uses unicode61."
    )
    porter = "The default tokenizer for an FTS5 table is the porter tokenizer [1]."
    assert check(porter, q, [json1]).unsupported == ["porter"]
    assert check(porter.replace("porter", "unicode61"), q, [fts5]).ok
    # words that describe a value, or say how the default is given, are no such claim
    pool = "- class ThreadPoolExecutor(max_workers=None, thread_name_prefix=''):"
    asked = "What is the default thread_name_prefix of ThreadPoolExecutor?"
    assert check("The default thread_name_prefix is an empty string [1].", asked, [pool]).ok
    assert (
        grounding.defaults.unheld_word(
            "The default value is typically 128 MB.", q, grounding.Evidence.of([json1])
        )
        == []
    )


def test_an_operand_of_a_bit_shift_is_no_figure() -> None:
    """SQLite's C header defines extended result codes by shifts: the default model read the 8 of
    ``(8<<8)`` as the code's value (it is 2067)."""
    header = (
        "#define SQLITE_CONSTRAINT_CHECK (SQLITE_CONSTRAINT | (1<<8))\n"
        "#define SQLITE_CONSTRAINT_UNIQUE (SQLITE_CONSTRAINT | (8<<8))"
    )
    q = "What is the numeric value of the SQLITE_CONSTRAINT_UNIQUE extended result code?"
    assert check("The value of SQLITE_CONSTRAINT_UNIQUE is 8 [1].", q, [header]).unsupported == ["8"]
    assert check("SQLITE_CONSTRAINT_UNIQUE is (SQLITE_CONSTRAINT | (8<<8)) [1].", q, [header]).ok
    assert [n.value for n in grounding.numbers("1 << 3, x >> 2, then 2067")] == [2067]


def test_a_figure_the_sources_pair_with_another_name_fails() -> None:
    """SQLite's result codes page lists name-figure pairs; the default model gave SQLITE_CONSTRAINT the
    1 of SQLITE_ERROR and, in another run, the 16 of SQLITE_EMPTY."""
    codes = (
        "The result codes are listed in alphabetical order below: SQLITE_ABORT (4) SQLITE_CONSTRAINT (19) "
        "SQLITE_CORRUPT (11) SQLITE_EMPTY (16) SQLITE_ERROR (1) SQLITE_FORMAT (24)"
    )
    q = "What is the numeric value of the SQLITE_CONSTRAINT result code?"
    for wrong in ("1", "16"):
        said = f"The numeric value of the SQLITE_CONSTRAINT result code is {wrong} [1]."
        assert check(said, q, [codes]).unsupported == [wrong]
    assert check("The numeric value of the SQLITE_CONSTRAINT result code is 19 [1].", q, [codes]).ok
    # a call's argument is no pair, and a clause about two names is not judged
    assert check("Call set_limit(1) first [1].", "How?", ["set_limit(1) then SQLITE_ERROR (1)"]).ok
    assert check("SQLITE_ERROR and SQLITE_CONSTRAINT are 1 and 19 [1].", q, [codes]).ok


def test_a_figure_headed_as_another_codes_value_fails() -> None:
    """The result codes page heads each code's section "(19) SQLITE_CONSTRAINT"; the passage the model
    cited held only other codes' headings, and it answered with one of their figures."""
    cited = (
        "(3082) SQLITE_IOERR_NOMEM\n(3091) SQLITE_CONSTRAINT_DATATYPE\nThe SQLITE_CONSTRAINT_DATATYPE error "
        "code is an extended error code for SQLITE_CONSTRAINT indicating a value inconsistent with the type."
    )
    q = "What is the numeric value of the SQLITE_CONSTRAINT result code?"
    said = "The numeric value of the SQLITE_CONSTRAINT result code is 3082 [1]."
    assert check(said, q, [cited]).unsupported == ["3082"]
    headed = "(19) SQLITE_CONSTRAINT\nThe SQLITE_CONSTRAINT error code means that a constraint failed."
    assert check(said.replace("3082", "19"), q, [headed]).ok
    assert check(said, q, [headed, cited]).unsupported == ["3082"]
    # the code the heading names, and a name of another family, are not judged by it
    assert check("SQLITE_CONSTRAINT_DATATYPE is 3091 [1].", "What is SQLITE_CONSTRAINT_DATATYPE?", [cited]).ok
    assert check(
        "The default of max_pages is 3082 [1].", "What is max_pages?", [cited + " max_pages 3082"]
    ).ok


def test_a_section_number_is_no_figure() -> None:
    """ "Section 20.4.1" holds no 20.4: a value read out of it passed as the default of a setting."""
    page = (
        "work_mem (integer): Sets the base maximum amount of memory to be used by a query operation "
        "before writing to temporary disk files. See Section 20.4.1 for details."
    )
    q = "What is the default value of work_mem?"
    assert check("The default value of work_mem is 20.4 [1].", q, [page]).unsupported == ["20.4"]
    assert grounding.numbers("Section 20.4.1, at 127.0.0.1 (version 3.11.2)") == []
    # the page's title as the model reads it, and a reference to the section: the model wrote "the default
    # value of maintenance_work_mem is 20.4" from the title line "20.4. Resource Consumption"
    titled = (
        "20.4. Resource Consumption\n- maintenance_work_mem (integer):\nIt defaults to 64 megabytes (64MB)."
    )
    q = "What is the default value of maintenance_work_mem?"
    assert check("The default value of maintenance_work_mem is 20.4 [1].", q, [titled]).unsupported == [
        "20.4"
    ]
    assert check("The default value of maintenance_work_mem is 64MB [1].", q, [titled]).ok
    assert grounding.numbers("See Section 20.4 and Table 3.\n1. Install it.\n- 2. Run it.") == []
    assert [n.value for n in grounding.numbers("Python 3.11. It takes 2.5 s.")] == [3.11, 2.5]


def test_values_taken_from_the_question_need_no_source(berlin: list[str]) -> None:
    result = check(
        "In 1990 the Berlin Wall was being demolished [1].",
        "What happened to the Berlin Wall in 1990?",
        berlin,
    )
    assert "1990" not in result.unsupported


def test_numbers_computed_from_the_sources_are_allowed_where_the_sentence_says_so(berlin: list[str]) -> None:
    q = "How long did the Berlin Wall stand?"
    assert check("It stood for 28 years, from 1961 to 1989 [1].", q, berlin).ok  # 1989 - 1961
    assert check("It stood for 31 years [1].", q, berlin).unsupported == ["31 years"]


def test_number_formats_are_normalised() -> None:
    def one(text: str) -> grounding.Number:
        [n] = grounding.numbers(text, claims=True)
        return n

    assert one("1,000").value == one("1000").value == one("1k").value == 1000
    assert one("0.5").value == one(".5").value == 0.5
    assert one("three").value == 3 and one("twenty-five").value == 25
    assert one("10 MB").unit == one("10MB").unit == one("10 megabytes").unit == "mb"
    assert one("2 million").value == 2e6
    assert grounding.numbers("one of the modules", claims=True) == []  # a pronoun, not a count
    assert one("It runs the statement one million times").value == 1e6  # a figure, and so a claim
    assert one("The default is one minute").unit == "min"
    # and so checked: "one million" against the signature's number=1000000, and against another figure
    q = "How many times does timeit.timeit() run the statement by default?"
    signature = ["timeit.timeit(stmt='pass', setup='pass', timer=<default timer>, number=1000000)"]
    assert check("It runs the statement one million times [1].", q, signature).ok
    assert not check("It runs the statement one million times [1].", q, ["It runs it number=1000 times."]).ok
    assert one("1e-09").value == one("1e-9").value == one("0.000000001").value == 1e-9
    assert one("1.5E+3").value == 1500


# --- coordinated claims: each clause's figure about its own subject ---------------------------------

# Python's manual (python3.11-doc), as the readers extract it.
PPRINT = (
    "class pprint.PrettyPrinter(indent=1, width=80, depth=None, stream=None, *, compact=False, "
    "sort_dicts=True, underscore_numbers=False)\n"
    "Construct a PrettyPrinter instance. width (default 80) specifies the desired maximum number of "
    "characters per line in the output."
)
TEXTWRAP = (
    "textwrap.fill(text, width=70, *, initial_indent='', subsequent_indent='', expand_tabs=True)\n"
    "Wraps the single paragraph in text, and returns a single string containing the wrapped paragraph."
)
ISCLOSE = (
    "math.isclose(a, b, *, rel_tol=1e-09, abs_tol=0.0)\n"
    "rel_tol is the relative tolerance - it is the maximum allowed difference between a and b, relative "
    "to the larger absolute value of a or b. The default tolerance is 1e-09, which assures that the two "
    "values are the same within about 9 decimal digits."
)
DECIMAL = (
    "The decimal module has a user alterable precision (defaulting to 28 places) which can be as large as "
    "needed for a given problem."
)
STRUCT = (
    "| Format | C Type | Python type | Standard size | Notes |\n"
    "| --- | --- | --- | --- | --- |\n"
    "| q | long long | integer | 8 | (2) |\n"
    "| Q | unsigned long long | integer | 8 | (2) |"
)
ARRAY = (
    "The following type codes are defined:\n\n"
    "| Type code | C Type | Python Type | Minimum size in bytes | Notes |\n"
    "| --- | --- | --- | --- | --- |\n"
    "| 'b' | signed char | int | 1 | |\n"
    "| 'h' | signed short | int | 2 | |\n"
    "| 'd' | double | float | 8 | |"
)


def test_a_figure_copied_into_the_next_clause_fails() -> None:
    question = "What are the default width of pprint.PrettyPrinter and the default width of textwrap.fill()?"
    copied = (
        "The default width of pprint.PrettyPrinter is 80, "
        "and the default width of textwrap.fill() is also 80."
    )
    assert "80" in check(copied, question, [PPRINT]).unsupported  # cited to pprint's page alone
    assert check(copied, question, [PPRINT, TEXTWRAP]).unsupported == ["80"]
    right = "The default width of pprint.PrettyPrinter is 80, and the default width of textwrap.fill() is 70."
    assert check(right, question, [PPRINT, TEXTWRAP]).ok


def test_another_callables_printed_default_is_no_source_for_this_ones() -> None:
    question = "What are the default width of pprint.PrettyPrinter and the default width of textwrap.fill()?"
    # the index's answer, in a sentence of its own: 80 is PrettyPrinter's width, and the What's New
    # page only names textwrap.fill
    whatsnew = (
        "The textwrap module can now preserve existing whitespace at the beginnings and ends of the newly "
        "created lines by specifying drop_whitespace=False as an argument; textwrap.fill() takes it too."
    )
    borrowed = "The default width of textwrap.fill() is 80 characters, as specified in the source. [1][2]"
    assert check(borrowed, question, [PPRINT, whatsnew]).unsupported == ["80"]
    assert check("The default width of textwrap.fill() is 70 characters. [1]", question, [TEXTWRAP]).ok
    assert check("The default width of pprint.PrettyPrinter is 80 characters. [1]", question, [PPRINT]).ok
    # a default sentence that names the callable still holds it
    said = whatsnew + " By default textwrap.fill() wraps lines at width 80 here."
    assert check(borrowed, question, [PPRINT, said]).ok


def test_one_figure_said_of_two_subjects_needs_a_passage_about_each() -> None:
    question = (
        "What is the default precision of the decimal context, "
        "and what is the default rel_tol of math.isclose()?"
    )
    isclose = "the default rel_tol of math.isclose() is 1e-09."
    both = "The default precision of the decimal context is 1e-09, and " + isclose
    assert check(both, question, [ISCLOSE, DECIMAL]).unsupported == ["1e-09"]
    right = "The default precision of the decimal context is 28 places, and " + isclose
    assert check(right, question, [ISCLOSE, DECIMAL]).ok


def test_a_table_row_is_read_under_its_header() -> None:
    question = (
        "What is the standard size of struct format 'q' "
        "and the minimum size of array type code 'd', in bytes?"
    )
    # one figure for two subjects: each row says it only through its table's header
    right = "The standard size of struct format 'q' is 8, and the minimum size of array type code 'd' is 8."
    assert check(right, question, [STRUCT, ARRAY]).ok
    assert check(right, question, [STRUCT]).unsupported == ["8"]  # the array's table is not cited


# --- restating the question is not an answer --------------------------------------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        "The X of a Y starts with [1][2][3][4].",
        "The value of X of a Y is described in [2].",
        "[1][2]",
        "According to the sources, the X of a Y starts as mentioned [1].",
    ],
)
def test_a_sentence_that_only_restates_the_question_fails(sentence: str) -> None:
    result = check(sentence, "What does the X of a Y start with?", ["The X of a Y starts with a zero byte."])
    assert result.restates_question and not result.ok


def test_an_answer_that_adds_a_word_is_not_a_restatement() -> None:
    result = check(
        "The X of a Y starts with a zero byte [1].",
        "What does the X of a Y start with?",
        ["The X of a Y starts with a zero byte."],
    )
    assert result.ok and not result.restates_question


def test_a_quoted_word_is_an_answer_even_when_it_is_a_filler_word() -> None:
    """The default model answered SQLite's shell question right, 'The default output mode ... is "list".',
    and it was sent back twice as a restatement ("list" is a word that reports on the sources)."""
    q = "What is the default output mode of the sqlite3 command-line shell?"
    cli = (
        'You can use the ".mode" dot command to switch between these output formats. '
        'The default output mode is "list".'
    )
    answer = check('The default output mode of the sqlite3 command-line shell is "list". [1]', q, [cli])
    assert answer.ok and not answer.restates_question
    # unquoted, the same word still reports on the sources; a possessive is no quote
    assert check("The default output mode of the sqlite3 shell is listed in [1].", q, [cli]).restates_question
    assert check(
        "The sqlite3 command-line shell's default output mode is given [1].", q, [cli]
    ).restates_question


def test_a_verbatim_term_the_question_lacks_is_an_answer() -> None:
    question = "Which strftime directive gives the microsecond as a decimal number zero-padded to 6 digits?"
    answer = (
        "The strftime directive that gives the microsecond as a decimal number zero-padded to 6 digits "
        "is `%f` [1]."
    )
    assert not grounding.restates_question(answer, question)
    restated = "The strftime directive gives the microsecond zero-padded to 6 digits [1]."
    assert grounding.restates_question(restated, question)


# --- the sentence gate: what the stream may show ----------------------------------------------------


def gate_run(question: str, sources: list[Source], text: str, seed: int = 3) -> tuple[str, SentenceGate]:
    """Feed ``text`` in random pieces; return what the gate released and the gate."""
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, 15)))
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    gate = SentenceGate(question, sources)
    out: list[str] = []
    for piece in pieces:
        out += gate.feed(piece)
    out += gate.finish()
    return "".join(out), gate


def assert_passes(question: str, sources: list[Source], text: str) -> None:
    """The gate shows ``text`` whole and fails nothing."""
    shown, gate = gate_run(question, sources, text)
    assert shown == text and gate.failed is None


@pytest.fixture(scope="module")
def wall_sources() -> list[Source]:
    return wikipedia("Berlin Wall", "Mount Everest")


Q = "When was the Berlin Wall built?"


def test_gate_releases_a_supported_answer_whole_in_the_models_pieces(wall_sources: list[Source]) -> None:
    text = "Construction of the Berlin Wall began on 13 August 1961 [1]. It fell in 1989 [1]."
    shown, gate = gate_run(Q, wall_sources, text)
    assert shown == text and gate.failed is None and not gate.dropped


def test_gate_takes_a_bare_figure_after_filler_words_for_an_answer(wall_sources: list[Source]) -> None:
    # the default model answered "In what year did construction of the Berlin Wall begin?" so, and the
    # gate took the sentence for markers alone ("See [1].") and declined
    text = "The answer is: 1961. [1]"
    assert_passes("In what year did construction of the Berlin Wall begin?", wall_sources, text)
    g = SentenceGate(Q, wall_sources)
    assert g.feed("Construction of the Berlin Wall began on 13 August 1961") == []  # not complete yet
    assert g.feed(" [1].") == []  # the full stop may still be followed by more markers
    assert g.feed(" It") == ["Construction of the Berlin Wall began on 13 August 1961", " [1]."]


def test_gate_leaves_out_a_line_of_markers_after_the_answer(wall_sources: list[Source]) -> None:
    # the default model ended "The answer is: INTEGER affinity. [1]" with a line "[1][2]"
    text = "The answer is: 1961. [1]\n[1][2]"
    shown, gate = gate_run("In what year did construction of the Berlin Wall begin?", wall_sources, text)
    assert shown.strip() == "The answer is: 1961. [1]" and gate.failed is None
    # after a sentence without markers of its own, they are its markers
    text = "The answer is: 1961.\n[1]"
    shown, gate = gate_run("In what year did construction of the Berlin Wall begin?", wall_sources, text)
    assert shown.strip().endswith("[1]") and gate.failed is None
    # before the answer, markers alone are its markers, shown after it
    shown, _ = gate_run(Q, wall_sources, "[1] Construction of the Berlin Wall began on 13 August 1961.")
    assert shown == "Construction of the Berlin Wall began on 13 August 1961. [1]"
    # and so are a sentence's that only points at them: the default model wrote "The answer is [1][3]. A
    # shallow clone is created by ...", shown as "[1][3] A shallow clone ..."
    shown, _ = gate_run(Q, wall_sources, "The answer is [1]. Construction of the Berlin Wall began in 1961.")
    assert shown == "Construction of the Berlin Wall began in 1961. [1]"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "The answer is: Construction of the Berlin Wall began on 13 August 1961. [1]",
            "Construction of the Berlin Wall began on 13 August 1961. [1]",
        ),
        (
            "The answer is that construction of the Berlin Wall began on 13 August 1961. [1]",
            "Construction of the Berlin Wall began on 13 August 1961. [1]",
        ),
        # the markers run into the lead-in are the sentence's (Postfix: "The answer is [1] The logging
        # alternative: smtpd_discard_ehlo_keywords = chunking ...")
        (
            "The answer is [1] Construction of the Berlin Wall began on 13 August 1961.",
            "Construction of the Berlin Wall began on 13 August 1961. [1]",
        ),
        # a bare value keeps its lead-in, the only words it has
        ("The answer is: 1961. [1]", "The answer is: 1961. [1]"),
        ("The answer is [1] 1961.", "The answer is [1] 1961."),
    ],
)
def test_gate_leaves_out_the_answer_is_before_a_whole_sentence(
    wall_sources: list[Source], text: str, shown: str
) -> None:
    # the default model opened "The answer is: By default, MaxKeepAliveRequests allows 100 requests per
    # persistent connection. [1]" and "The answer is that pg_dump writes ..."
    assert gate_run(Q, wall_sources, text)[0] == shown


def test_gate_fails_a_draft_whose_first_claim_is_invented(wall_sources: list[Source]) -> None:
    shown, gate = gate_run(Q, wall_sources, "The Berlin Wall was built in 1975 [1]. It fell in 1989 [1].")
    assert shown == ""
    assert gate.failed is not None and gate.failed.reason == "unsupported_values"
    assert gate.failed.values == ["1975"]


def test_gate_leaves_out_a_later_invented_sentence(wall_sources: list[Source]) -> None:
    text = (
        "Construction of the Berlin Wall began on 13 August 1961 [1]. It was 900 km long [1]. "
        "It fell in 1989 [1]."
    )
    shown, gate = gate_run(Q, wall_sources, text)
    assert shown == "Construction of the Berlin Wall began on 13 August 1961 [1]. It fell in 1989 [1]."
    assert gate.failed is None and [d.values for d in gate.dropped] == [["900 km"]]


def test_gate_fails_markers_alone_and_restatements(wall_sources: list[Source]) -> None:
    for text, reason in [
        ("[1][2]", "empty"),
        ("The Berlin Wall was built [1][2].", "restates_question"),
        ("", "empty"),
    ]:
        gate = SentenceGate(Q, wall_sources)
        assert gate.feed(text) == [] and gate.finish() == []
        assert gate.failed is not None and gate.failed.reason == reason


def test_gate_lets_a_decline_through(wall_sources: list[Source]) -> None:
    assert_passes(Q, wall_sources, DECLINE)


def test_an_unmarked_sentence_waits_for_its_paragraphs_marker(wall_sources: list[Source]) -> None:
    g = SentenceGate(Q, wall_sources)
    assert g.feed("Construction of the wall began on 13 August 1961. It fell in 1989") == []
    shown = g.feed(" [1].\nNext")
    assert "".join(shown) == "Construction of the wall began on 13 August 1961. It fell in 1989 [1]."
    # markers-first lines ("[1] The wall ...") keep each marker with the sentence after it, and show it
    # after that sentence, as every other answer has its markers
    text = "[1] Construction began on 13 August 1961. [2] Everest is 8,848.86 m high."
    shown, gate = gate_run("When was the wall built and how high is Everest?", wall_sources, text)
    assert shown == "Construction began on 13 August 1961. [1] Everest is 8,848.86 m high. [2]"
    assert gate.failed is None


@pytest.mark.parametrize(
    "pointer",
    ["The source for this information is [1].", "See [1].", "This is described in the documentation [1]."],
)
def test_a_sentence_that_only_points_at_its_source_becomes_the_claims_marker(
    wall_sources: list[Source], pointer: str
) -> None:
    shown, gate = gate_run(Q, wall_sources, f"Construction of the wall began on 13 August 1961. {pointer}")
    assert shown == "Construction of the wall began on 13 August 1961. [1]"
    assert gate.failed is None and not gate.dropped
    # after a claim with its own marker, the pointer adds nothing
    shown, _ = gate_run(Q, wall_sources, f"Construction of the wall began on 13 August 1961 [1]. {pointer}")
    assert shown == "Construction of the wall began on 13 August 1961 [1]."
    # alone, it answers nothing
    shown, gate = gate_run(Q, wall_sources, pointer)
    assert shown == "" and gate.failed is not None and gate.failed.reason == "empty"


def test_a_sentence_the_model_left_uncited_gets_the_sources_that_hold_its_values() -> None:
    sources = [
        Source(
            "https://docs.test/gzip",
            "gzip",
            "The compresslevel argument is an integer from 0 to 9. The default compresslevel of "
            "gzip.open() is 9.",
        ),
        Source(
            "https://docs.test/zlib",
            "zlib",
            "The default value of level in zlib.compress() is -1 (Z_DEFAULT_COMPRESSION).",
        ),
        Source("https://docs.test/other", "other", "Unrelated text about sockets."),
    ]
    question = "What are the default compression levels of gzip.open() and of zlib.compress()?"
    shown, gate = gate_run(question, sources, "The default level of gzip.open() is 9.")
    assert shown == "The default level of gzip.open() is 9. [1]" and gate.failed is None
    both = "The default level of gzip.open() is 9, and that of zlib.compress() is -1."
    shown, _ = gate_run(question, sources, both)
    assert shown == both + " [1][2]"
    # no value of its own: nothing to look up, so no source is claimed for it
    text = "Compression of gzip.open() trades speed for size.\n\nThe default level of gzip.open() is 9 [1]."
    shown, _ = gate_run(question, sources, text)
    assert shown == text


def test_the_retry_hint_is_never_a_sentence_that_only_restates_the_question() -> None:
    from groundglass.answer.embeddings import get_embedder
    from groundglass.answer.retry_hints import closest_sentences

    question = "Which pickle protocol version is the default starting with Python 3.8?"
    sources = [
        Source(
            "https://docs.test/pickle",
            "pickle",
            "It is the default protocol starting with Python 3.8. Refer to PEP 3154 for details.",
        ),
        Source("https://docs.test/pickle2", "pickle", "Changed in version 3.8: The default protocol is 4."),
    ]
    hints = closest_sentences(question, sources, get_embedder())
    assert hints[0] == (2, "Changed in version 3.8: The default protocol is 4.")
    assert all("starting with Python 3.8" not in s for _, s in hints)


def test_a_retry_hint_keeps_the_dash_of_the_option_it_names() -> None:
    """Postfix's postqueue(1), as the docs site gave it: the hint's "i queue_id Schedule ..." named no
    option, and the default model declined; a list item's bullet still goes."""
    from groundglass.answer.embeddings import get_embedder
    from groundglass.answer.retry_hints import closest_sentences

    question = (
        "Which option of Postfix's postqueue command schedules immediate delivery of a single deferred "
        "message, given its queue ID?"
    )
    text = (
        "-i queue_id Schedule immediate delivery of deferred mail with the specified queue ID.\n"
        "- Schedule immediate delivery of all mail that is queued for the named site."
    )
    hints = closest_sentences(
        question, [Source("https://docs.test/postqueue.1.html", "postqueue", text)], get_embedder()
    )
    shown = [s for _, s in hints]
    assert "-i queue_id Schedule immediate delivery of deferred mail with the specified queue ID." in shown
    assert "Schedule immediate delivery of all mail that is queued for the named site." in shown


def test_the_retry_hints_hold_the_sentence_that_answers_not_only_the_one_that_sounds_alike() -> None:
    from groundglass.answer.embeddings import get_embedder
    from groundglass.answer.retry_hints import closest_sentences

    # the two sources the docs site gave for this question (pickle.html, as extracted and condensed)
    question = "Which pickle protocol version is the default starting with Python 3.8?"
    sources = [
        Source(
            "https://docs.test/pickle#data-stream-format",
            "pickle",
            "- Protocol version 4 was added in Python 3.4. It adds support for very large objects, pickling "
            "more kinds of objects, and some data format optimizations. It is the default protocol starting "
            "with Python 3.8. Refer to PEP 3154 for information about improvements brought by protocol 4.\n"
            "- Protocol version 5 was added in Python 3.8. It adds support for out-of-band data and speedup "
            "for in-band data.",
        ),
        Source(
            "https://docs.test/pickle#module-interface",
            "pickle",
            "May be less than HIGHEST_PROTOCOL. Changed in version 3.0: The default protocol is 3. "
            "Changed in version 3.8: The default protocol is 4.",
        ),
    ]
    hints = closest_sentences(question, sources, get_embedder())
    assert (2, "Changed in version 3.8: The default protocol is 4.") in hints and len(hints) <= 3
    assert all(not s.startswith("-") for _, s in hints)  # list bullets are not part of the quote
    # "It is the default protocol ..." names no protocol alone: it comes after the sentence that does
    said = (
        "Protocol version 4 was added in Python 3.4. ... It is the default protocol starting with Python 3.8."
    )
    assert hints[0] == (1, said)
    assert not any(s.startswith(("It ", "This ")) for _, s in hints)
    part_question = "Which pickle protocol is the default since Python 3.8"
    part = closest_sentences(part_question, sources[:1], get_embedder())
    assert part[0] == (1, said)


def test_a_figure_near_the_questions_own_is_still_a_claim_to_check() -> None:
    # "4" rounds to nothing in the question: "3.8" is not "4", so the 4 must be in the source
    question = "Which pickle protocol version is the default starting with Python 3.8?"
    source = [
        Source("https://docs.test/pickle", "pickle", "Changed in version 3.8: The default protocol is 5.")
    ]
    wrong = cite.check_values(
        "The default starting with Python 3.8 is protocol version 4. [1]", question, source
    )
    assert wrong.unsupported == ["4"]
    said_again = cite.check_values("Python 3.8 made protocol 5 the default. [1]", question, source)
    assert said_again.ok


def test_markers_of_sources_that_hold_none_of_the_values_are_taken_out() -> None:
    question = "Which pickle protocol version is the default starting with Python 3.8?"
    sources = [
        Source("https://docs.test/pickle", "pickle", "Protocol version 4 was added in Python 3.4."),
        Source("https://docs.test/pickle2", "pickle", "Changed in version 3.8: The default protocol is 4."),
        Source("https://docs.test/whatsnew", "What's New", "This remapping is turned on by default."),
    ]
    text = (
        "The default protocol starting with Python 3.8 is protocol version 4. [1][2][3] "
        "It was added in Python 3.4 [1][3]. It is documented in the pickle module [1][3]."
    )
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None and not gate.dropped
    assert shown == (
        # [1] holds the 4, but not as the default: only [2] says that
        "The default protocol starting with Python 3.8 is protocol version 4. [2] "
        "It was added in Python 3.4 [1]. It is documented in the pickle module [1]."  # no value: its words
    )


def test_a_sentence_of_two_clauses_keeps_the_marker_of_each_clause_s_source() -> None:
    # Python's manual, the default model: one sentence for a two-part question, both markers written,
    # and the timeit page's marker taken out because the whole sentence, read against that page alone,
    # said its timeout default was 1000000
    question = (
        "What is the default timeout of sqlite3.connect() in seconds, and how many executions does "
        "timeit.timeit() run by default?"
    )
    sources = [
        Source(
            "https://docs.test/sqlite3",
            "sqlite3",
            "- sqlite3.connect(database, timeout=5.0, detect_types=0, cached_statements=128, uri=False):\n"
            "- timeout (float) – How many seconds the connection should wait before raising an exception. "
            "Default five seconds.",
        ),
        Source(
            "https://docs.test/timeit",
            "timeit",
            "- timeit.timeit(stmt='pass', setup='pass', timer=<default timer>, number=1000000):\n"
            "- Create a Timer instance and run its timeit() method with number executions.",
        ),
    ]
    text = (
        "The default timeout of sqlite3.connect() in seconds is 5.0, and timeit.timeit() runs by default "
        "1000000 executions. [1][2]"
    )
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None and not gate.dropped
    assert shown == text


def test_a_source_holding_only_some_of_a_sentence_s_values_loses_its_marker_to_one_holding_all() -> None:
    # Python's manual, the default model: the time module's table prints "+HHMM", datetime's the whole
    # form; both markers stayed, and the time page was cited for a form it does not give
    question = "In what form does the %z strftime directive write the UTC offset?"
    sources = [
        Source(
            "https://docs.test/time",
            "time",
            "| %z | Time zone offset indicating a positive or negative time difference from UTC/GMT of the "
            "form +HHMM or -HHMM, where H represents decimal hour digits and M represents decimal minute "
            "digits [-23:59, +23:59]. |",
        ),
        Source(
            "https://docs.test/datetime",
            "datetime",
            "| %z | UTC offset in the form ±HHMM[SS[.ffffff]] (empty string if the object is naive). "
            "| (empty), +0000, -0400, +1030, +063415, -030712.345216 | (6) |",
        ),
    ]
    text = "The %z strftime directive writes the UTC offset in the form ±HHMM[SS[.ffffff]]. [1][2]"
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None and not gate.dropped
    assert shown == "The %z strftime directive writes the UTC offset in the form ±HHMM[SS[.ffffff]]. [2]"


def node_page(name: str, title: str, text: str) -> Source:
    """A page of Node.js 18's manual, as the web reader extracts it."""
    return Source(f"https://docs.test/{name}", f"{title} | Node.js v18.20.4 Documentation", text)


def crypto_source() -> Source:
    """Node.js 18's entry for crypto.randomUUID(), as the manual writes it."""
    return node_page(
        "crypto",
        "Crypto",
        "- crypto.randomUUID([options]):\n- options <Object>\n- disableEntropyCache <boolean> By default, "
        "to improve performance, Node.js generates and caches enough random data to generate up to 128 "
        "random UUIDs. Default: false.\n- Returns: <string>\nGenerates a random RFC 4122 version 4 UUID. "
        "The UUID is generated using a cryptographic pseudorandom number generator.",
    )


def test_the_question_s_labelled_figure_said_again_must_be_the_one_the_source_gives() -> None:
    # Node.js's manual, the default model: an unanswerable question (Node 18 generates no version 7
    # UUIDs) answered with the version 4 function, and marked supported
    question = "Which function of Node.js's crypto module generates time-ordered version 7 UUIDs?"
    for text in (
        "The function of Node.js's crypto module that generates time-ordered version 7 UUIDs is "
        "`crypto.randomUUID()`. [1]",
        "The crypto.randomUUID() function generates version 7 UUIDs. [1]",
    ):
        shown, gate = gate_run(question, [crypto_source()], text)
        assert shown == ""
        assert gate.failed is not None and gate.failed.values == ["version 7"]
    asked = "Which function of Node.js's crypto module generates version 4 UUIDs?"
    text = "The crypto.randomUUID() function generates version 4 UUIDs. [1]"
    assert_passes(asked, [crypto_source()], text)


def test_a_default_said_of_a_list_item_s_name_is_the_one_its_default_label_gives() -> None:
    # Node.js's manual, the default model: maxSessionMemory's default is 10; it answered 32, the
    # "Default:" of maxSettings, the item before it, and the check found 32 beside "Default" and passed
    http2 = node_page(
        "http2",
        "HTTP/2",
        "- maxSettings <number> Sets the maximum number of settings entries per SETTINGS frame. The minimum "
        "value allowed is 1. Default: 32.\n"
        "- maxSessionMemory<number> Sets the maximum memory that the Http2Session is permitted to use. The "
        "value is expressed in terms of number of megabytes, e.g. 1 equal 1 megabyte. The minimum value "
        "allowed is 1. This is a credit based limit, existing Http2Streams may cause this limit to be "
        "exceeded. Default: 10.\n"
        "- maxHeaderListPairs <number> Sets the maximum number of header entries. The minimum value is 4. "
        "Default: 128.",
    )
    question = (
        "In Node.js's http2 module, what is the default value of the maxSessionMemory option, the memory "
        "limit of an Http2Session in megabytes?"
    )
    wrong = "The default value of the maxSessionMemory option in Node.js's http2 module is 32 megabytes. [1]"
    shown, gate = gate_run(question, [http2], wrong)
    assert shown == "" and gate.failed is not None
    # sent back with the item's own default, to copy from
    assert gate.failed.reason == "stated_otherwise" and gate.failed.values == ["10"]
    assert gate.failed.hints[0][1].startswith("- maxSessionMemory<number> Sets the maximum memory")
    assert gate.failed.hints[0][1].endswith("Default: 10.")
    # said of the item without its name in the question, the value check refuses it too
    evidence = grounding.evidence_for([http2.text])
    worded = "What is the default memory limit of an Http2Session in megabytes?"
    said = "The default maxSessionMemory of an Http2Session is 32 megabytes."
    assert "32 megabytes" in grounding.defaults.prose_contradicted(said, worded, evidence)
    right = "The default value of the maxSessionMemory option in Node.js's http2 module is 10 megabytes. [1]"
    assert_passes(question, [http2], right)
    # a default called by other words than its item's name keeps every label as a source
    perf = node_page(
        "perf_hooks",
        "Performance measurement APIs",
        "perf_hooks.monitorEventLoopDelay([options])\n"
        "- options <Object>\n- resolution <number> The sampling rate in milliseconds. Must be greater than "
        "zero. Default: 10.\n- highWaterMark <integer> Default: 64 * 1024.",
    )
    asked = "What is the default sampling rate (resolution) of perf_hooks.monitorEventLoopDelay()?"
    said = "The default sampling rate of perf_hooks.monitorEventLoopDelay() is 10 milliseconds. [1]"
    assert_passes(asked, [perf], said)


def test_a_release_is_found_with_or_without_its_v() -> None:
    # Node.js's manual writes releases "v18.0.0"; the default model's "since version 18.0.0" was refused
    # as a version no source holds, and the answerable question declined
    http = node_page(
        "http",
        "HTTP",
        "History\n\n| Version | Changes |\n| --- | --- |\n"
        "| v18.0.0 | The default request timeout changed from no timeout to 300s (5 minutes). |\n"
        "| v14.11.0 | Added in: v14.11.0 |\n\n- <number> Default: 300000",
    )
    question = (
        "In Node.js's http module, since which version does server.requestTimeout default to 300 seconds "
        "instead of no timeout?"
    )
    text = "Since version 18.0.0, the default request timeout is 300 seconds instead of no timeout. [1]"
    assert_passes(question, [http], text)
    invented = "Since version 17.0.0, the default request timeout is 300 seconds instead of no timeout. [1]"
    _, gate = gate_run(question, [http], invented)
    assert gate.failed is not None and "17.0.0" in gate.failed.values


TIMEIT = "How many times does timeit.timeit() execute the statement by default (its number argument)?"


def timeit_sources() -> list[Source]:
    """The timeit page's signature and its prose, and two pages that print 1000000 about other things."""
    return [
        Source(
            "https://docs.test/timeit", "timeit", "timeit.timeit(stmt='pass', setup='pass', number=1000000)"
        ),
        Source("https://docs.test/whatsnew26", "What's New in 2.6", "The resolution is now 1000000 ticks."),
        Source("https://docs.test/datetime", "datetime", "0 <= microseconds < 1000000"),
        Source(
            "https://docs.test/timeit#cli",
            "timeit",
            "Execute the main statement number times. If number is not given, it defaults to 1000000.",
        ),
    ]


def test_of_the_sources_that_hold_a_value_those_that_state_it_about_the_same_thing_keep_their_markers() -> (
    None
):
    # the local index's s05: 1000000 is in the timeit page and in three What's New pages and the
    # datetime page (about other things); the model cited all five
    question, sources = TIMEIT, timeit_sources()
    text = "The default number of times timeit.timeit() executes the statement is 1000000. [1][2][3][4]"
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None
    assert shown == "The default number of times timeit.timeit() executes the statement is 1000000. [1][4]"


RTREE = "What is the maximum number of dimensions an SQLite R*Tree index supports?"


def rtree_sources() -> list[Source]:
    """The chunks the web search put first: SQLite's R*Tree page, and the run-time limits page that
    says "the maximum number of" often and prints no 5."""
    return [
        Source(
            "https://docs.test/rtree.html",
            "The SQLite R*Tree Module",
            "3. Using the R*Tree Module\nThe SQLite R*Tree module is implemented as a virtual table. Each "
            "R*Tree index is a virtual table with an odd number of columns between 3 and 11. The first "
            "column is always a 64-bit signed integer primary key. … And a 5-dimensional R*Tree has 11 "
            "columns. The SQLite R*Tree implementation does not support R*Trees wider than 5 dimensions.",
        ),
        Source(
            "https://docs.test/c3ref/c_limit_attached.html",
            "Run-Time Limit Categories",
            "The synopsis of the meanings of the various limits is shown below. Additional information is "
            "available at Limits in SQLite.\n- SQLITE_LIMIT_COLUMN:\n- The maximum number of columns in a "
            "table definition or in the result set of a SELECT or the maximum number of columns in an index "
            "or in an ORDER BY or GROUP BY clause.\n- SQLITE_LIMIT_EXPR_DEPTH:\n- The maximum depth of the "
            "parse tree on any expression.\n- SQLITE_LIMIT_COMPOUND_SELECT:\n- The maximum number of terms "
            "in a compound SELECT statement.",
        ),
    ]


def test_a_small_figure_cites_the_sources_that_print_it() -> None:
    # the small count passes the value check in any source that speaks of "the maximum number of"; only
    # the R*Tree page prints it
    text = "The maximum number of dimensions an SQLite R*Tree index supports is 5. [1][2]"
    shown, gate = gate_run(RTREE, rtree_sources(), text)
    assert gate.failed is None
    assert shown == "The maximum number of dimensions an SQLite R*Tree index supports is 5. [1]"


def test_a_sentence_whose_lender_moved_its_markers_gets_the_source_that_prints_its_figure() -> None:
    text = "An R*Tree index supports at most 5 dimensions. A 5-dimensional R*Tree has 11 columns. [2][1]"
    shown, gate = gate_run(RTREE, rtree_sources()[::-1], text)
    assert gate.failed is None
    # the first sentence leans on the second's markers, which moved to [2]: it does not get [1]
    assert (
        shown == "An R*Tree index supports at most 5 dimensions. A 5-dimensional R*Tree has 11 columns. [2]"
    )


def test_a_default_the_cited_signature_prints_otherwise_is_sent_back_with_the_signature() -> None:
    # the sentence names compresslevel in words; zlib's page says -1 is its default, gzip's signature 9
    question = "What are the default compression levels of gzip.open() and of zlib.compress()?"
    sources = [
        Source(
            "https://docs.test/zlib",
            "zlib — Compression compatible with gzip",
            "- zlib.compress(data, /, level=-1, wbits=MAX_WBITS):\n0 (Z_NO_COMPRESSION) is no compression. "
            "The default value is -1 (Z_DEFAULT_COMPRESSION).",
        ),
        Source(
            "https://docs.test/gzip",
            "gzip — Support for gzip files",
            "- gzip.open(filename, mode='rb', compresslevel=9, encoding=None, errors=None, newline=None):\n"
            "The mode argument can be any of 'r', 'rb', 'a' or 'ab'. The default is 'rb'.",
        ),
    ]
    text = "The default compression level of gzip.open() is -1 (Z_DEFAULT_COMPRESSION). [1][2]"
    shown, gate = gate_run(question, sources, text)
    assert shown == "" and gate.failed is not None
    assert gate.failed.reason == "printed_otherwise" and gate.failed.values == ["compresslevel=9"]
    assert gate.failed.hints == [
        (2, "- gzip.open(filename, mode='rb', compresslevel=9, encoding=None, errors=None, newline=None):")
    ]
    right = "The default compression level of gzip.open() is 9. [2]"
    assert gate_run(question, sources, right)[0] == right


def test_a_sentence_that_cites_the_wrong_source_gets_the_markers_of_those_that_hold_its_values() -> None:
    question = "What are the default compression levels of gzip.open() and of zlib.compress()?"
    sources = [
        Source(
            "https://docs.test/gzip", "gzip", "gzip.open(filename, mode='rb', compresslevel=9, encoding=None)"
        ),
        Source(
            "https://docs.test/gzip#examples", "gzip", "Example of how to read a compressed file: import gzip"
        ),
        Source("https://docs.test/archiving", "Archiving", "These modules support data compression."),
        Source("https://docs.test/zlib", "zlib", "zlib.compress(data, /, level=-1, wbits=MAX_WBITS)"),
    ]
    text = (
        "The default compression level of gzip.open() is 9, and that of zlib.compress() is -1. [1][2]\n\n"
        "The default of zlib.compress() is 7 [4]."
    )
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None
    assert (
        shown
        == "The default compression level of gzip.open() is 9, and that of zlib.compress() is -1. [1][4]"
    )
    assert [r.values for r in gate.dropped] == [["7"]]  # a value no source holds is still never shown


ARRAY_ROWS = Source(
    "https://docs.test/array",
    "array — Efficient arrays of numeric values",
    "| Type code | C Type | Python Type | Minimum size in bytes | Notes |\n| --- | --- | --- | --- | --- |\n"
    "| 'f' | float | float | 4 |  |\n| 'd' | double | float | 8 |  |",
)
CTYPES_RESIZE = Source(
    "https://docs.test/ctypes",
    "ctypes — A foreign function library for Python",
    "The function takes the object as first argument, and the requested size in bytes as the second "
    "argument. >>> resize(short_array, 4) Traceback (most recent call last): ... "
    "ValueError: minimum size is 8",
)


@pytest.mark.parametrize(
    "text",
    [
        "The minimum size in bytes of the array module's type code 'd' is 8 bytes. [2]",
        "The minimum size in bytes of the array module's type code 'd' is 8. [2][3]",
    ],
)
def test_a_sentence_citing_a_page_where_its_figure_stands_among_other_words_cites_the_row_instead(
    text: str,
) -> None:
    # the default model's s10: ctypes's "minimum size is 8" holds the figure; the array page's row for
    # 'd', which the question names, holds it under the header that says what it is
    question = "What is the minimum size in bytes of the array module's type code 'd'?"
    shown, gate = gate_run(question, [ARRAY_ROWS, CTYPES_RESIZE, CTYPES_RESIZE], text)
    assert gate.failed is None
    assert shown == text[: text.index(" [")] + " [1]"


DATETIME_J = Source(
    "https://docs.test/datetime", "datetime", "| %j | Day of the year as a zero-padded decimal number. |"
)


def test_a_sentence_without_values_cites_the_source_that_holds_its_words() -> None:
    # the local index's s01: the What's New page, which names strftime's new directives, was cited for
    # what the datetime page's table says of %j
    question = "What does the %j directive mean in datetime's strftime format codes?"
    sources = [
        Source(
            "https://docs.test/datetime", "datetime", "| %j | Day of the year as a decimal number. | 001 |"
        ),
        Source(
            "https://docs.test/whatsnew", "What's New", "strftime() now supports the directives %G and %V."
        ),
    ]
    shown, _ = gate_run(
        question, sources, "The %j directive gives the day of the year as a decimal number. [2]"
    )
    assert shown == "The %j directive gives the day of the year as a decimal number. [1]"
    shown, _ = gate_run(question, sources, "The %j directive is one of strftime's directives. [2]")
    assert shown.endswith("[2]")  # as well said by both: the model's choice stands


def test_sentences_that_leaned_on_markers_that_moved_keep_markers_of_their_own() -> None:
    # the local index's s01: three sentences and "[1][2]" at the end; the last one's 8601 is only in
    # What's New, so its marker moved there, and the table's definition was left citing What's New
    question = "What does the %j directive mean in datetime's strftime format codes?"
    sources = [
        DATETIME_J,
        Source("https://docs.test/time", "time", "| %j | Day of the year as a decimal number [001,366]. |"),
        Source(
            "https://docs.test/whatsnew",
            "What's New",
            "strftime() supports the ISO 8601 date directives %G and %V.",
        ),
    ]
    text = (
        'The %j directive means "Day of the year as a zero-padded decimal number." It is a part of the '
        "ISO 8601 date format. [1][2]"
    )
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None
    assert shown == (
        'The %j directive means "Day of the year as a zero-padded decimal number." [1] It is a part of the '
        "ISO 8601 date format. [3]"
    )


def test_a_cited_source_as_good_as_the_others_keeps_its_marker() -> None:
    question = "What is the minimum size in bytes of the array module's type code 'd'?"
    text = "The minimum size in bytes of the array module's type code 'd' is 8 bytes. [2]"
    shown, _ = gate_run(question, [CTYPES_RESIZE, ARRAY_ROWS], text)
    assert shown == text


def test_a_sentence_that_only_names_sources_keeps_the_markers_of_those_that_hold_the_claim() -> None:
    # the local index's s03 and s07: "... is protocol version 4. This is mentioned in [1][2] and
    # [3][4].", [3] and [4] What's New pages where the figure stands beside other words; all four
    # were shown, as if the pointer's markers needed no check
    question, sources = TIMEIT, timeit_sources()
    claim = "The default number of times timeit.timeit() executes the statement is 1000000."
    shown, gate = gate_run(question, sources, claim + " This is mentioned in [1][2] and [3][4].")
    assert gate.failed is None
    assert shown == claim + " [1][4]"
    # a pointer after a claim with markers of its own still adds nothing
    shown, _ = gate_run(question, sources, claim + " [1][4] This is mentioned in [1][2] and [3][4].")
    assert shown == claim + " [1][4]"


def test_a_sentence_that_only_says_where_it_was_seen_lends_its_marker_to_the_claim() -> None:
    # the default model's s05 answer: the claim had no marker, the next sentence only pointed at [1],
    # and the claim was shown without any citation
    question = "How many times does timeit.timeit() execute the statement by default (its number argument)?"
    sources = [Source("https://docs.test/timeit", "timeit", "timeit.timeit(stmt='pass', number=1000000)")]
    claim = "The default number of times timeit.timeit() executes the statement is 1000000."
    text = claim + " This can be seen in the [1] documentation."
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None
    assert shown == claim + " [1]"


def test_without_sources_the_gate_checks_nothing() -> None:
    gate = SentenceGate("Say hello.", [])
    assert gate.feed("Hello") == ["Hello"] and gate.feed(" there, 42.") == [" there, 42."]


def test_sentence_units_keep_markers_bullets_and_abbreviations() -> None:
    text = (
        "Dr. Smith met J. R. Tolkien in 1950.[1] He liked it! Was it 3.5 m tall? Yes [2].\n1. first [1]\n2. x"
    )
    assert [text[a:b].strip() for a, b in units(text, final=True)] == [
        "Dr. Smith met J. R. Tolkien in 1950.[1]",
        "He liked it!",
        "Was it 3.5 m tall?",
        "Yes [2].",
        "1. first [1]",
        "2. x",
    ]
    partial = "It is done. [1] And"
    assert [partial[a:b] for a, b in units(partial, final=False)] == ["It is done. [1]"]
    # the default model's "UPSERT (INSERT ... ON CONFLICT DO UPDATE) was added ..." was checked as the
    # sentence "UPSERT (INSERT ...", a restatement of the question, and the draft failed
    code = (
        "UPSERT (INSERT ... ON CONFLICT DO UPDATE) was added in 3.24.0 [1]. Use it (see the notes. Or not)."
    )
    assert [code[a:b].strip() for a, b in units(code, final=True)] == [
        "UPSERT (INSERT ... ON CONFLICT DO UPDATE) was added in 3.24.0 [1].",
        "Use it (see the notes. Or not).",
    ]


# --- loops ------------------------------------------------------------------------------------------


def first_alarm(text: str) -> int | None:
    guard = RepetitionGuard()
    return next((i for i, ch in enumerate(text) if guard.feed(ch)), None)


def test_a_run_of_zeros_is_caught_early() -> None:
    text = "The default value of X is 0." + "0" * 2000
    at = first_alarm(text)
    assert at is not None and at < 100


def test_a_repeated_sentence_is_caught_at_its_third_copy() -> None:
    sentence = "The answer is in the documentation [1]. "
    at = first_alarm("Here it is. " + sentence * 10)
    assert at is not None and at < len("Here it is. ") + 3 * len(sentence)


def test_ordinary_text_tables_and_rulers_are_not_loops(berlin: list[str]) -> None:
    assert first_alarm(berlin[0]) is None
    assert first_alarm("| a | b |\n|---|---|\n| 1 | 2 |\n" + "-" * 79 + "\n" + "=" * 60 + "\n") is None
    assert first_alarm("1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20") is None


def test_a_fenced_code_block_is_one_unit_shown_whole(wall_sources: list[Source]) -> None:
    text = (
        "Construction of the Berlin Wall began on 13 August 1961 [1]. For example:\n"
        "```python\nwall = build(year=1961)\nprint(wall.my_length)\n```\nIt fell in 1989 [1]."
    )
    spans = units(text, final=True)
    assert [text[a:b].strip() for a, b in spans][-2:] == [
        "```python\nwall = build(year=1961)\nprint(wall.my_length)\n```",
        "It fell in 1989 [1].",
    ]
    assert units("```python\nx = 1\n", final=False) == []  # an open block waits for its fence
    shown, gate = gate_run(Q, wall_sources, text)
    assert shown == text and not gate.dropped


FLOAT_INFO = (
    "sys.float_info: a named tuple holding information about the float type.\n\n"
    "| attribute | float.h macro | explanation |\n| --- | --- | --- |\n"
    "| epsilon | DBL_EPSILON | difference between 1.0 and the least value greater than 1.0 |\n"
    "| dig | DBL_DIG | maximum number of decimal digits that can be faithfully represented in a float |\n\n"
    "| attribute | float.h macro | explanation |\n| --- | --- | --- |\n"
    "| radix | FLT_RADIX | radix of exponent representation |\n"
    "| rounds | FLT_ROUNDS | integer constant representing the rounding mode |\n"
)


def test_a_value_from_another_row_of_the_table_than_the_one_asked_about_is_not_shown() -> None:
    # the default model's s06: the value is in the source, but in the rounds row, not the dig row
    question = "Which C macro does the dig attribute of sys.float_info correspond to?"
    sources = [Source("https://docs.test/sys", "sys", FLOAT_INFO)]
    shown, gate = gate_run(
        question, sources, "The dig attribute of sys.float_info corresponds to FLT_ROUNDS. [1]"
    )
    assert shown == "" and gate.failed is not None
    assert gate.failed.reason == "wrong_row" and gate.failed.values == ["FLT_ROUNDS"]
    assert gate.failed.hints == [
        (1, "| attribute | float.h macro | explanation | " + FLOAT_INFO.splitlines()[5])
    ]
    shown, gate = gate_run(
        question, sources, "The dig attribute of sys.float_info corresponds to DBL_DIG. [1]"
    )
    assert gate.failed is None and shown.endswith("DBL_DIG. [1]")
    # a row the question does not name: nothing to tell apart
    shown, gate = gate_run(
        "Which macro gives the rounding mode?", sources, "The rounding mode is given by FLT_ROUNDS. [1]"
    )
    assert gate.failed is None and shown == "The rounding mode is given by FLT_ROUNDS. [1]"


ARRAY_CODES = (  # the array page's table as the index cut it: the 'd' row is in the next chunk
    "The following type codes are defined:\n\n"
    "| Type code | C Type | Python Type | Minimum size in bytes | Notes |\n| --- | --- | --- | --- | --- |\n"
    "| 'b' | signed char | int | 1 |  |\n| 'h' | signed short | int | 2 |  |\n"
    "| 'l' | signed long | int | 4 |  |\n| 'q' | signed long long | int | 8 |  |\n"
)


def test_a_value_for_a_row_that_no_source_holds_is_not_shown() -> None:
    # the default model's t05: "... type code 'd' is 2 bytes", the 2 of the 'h' row
    question = "What is the minimum size in bytes of array type code 'd'?"
    sources = [Source("https://docs.test/array", "array", ARRAY_CODES)]
    shown, gate = gate_run(question, sources, "The minimum size of array type code 'd' is 2 bytes. [1]")
    assert shown == "" and gate.failed is not None
    assert gate.failed.reason == "missing_row" and gate.failed.values == ["2 bytes"]
    retry = prompt.retry_messages([], "...", gate.failed.reason, gate.failed.values)[-1].content
    assert '"2 bytes" is from another row' in retry
    # the row asked about is there: the value of its row passes
    shown, gate = gate_run(question, sources, "The minimum size of array type code 'q' is 8 bytes. [1]")
    assert gate.failed is None and shown.endswith("8 bytes. [1]")


def test_a_marker_moved_to_the_source_that_holds_the_value_leaves_no_words_pointing_at_nothing() -> None:
    # the default model's s10 was shown as "... is 8, as stated in. [2]"
    question = "How many times does timeit.timeit() run the statement by default?"
    sources = [
        Source("https://docs.test/intro", "intro", "The timeit module measures small snippets of code."),
        Source("https://docs.test/timeit", "timeit", "timeit.timeit(stmt='pass', number=1000000) runs it."),
    ]
    for said in ("as stated in [1]", "according to [1]", "(see [1])"):
        shown, gate = gate_run(question, sources, f"It runs the statement 1000000 times, {said}.")
        assert gate.failed is None and shown == "It runs the statement 1000000 times. [2]", shown
    shown, gate = gate_run(question, sources, "It runs the statement 1000000 times [1][2].")
    assert shown == "It runs the statement 1000000 times [2].", shown


def test_the_retry_after_a_wrong_row_shows_the_row_the_question_names() -> None:
    messages = prompt.build_messages("Which C macro does dig correspond to?", [], style="brief")
    out = prompt.retry_messages(
        messages, "... is FLT_ROUNDS. [1]", "wrong_row", ["FLT_ROUNDS"], [(1, "| a | b | | dig | DBL_DIG |")]
    )
    last = out[-1].content
    assert '"FLT_ROUNDS" is in another row of the source\'s table' in last
    assert '[1] "| a | b | | dig | DBL_DIG |"' in last


def test_a_paragraph_said_again_is_left_out() -> None:
    question = "How long does a rollback take?"
    sources = [Source("https://docs.test/ops", "ops", "A rollback takes 90 days to complete. It is logged.")]
    paragraph = "A rollback takes 90 days to complete. [1] It is logged in the operations journal. [1]"
    shown, gate = gate_run(question, sources, f"{paragraph}\n\n{paragraph}\n\n{paragraph}")
    assert gate.failed is None
    assert shown.strip() == paragraph
    assert [r.reason for r in gate.dropped] == ["repetition"] * 4 and gate.repeats == 4
    # short sentences may well come twice
    shown, gate = gate_run("Is it logged?", sources, "Yes. [1] It is logged. [1] Yes. [1]")
    assert gate.repeats == 0


def test_sentences_that_leaned_on_the_markers_of_a_sentence_left_out_get_their_own() -> None:
    # the default model's s01: two sentences without markers, then a third citing [1][2][3][4] with a
    # value no source holds; the third was left out and the answer was shown without any citation
    question = "What does the %j directive mean in datetime's strftime format codes?"
    sources = [
        DATETIME_J,
        Source(
            "https://docs.test/time", "time", "The field width is normally 2 except for %j where it is 3."
        ),
    ]
    first = 'The %j directive means "Day of the year as a zero-padded decimal number."'
    second = "It is used to display the day of the year."
    text = f"{first} {second} It follows the ISO 8601 standard. [1][2]"
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None and [r.values for r in gate.dropped] == [["ISO", "8601"]]
    assert shown == f"{first} {second} [1]"


ENV_VARS = (
    "1.2. Environment variables. These environment variables influence Python's behavior. "
    "PYTHONWARNINGS: this is equivalent to the -W option. "
    "PYTHONEXECUTABLE: if this environment variable is set, sys.argv[0] will be set to its value."
)
HANDLERS = (
    "BaseRotatingHandler. When rotating, rotate the current log. The default implementation calls the "
    "rotator attribute of the handler, if it's callable (the default is None)."
)
BASIC_CONFIG = (
    "logging.basicConfig(**kwargs) does basic configuration for the logging system. "
    "The style argument of basicConfig() is one of '%', '{' or '$'; the default is None, which means '%'."
)


def test_an_environment_variable_no_source_names_fails() -> None:
    q = "What does the PYTHONJITLEVEL environment variable control?"
    invented = "The PYTHONJITLEVEL environment variable controls the title of the Python window [1]."
    assert check(invented, q, [ENV_VARS]).unsupported == ["PYTHONJITLEVEL"]
    q = "What does the PYTHONWARNINGS environment variable do?"
    assert check("PYTHONWARNINGS is equivalent to the -W option [1].", q, [ENV_VARS]).ok


def test_an_argument_must_be_named_by_a_source_that_names_its_function() -> None:
    q = "What is the default value of the rotate argument of logging.basicConfig()?"
    invented = "The default value of the rotate argument of logging.basicConfig() is None [1][2]."
    # "rotate" is on the handlers' page, "basicConfig" and "None" on its own: none says both
    assert check(invented, q, [BASIC_CONFIG, HANDLERS]).unsupported == ["rotate"]
    q = "What is the default value of the style argument of logging.basicConfig()?"
    right = "The default value of the style argument of logging.basicConfig() is None [1]."
    assert check(right, q, [BASIC_CONFIG, HANDLERS]).ok


# The docs' ThreadPoolExecutor section as the index reads it: an example's call, then the signature.
POOL = (
    "ThreadPoolExecutor¶\n"
    "def wait_on_future(): f = executor.submit(pow, 5, 2) # only one worker thread "
    "print(f.result()) executor = ThreadPoolExecutor(max_workers=1) executor.submit(wait_on_future)\n"
    "- class concurrent.futures.ThreadPoolExecutor(max_workers=None, thread_name_prefix='', "
    "initializer=None, initargs=())¶\n"
    "- An Executor subclass that uses a pool of at most max_workers threads to execute calls asynchronously."
)
CHANGED = "Changed in version 3.8: Default value of max_workers is changed to min(32, os.cpu_count() + 4)."
ISCLOSE = "math.isclose(a, b, *, rel_tol=1e-09, abs_tol=0.0)¶\n- Return True if the values a and b are close."


def test_a_default_taken_from_an_example_call_fails_against_the_signature() -> None:
    q = "What is the default value of max_workers for concurrent.futures.ThreadPoolExecutor?"
    # "1" stands beside "max_workers" in the example, so the value check alone passed it
    invented = "The default value of max_workers for concurrent.futures.ThreadPoolExecutor is 1 [1]."
    assert check(invented, q, [POOL]).unsupported == ["1"]
    assert check("The default value of max_workers is None [1].", q, [POOL]).ok
    assert check("The default thread_name_prefix of ThreadPoolExecutor is an empty string [1].", q, [POOL]).ok
    # a cited sentence about the default that states the value outweighs the signature's None
    said = "By default, max_workers is min(32, os.cpu_count() + 4) [1][2]."
    assert check(said, q, [POOL, CHANGED]).ok
    assert not check(said, q, [POOL]).ok


def test_a_default_is_checked_against_the_signature_of_the_callable_the_sentence_names() -> None:
    # a question about two callables: "fill() is 80" passed beside pprint's "width (default 80)", and
    # "fill() is 70" (right) failed against PrettyPrinter's signature, which only the question named
    q = "What are the default width of pprint.PrettyPrinter and the default width of textwrap.fill()?"
    pprint = (
        "- class pprint.PrettyPrinter(indent=1, width=80, depth=None, stream=None, *, compact=False):\n"
        "By default, there is no constraint on the depth. width (default 80) specifies the desired maximum "
        "number of characters per line in the output."
    )
    fill = "- textwrap.fill(text, width=70, *, initial_indent='', expand_tabs=True):\n- Wraps the paragraph."
    assert check("The default width of textwrap.fill() is 80. [1][2]", q, [pprint, fill]).unsupported == [
        "80"
    ]
    assert check("The default width of textwrap.fill() is 70. [1][2]", q, [pprint, fill]).ok
    assert check("The default width of pprint.PrettyPrinter is 80. [1]", q, [pprint, fill]).ok


def test_a_default_must_be_the_signatures_number_exactly() -> None:
    q = "What is the default rel_tol of math.isclose()?"
    assert check("The default rel_tol of math.isclose() is 1e-09 [1].", q, [ISCLOSE]).ok
    assert check("The default rel_tol of math.isclose() is 1e-9 [1].", q, [ISCLOSE]).ok
    # 0.0 is abs_tol's; rounded to one decimal, 1e-09 would also read as 0.0
    assert check("The default rel_tol of math.isclose() is 0.0 [1].", q, [ISCLOSE]).unsupported == ["0.0"]


# The pickle page as the index reads it: each protocol's paragraph, then DEFAULT_PROTOCOL's entry.
PICKLE = (
    "Protocol version 4 was added in Python 3.4. It adds support for very large objects, pickling more "
    "kinds of objects, and some data format optimizations. It is the default protocol starting with "
    "Python 3.8. Refer to PEP 3154 for information about improvements brought by protocol 4.\n"
    "- Protocol version 5 was added in Python 3.8. It adds support for out-of-band data and speedup "
    "for in-band data. Refer to PEP 574 for information about improvements brought by protocol 5.\n"
    "- pickle.DEFAULT_PROTOCOL¶\n"
    "- An integer, the default protocol version used for pickling. May be less than HIGHEST_PROTOCOL. "
    "Currently the default protocol is 4, first introduced in Python 3.4 and incompatible with previous "
    "versions.\nChanged in version 3.0: The default protocol is 3.\n"
    "Changed in version 3.8: The default protocol is 4."
)


def test_it_is_the_default_states_the_value_of_the_sentence_it_points_back_to() -> None:
    # the pickle page as the web reader condensed it: DEFAULT_PROTOCOL's entry left out, the one
    # sentence about the default says "It", and "5" stands beside "protocol" and "3.8" a line below
    cut = (
        "Data stream format\nThis was the default protocol in Python 3.0–3.7.\n- Protocol version 4 was "
        "added in Python 3.4. It adds support for very large objects, pickling more kinds of objects, and "
        "some data format optimizations. It is the default protocol starting with Python 3.8. Refer to "
        "PEP 3154 for information about improvements brought by protocol 4.\n"
        "- Protocol version 5 was added in Python 3.8."
    )
    q = "Which pickle protocol is the default since Python 3.8?"
    invented = "The default pickle protocol since Python 3.8 is protocol version 5. [1]"
    assert check(invented, q, [cut]).unsupported == ["5"]
    assert check("The default pickle protocol since Python 3.8 is 4. [1]", q, [cut]).ok
    assert check("The default pickle protocol since Python 3.8 is protocol version 4. [1]", q, [cut]).ok


def test_a_default_must_be_one_the_sources_sentences_about_that_default_state() -> None:
    q = "Which pickle protocol is the default since Python 3.8?"
    # "5" stands beside "protocol" and "3.8" ("Protocol version 5 was added in Python 3.8"), so the
    # value check alone passed it; every cited sentence about the default protocol says 4 (or 3)
    invented = "The default pickle protocol since Python 3.8 is protocol 5 [1]."
    assert check(invented, q, [PICKLE]).unsupported == ["5"]
    assert check("The default pickle protocol since Python 3.8 is protocol 4 [1].", q, [PICKLE]).ok
    assert check("Since Python 3.8 the default protocol is 4 [1].", q, [PICKLE]).ok
    # "(defaulting to 28 places)" states it too; "Precision is set to nine" is another context's
    decimal = (
        "Unlike hardware based binary floating point, the decimal module has a user alterable precision "
        "(defaulting to 28 places) which can be as large as needed for a given problem.\n"
        "- class decimal.BasicContext¶\n- This is a standard context defined by the General Decimal "
        "Arithmetic Specification. Precision is set to nine."
    )
    q = "What is the default precision of the decimal context?"
    assert check("The default precision of the decimal context is 9 [1].", q, [decimal]).unsupported == ["9"]
    assert check("The default precision of the decimal context is 28 [1].", q, [decimal]).ok
    # a call passes an argument: it says nothing of the default (functools.cache's entry)
    cache = (
        "@functools.cache(user_function)¶\n- Simple lightweight unbounded function cache. Sometimes called "
        "memoize. Returns the same as lru_cache(maxsize=None), creating a thin wrapper around a dictionary "
        "lookup for the function arguments."
    )
    q = "What is the default maxsize of functools.lru_cache?"
    said = "The default maxsize of functools.lru_cache is None [1]."
    assert check(said, q, [cache]).unsupported == ["None"]
    signature = "@functools.lru_cache(user_function)¶\n@functools.lru_cache(maxsize=128, typed=False)¶"
    assert check("The default maxsize of functools.lru_cache is 128 [1][2].", q, [cache, signature]).ok
    # the page's example merges with the next sentence: "None" far after "default" is not its value
    example = (
        "This allows the lru_cache decorator to be applied directly to a user function, leaving the "
        "maxsize at its default value of 128: @lru_cache def count_vowels(sentence): return "
        "sum(sentence.count(vowel) for vowel in 'AEIOUaeiou') If maxsize is set to None, the LRU feature "
        "is disabled and the cache can grow without bound."
    )
    claim = "The default maxsize of functools.lru_cache is None, which means it has no size limit [1][2]."
    assert check(claim, q, [signature, example]).unsupported == ["None"]
    assert check("The default maxsize of lru_cache is 128 [1].", q, [example]).ok
    # a default the sources never speak of is left to the other checks
    q = "Which pickle protocol added support for out-of-band data?"
    assert check("Protocol 5 added support for out-of-band data [1].", q, [PICKLE]).ok


CODECS = (
    "Standard Encodings¶\n| Codec | Aliases | Languages |\n| --- | --- | --- |\n"
    "| latin_1 | iso-8859-1, iso8859-1, 8859, cp819, latin, latin1, L1 | Western Europe |\n"
    "| iso8859_2 | iso-8859-2, latin2, L2 | Central and Eastern Europe |\n"
    "| cp1252 | windows-1252 | Western Europe |"
)


def test_the_retry_points_at_the_row_that_holds_the_questions_code_with_its_columns_named() -> None:
    from groundglass.answer.retry_hints import rows_naming

    prose = Source("https://docs.test/codecs", "codecs", "Spelling alternatives are also valid aliases.")
    table = Source("https://docs.test/codecs#standard", "codecs", CODECS)
    question = "Which codec in Python's standard encodings has the alias cp819?"
    latin = (
        "Codec: latin_1; Aliases: iso-8859-1, iso8859-1, 8859, cp819, latin, latin1, L1; "
        "Languages: Western Europe"
    )
    assert rows_naming(question, [prose, table]) == [(2, latin)]
    # a word that most rows hold names no row
    assert rows_naming("Which codec has an alias for Europe?", [table]) == []


def test_a_source_with_a_number_beyond_float_range_is_checked_like_any_other() -> None:
    # the decimal module's page shows Decimal("1e9999999999999999999"): reading its rounding step
    # overflowed, and the whole check with it
    source = 'The context caps the precision at prec=28 by default.\n>>> Decimal("1e9999999999999999999")'
    q = "What is the default precision of a decimal context?"
    assert check("The default precision is 28 [1].", q, [source]).ok
    assert check("The default precision is 9 [1].", q, [source]).unsupported == ["9"]
    # and one that reads as inf is compared as a value too (the C API's float parser docs: "1e500")
    source = 'PyOS_string_to_double("1e500", NULL, NULL) returns HUGE_VAL; the default precision is 28.'
    assert check("The default precision is 28 [1].", q, [source]).ok
    assert check("The default precision is 2.5 [1].", q, [source]).unsupported == ["2.5"]


def test_the_default_value_of_a_named_setting_must_be_stated_as_its_default() -> None:
    # PostgreSQL's ALTER STATISTICS page gives a range ending at 10000 in a sentence that also says
    # "default" (of another thing); "the default value of X is" named no subject, so no default check ran
    alter = (
        "The target can be set in the range 0 to 10000; alternatively, set it to -1 to revert to using the "
        "maximum of the statistics target of the referenced columns, if set, or the system default "
        "statistics target (default_statistics_target)."
    )
    question = "What is the default value of default_statistics_target?"
    wrong = check("The default value of default_statistics_target is 10000. [1]", question, [alter])
    assert wrong.unsupported == ["10000"]
    entry = (
        "- default_statistics_target (integer):\n- Sets the default statistics target. The default is 100."
    )
    assert check("The default value of default_statistics_target is 100. [1]", question, [entry]).ok
    count = "timeit.timeit(stmt='pass', setup='pass', number=1000000, globals=None)"
    said = "The default number of times timeit.timeit() executes the statement is 1000000."
    assert check(said, "How many times does timeit.timeit() run by default?", [count]).ok


def test_a_default_said_before_the_word_default_is_stated() -> None:
    # PostgreSQL's transaction-iso.html: "Read Committed is the default isolation level in PostgreSQL."
    # Only three words before "default" were read, and "Read" failed the check (web t03, two drafts)
    iso = "Read Committed is the default isolation level in PostgreSQL. A query sees only committed data."
    question = "What is the default isolation level, and what is the default value of work_mem?"
    assert check("The default isolation level is Read Committed. [1]", question, [iso]).ok
    # a value before a comma or semicolon belongs to another clause
    tuned = "Setting it to 16 is recommended; the default is 4."
    asked = "What is the default value of x_level?"
    assert "16" in check("The default value of x_level is 16. [1]", asked, [tuned]).unsupported


def test_a_definition_entry_states_its_own_terms_default() -> None:
    # PostgreSQL's index s12: autovacuum_work_mem's entry says "It defaults to -1, indicating that the
    # value of maintenance_work_mem should be used instead"; "-1" passed as maintenance_work_mem's default
    autovacuum = (
        "- autovacuum_work_mem (integer):\n- Specifies the maximum amount of memory to be used by each "
        "autovacuum worker process. If this value is specified without units, it is taken as kilobytes. "
        "It defaults to -1, indicating that the value of maintenance_work_mem should be used instead."
    )
    question = "What is the default value of maintenance_work_mem?"
    wrong = "The default value of maintenance_work_mem is -1. [1]"
    assert check(wrong, question, [autovacuum]).unsupported == ["1"]  # the claim reads "-1" as 1
    # the same sentence does state autovacuum_work_mem's default
    asked = "What is the default value of autovacuum_work_mem?"
    assert check("The default value of autovacuum_work_mem is -1. [1]", asked, [autovacuum]).ok
    # and its own entry's "It defaults to 64 megabytes" is a statement of maintenance_work_mem's default,
    # which the other entry's -1 does not hold beside it
    own = (
        "- maintenance_work_mem (integer):\n- Specifies the maximum amount of memory to be used by "
        "maintenance operations. It defaults to 64 megabytes (64MB)."
    )
    assert check("The default value of maintenance_work_mem is 64MB. [1][2]", question, [own, autovacuum]).ok
    assert check(wrong.replace("[1]", "[1][2]"), question, [own, autovacuum]).unsupported == [
        "1"
    ]  # the claim reads "-1" as 1
    # "it" after another clause is not the entry's term: "If width is not given, it defaults to 70"
    wrap = "- textwrap.wrap(text, **kwargs):\n- If width is not given, it defaults to 70."
    assert check(
        "The default width of textwrap.wrap() is 70. [1]", "textwrap.wrap's default width?", [wrap]
    ).ok


def test_a_default_needs_a_source_that_states_it_as_the_default() -> None:
    # the default model's t04, both modes: ExtendedContext's "Precision is set to nine." passed for the
    # default precision; a signature or a sentence that says "default" beside the value is a source
    question = "What is the default precision of the decimal context?"
    extended = "class decimal.ExtendedContext\nThis is a standard context. Precision is set to nine."
    wrong = "The default precision of the decimal context is 9."
    tolerance = (
        "The default tolerance is 1e-09, which assures that the values are the same within about 9 digits."
    )
    assert check(wrong, question, [extended, tolerance]).unsupported == ["9"]  # 9 is not the default there
    said = "The decimal module has a user alterable precision (defaulting to 28 places)."
    assert check("The default precision of the decimal context is 28.", question, [extended, said]).ok
    both = "The default precision of the decimal context is 9, and the default rel_tol of isclose() is 1e-09."
    isclose = "isclose(a, b, *, rel_tol=1e-09, abs_tol=0.0)"
    asked = "What is the default precision of the decimal context, and the default rel_tol of isclose()?"
    assert check(both, asked, [isclose, tolerance]).unsupported == ["9"]  # each value on its own
    pool = "Changed in version 3.8: Default value of max_workers is changed to min(32, os.cpu_count() + 4)."
    assert check("The default value of max_workers is min(32, os.cpu_count() + 4).", "", [pool]).ok
    smtp = (
        "smtplib\nSMTP.connect(host='localhost', port=0)\nThe defaults are to connect to the SMTP port (25)."
    )
    asked_smtp = "Which port does smtplib's SMTP.connect use by default?"
    assert check(
        "The default port used by `smtplib.SMTP.connect` is 25.", asked_smtp, [smtp]
    ).ok  # the subject
    assert (
        "587"
        in check("The default port used by `smtplib.SMTP.connect` is 587.", asked_smtp, [smtp]).unsupported
    )
    # "It is the default protocol": "it" is the sentence before, whatever word names the subject
    pickle = (
        "- Protocol version 4 was added in Python 3.4. It adds support for very large objects. It is the "
        "default protocol starting with Python 3.8.\n- Protocol version 5 was added in Python 3.8."
    )
    asked_pickle = "Which pickle protocol version is the default starting with Python 3.8?"
    said = "The default pickle protocol version starting with Python 3.8 is protocol version {}."
    assert check(said.format(4), asked_pickle, [pickle]).ok
    assert check(said.format(5), asked_pickle, [pickle]).unsupported == ["5"]
    signature = "class decimal.Context(prec=28, rounding=None)"
    assert check("The default prec of decimal.Context is 28.", "", [signature]).ok


def test_a_parameter_named_alone_is_not_taken_for_a_callable() -> None:
    pool = (
        "class concurrent.futures.ThreadPoolExecutor(max_workers=None, thread_name_prefix='', "
        "initializer=None, initargs=())\n"
        "If max_workers is None or not given, it will default to the number of processors on the machine."
    )
    q = "What is the default max_workers of ThreadPoolExecutor?"
    assert check("The default max_workers is None. [1]", q, [pool]).ok


def test_an_answer_sentence_that_says_it_defaults_speaks_of_what_the_question_asks() -> None:
    # PostgreSQL index s12 after the fix above: "The default value of maintenance_work_mem is 64 megabytes
    # (64MB). ... It defaults to -1, indicating that the value of maintenance_work_mem should be used
    # instead. [1][2]" -- the pronoun's sentence passed, as it named no subject
    autovacuum = (
        "- autovacuum_work_mem (integer):\n- Specifies the maximum amount of memory to be used by each "
        "autovacuum worker process. It defaults to -1, indicating that the value of maintenance_work_mem "
        "should be used instead."
    )
    own = "- maintenance_work_mem (integer):\n- Specifies the amount of memory. It defaults to 64 megabytes."
    question = "What is the default value of maintenance_work_mem?"
    said = (
        "It defaults to -1, indicating that the value of maintenance_work_mem should be used instead. [1][2]"
    )
    assert check(said, question, [own, autovacuum]).unsupported == ["1"]
    assert check("It defaults to 64 megabytes. [1]", question, [own, autovacuum]).ok
    # a question about two settings leaves "it" unresolved: the answer's own context says which
    two = "What are the default values of work_mem and maintenance_work_mem?"
    assert check("It defaults to 64 megabytes. [1]", two, [own, autovacuum]).ok


def test_a_limit_said_in_words_must_be_said_of_what_it_limits() -> None:
    # PostgreSQL web s04: "The maximum number of columns in a PostgreSQL table is unlimited. [1][2][3][4]"
    # from the information schema's "arrays always have unlimited maximum cardinality"; "unlimited" was
    # no value at all, and the sentence passed
    schema = (
        "| Column | Type | Description |\n| --- | --- | --- |\n| maximum_cardinality | cardinal_number | "
        "Always null, because arrays always have unlimited maximum cardinality in PostgreSQL |"
    )
    question = "What is the maximum number of columns in a PostgreSQL table?"
    said = "The maximum number of columns in a PostgreSQL table is unlimited. [1]"
    assert check(said, question, [schema]).unsupported == ["unlimited"]
    limits = (
        "| Item | Upper Limit | Comment |\n| --- | --- | --- |\n| database size | unlimited | |\n"
        "| relations per database | 1,431,650,303 | |"
    )
    assert check(
        "The maximum size of a database is unlimited. [1]", "How big can a database be?", [limits]
    ).ok
    relations = "The maximum number of relations per database is unlimited. [1]"
    assert check(relations, "How many relations can a database hold?", [limits]).unsupported == ["unlimited"]
    # without a "number of" to tie it to, the word must only be in a cited source
    ints = ["Integers have unlimited precision."]
    assert check("Python integers have unlimited precision. [1]", "How precise are Python ints?", ints).ok
    assert not check(
        "Python floats have unlimited precision. [1]", "How precise are floats?", ["Floats are doubles."]
    ).ok


def test_a_lower_case_word_stated_as_the_default_is_checked() -> None:
    # PostgreSQL index t03: "The default isolation level is set to serializable. [3]" passed against
    # default_transaction_isolation's entry, whose default is "read committed": a lower-case word is no
    # value of its own kind, so the sentence had nothing to check
    entry = (
        "- default_transaction_isolation (enum):\n- Each SQL transaction has an isolation level, which can "
        'be either "read uncommitted", "read committed", "repeatable read", or "serializable". This '
        "parameter controls the default isolation level of each new transaction. The default is "
        '"read committed".'
    )
    question = "What is the default isolation level, and what is the default value of work_mem?"
    wrong = check("The default isolation level is set to serializable. [1]", question, [entry])
    assert wrong.unsupported == ["serializable"]
    assert check("The default isolation level is read committed. [1]", question, [entry]).ok
    # what follows "the default is" is not always its value
    said = "The default is chosen by the platform. [1]"
    assert check(said, "What is the default encoding?", ["The default is chosen by the platform."]).ok


def test_a_figure_said_to_count_something_must_be_from_a_sentence_about_that() -> None:
    # PostgreSQL web t01: "The maximum number of columns in a table is 25% of the memory in your system. [1]"
    # passed on shared_buffers' entry: a figure with a unit may stand anywhere in the sources, and the
    # words after it were copied from the sentence that holds it
    entry = (
        "- shared_buffers (integer):\n- Sets the amount of memory the database server uses for shared memory "
        "buffers. The default is typically 128 megabytes (128MB). If you have a dedicated database server "
        "with 1GB or more of RAM, a reasonable starting value for shared_buffers is 25% of the memory in "
        "your system."
    )
    question = (
        "What is the default value of shared_buffers, and what is the maximum number of columns in a table?"
    )
    wrong = "The maximum number of columns in a table is 25% of the memory in your system. [1]"
    assert check(wrong, question, [entry]).unsupported == ["25%"]
    limits = "| Item | Upper Limit | Comment |\n| --- | --- | --- |\n| columns per table | 1,600 | |"
    assert check("The maximum number of columns in a table is 1,600. [1]", question, [entry, limits]).ok
    # what it counts may be named by the parameter that holds it
    timeit = "timeit.timeit(stmt='pass', setup='pass', timer=<default timer>, number=1000000, globals=None)"
    said = "The default number of executions of timeit.timeit() is 1000000. [1]"
    assert check(said, "How many executions does timeit.timeit() run by default?", [timeit]).ok


def test_gate_fails_a_constants_figure_that_a_source_it_did_not_cite_pairs_otherwise() -> None:
    # SQLite's prompt for "the numeric value of SQLITE_CONSTRAINT, and how many tables can a join
    # contain": the model said 16 and cited the limits page (which has a 16), not the result codes page
    q = (
        "What is the numeric value of the SQLITE_CONSTRAINT result code, "
        "and how many tables can a single join contain at most?"
    )
    limits = Source(
        "https://www.sqlite.org/limits.html",
        "Implementation Limits For SQLite",
        "Maximum Number Of Tables In A Join\nSQLite does not support joins containing more than 64 tables. "
        "The query planner once used 16 bits for its masks.",
    )
    codes = Source(
        "https://www.sqlite.org/rescode.html",
        "Result and Error Codes",
        "(19) SQLITE_CONSTRAINT\nThe SQLITE_CONSTRAINT error code means that an SQL constraint violation "
        "occurred.",
    )
    said = "The numeric value of the SQLITE_CONSTRAINT result code is 16. [1]"
    shown, gate = gate_run(q, [limits, codes], said)
    assert shown == "" and gate.failed is not None
    assert gate.failed.values == ["16"] and gate.failed.hints == [(2, "(19) SQLITE_CONSTRAINT")]
    right = "The numeric value of the SQLITE_CONSTRAINT result code is 19. [2]"
    assert_passes(q, [limits, codes], right)
    # another constant's figure beside it is that constant's, not a second value of the asked one
    both = "SQLITE_CONSTRAINT is 19, and SQLITE_CONSTRAINT_UNIQUE is 2067. [2]"
    codes.text += "\n(2067) SQLITE_CONSTRAINT_UNIQUE"
    shown, gate = gate_run(q, [limits, codes], both)
    assert gate.failed is None


def test_a_default_a_sources_default_line_states_otherwise_is_sent_back_with_the_line() -> None:
    # Apache httpd's manual: StartServers' entry names MaxSpareServers and says "prefork defaults to 5";
    # the prefork page's table row says MaxSpareServers' own default, and the model did not cite it
    question = "What is the default value of MaxSpareServers for the prefork MPM?"
    sources = [
        Source(
            "https://docs.test/mod/mpm_common.html",
            "mpm_common",
            "StartServers Directive\nAs the number of processes is dynamically controlled depending on the "
            "load, (see MinSpareServers, MaxSpareServers) there is usually little reason to adjust this "
            "parameter.\nThe default value differs from MPM to MPM. worker and event default to "
            "StartServers 3; prefork defaults to 5.",
        ),
        Source(
            "https://docs.test/mod/prefork.html",
            "prefork",
            "MaxSpareServers Directive\n| Description: | Maximum number of idle child server processes |\n"
            "| Syntax: | MaxSpareServers number |\n| Default: | MaxSpareServers 10 |\n"
            "| Context: | server config |",
        ),
    ]
    text = "The default value of MaxSpareServers for the prefork MPM is 5. [1]"
    shown, gate = gate_run(question, sources, text)
    assert shown == "" and gate.failed is not None
    assert gate.failed.reason == "stated_otherwise" and gate.failed.values == ["10"]
    assert gate.failed.hints == [(2, "| Default: | MaxSpareServers 10 |")]
    right = "The default value of MaxSpareServers for the prefork MPM is 10. [2]"
    assert gate_run(question, sources, right)[0] == right
    # an on/off default, and a clause that names the directive without stating its default
    expires = [Source("https://docs.test/mod_expires", "mod_expires", "| Default: | ExpiresActive Off |")]
    asked = "Is ExpiresActive on or off by default?"
    assert (
        gate_run(asked, expires, "ExpiresActive is on by default. [1]")[1].failed.reason == "stated_otherwise"
    )
    assert gate_run(asked, expires, "ExpiresActive is off by default. [1]")[1].failed is None
    plain = "The ExpiresActive directive enables the generation of Expires headers. [1]"
    assert labelled.contradicted(plain, asked, [expires[0].text]) is None


def test_a_restatement_whose_verb_takes_another_ending_is_still_a_restatement() -> None:
    # the default model's whole answer on Node.js 20's errors page: the marker stands where the code should
    question = "Which error code does Node.js raise when crypto.timingSafeEqual() is called with two buffers?"
    said = (
        "The error code that Node.js raises when crypto.timingSafeEqual() is called with two buffers is [1]."
    )
    assert grounding.restates_question(said, question)


def test_an_alternative_default_after_or_is_stated_as_a_default_too() -> None:
    # Node.js 20's stream page; the second value is the default for object mode
    text = (
        "stream.getDefaultHighWaterMark(objectMode)\n"
        "Returns the default highWaterMark used by streams. Defaults to 65536 (64 KiB), or 16 for objectMode."
    )
    question = "What is the default highWaterMark of a stream created in objectMode?"
    assert grounding.check("The default highWaterMark in objectMode is 16. [1]", question, [text]).ok
    assert not grounding.check("The default highWaterMark in objectMode is 32. [1]", question, [text]).ok


def test_a_sentence_that_says_an_earlier_one_again_in_fewer_words_is_left_out() -> None:
    # Python's manual (s22, t11): the third sentence added nothing, and cited a page that was not the answer's
    question = "What is the default int/str conversion digit limit in Python 3.11?"
    sources = [
        Source(
            "https://docs.test/sys",
            "sys",
            "In Python 3.11 the default int/str conversion digit limit is 4300 digits in string form.",
        ),
        Source("https://docs.test/types", "types", "The limit is 4300 digits in string form by default."),
    ]
    first = "The default int/str conversion digit limit in Python 3.11 is 4300 digits in string form. [1]"
    shown, gate = gate_run(question, sources, f"{first} The default limit is 4300 digits in string form. [2]")
    assert gate.failed is None
    assert shown.strip() == first
    assert [r.reason for r in gate.dropped] == ["repetition"]
    # a sentence about another name in the same words is not a repeat
    both = "Is sqlite3.OptimizedUnicode deprecated, and is sqlite3.enable_shared_cache deprecated?"
    said = "sqlite3.OptimizedUnicode is deprecated. [1] sqlite3.enable_shared_cache is deprecated. [1]"
    deprecations = [
        Source(
            "https://docs.test/sqlite3",
            "sqlite3",
            "OptimizedUnicode is deprecated. enable_shared_cache is deprecated.",
        )
    ]
    shown, gate = gate_run(both, deprecations, said)
    assert gate.repeats == 0


def test_sentences_that_leaned_on_the_markers_of_a_repeat_left_out_get_their_own() -> None:
    # t11: the markers came only after the repeat, and the two sentences before it were shown uncited
    question = "What is the default int/str conversion digit limit in Python 3.11?"
    sources = [
        Source(
            "https://docs.test/sys",
            "sys",
            "In Python 3.11 the default int/str conversion digit limit is 4300 digits in string form. "
            "It can be configured by environment variable.",
        )
    ]
    first = "The default int/str conversion digit limit in Python 3.11 is 4300 digits in string form."
    again = "The default limit is 4300 digits in string form. [1]"
    text = f"{first} It can be configured by environment variable. {again}"
    shown, gate = gate_run(question, sources, text)
    assert gate.failed is None
    assert [r.reason for r in gate.dropped] == ["repetition"]
    assert shown.strip() == f"{first} It can be configured by environment variable. [1]"


def test_a_default_count_is_stated_by_a_source_not_counted_from_a_list() -> None:
    # qshape's manual, cut before its -m option: the 1.5B model answered "The answer is 2. [1][2]" and a
    # "how many" question let any small figure pass as a count, though no cited source printed a 2
    qshape = (
        "-p Generate aggregate statistics for parent domains. Top level domains are not shown, nor are "
        "domains with fewer than min_subdomains subdomains. The names of parent domains are shown with a "
        "leading dot, (e.g. .example.com)."
    )
    q = (
        "When Postfix's qshape command shows totals for parent domains (-p), how many subdomains must a "
        "parent domain have by default to get a line of its own?"
    )
    assert check("The answer is 2. [1]", q, [qshape]).unsupported == ["2"]
    entry = (
        "-m min_subdomains When used with the -p option, sets the minimum subdomain count needed to show a "
        "separate line for a parent domain. The default is 5."
    )
    assert check("A parent domain needs 5 subdomains by default. [1]", q, [qshape, entry]).ok
    # a count of what a source lists still needs no source to print it
    members = "The band's members were John Lennon, Paul McCartney, George Harrison and Ringo Starr."
    assert check("The band had 4 members. [1]", "How many members did the band have?", [members]).ok


def test_a_unit_does_not_make_a_small_figure_rare_where_the_source_prints_it_bare() -> None:
    # postscreen: the model said the PREGREET log line holds "at most 20 bytes" (the README says 100),
    # and the 20 of "postscreen_command_count_limit (20)" on the man page it also cited passed it
    readme = (
        "When an SMTP client sends a command before the postscreen_greet_wait time has elapsed, "
        "postscreen(8) logs this as: PREGREET count after time from [address]:port text... Translation: the "
        "client at [address]:port sent count bytes before its turn to speak. The text is what the client "
        "sent (truncated to 100 bytes, and with non-printable characters replaced with C-style escapes)."
    )
    manual = "postscreen_command_count_limit (20) The limit on the total number of commands per session."
    q = "At most how many bytes of what the client sent does postscreen's PREGREET log line include?"
    said = "The log line includes at most 20 bytes of what the client sent. [1][2]"
    assert check(said, q, [readme, manual]).unsupported == ["20 bytes"]
    assert check("What the client sent is truncated to 100 bytes. [1][2]", q, [readme, manual]).ok
    # a bare figure in a sentence about the claim's subject still counts in the claim's unit
    assert check(
        "The log line includes at most 20 bytes of what the client sent. [1]",
        q,
        ["The log line includes at most 20 of the client's characters."],
    ).ok
