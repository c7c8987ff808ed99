"""Denser sources: the answering sentences with their neighbours, table rows whole with their header."""

from __future__ import annotations

import json
from pathlib import Path

from groundglass.answer import condense, rows
from groundglass.answer.embeddings import count_tokens
from groundglass.answer.types import Source

PADDING = [
    f"The library also offers helper number {n} for unrelated chores around the house." for n in range(12)
]
ANSWER = "If the separator is not found, partition returns the string itself followed by two empty strings."
BEFORE = "The method str.partition splits the string at the first occurrence of the separator."
AFTER = "The related method rpartition searches from the end of the string instead."


def src(text: str, n: int = 1) -> Source:
    return Source(
        url=f"https://docs.test/{n}", title=f"Doc {n}", text=text, score=0.5, doc_id=str(n), chunk_id=f"{n}-0"
    )


def test_keeps_the_answering_sentence_with_its_neighbours_and_the_heading() -> None:
    body = " ".join([*PADDING[:6], BEFORE, ANSWER, AFTER, *PADDING[6:]])
    source = src("Text sequence type — str\n" + body)
    [out] = condense.condense(
        [source], "What does partition return if the separator is not found?", count_tokens, max_tokens=80
    )
    assert out.text.startswith("Text sequence type — str\n")  # the heading line stays
    assert f"{BEFORE} {ANSWER} {AFTER}" in out.text  # the sentence and its neighbours, in order
    assert count_tokens(out.text) <= 80 < count_tokens(source.text)
    assert "helper number 3" not in out.text
    assert (out.url, out.title, out.chunk_id) == (source.url, source.title, source.chunk_id)
    assert source.text.endswith(PADDING[-1])  # the input is not modified


def test_gaps_between_kept_pieces_are_marked_and_order_is_kept() -> None:
    second = "With maxsplit given, at most maxsplit splits are done by str.split."
    body = " ".join([ANSWER, *PADDING, second])
    [out] = condense.condense(
        [src(body)],
        "partition separator not found maxsplit split",
        count_tokens,
        max_tokens=90,
        keep_ratio=0.3,
    )
    assert out.text.index("partition returns") < out.text.index("maxsplit splits")
    assert condense.GAP.strip() in out.text


def test_short_sources_and_sources_without_a_match_stay_whole() -> None:
    short = src("str.partition returns a 3-tuple.")
    unrelated = src(" ".join(PADDING), 2)
    out = condense.condense(
        [short, unrelated], "What does str.partition return?", count_tokens, max_tokens=60
    )
    assert out[0] == short
    assert out[1] == unrelated  # nothing scores: cutting would be a guess


TABLE = "\n".join(
    [
        "Limits",
        "Some limits of the interpreter are listed below, with their defaults.",
        "| Limit | Default | Set with |",
        "| --- | --- | --- |",
        "| recursion depth | 1000 | sys.setrecursionlimit() |",
        "| integer string conversion digits | 4300 | sys.set_int_max_str_digits() |",
        "| switch interval | 0.005 s | sys.setswitchinterval() |",
        "| thread stack size | platform default | threading.stack_size() |",
        "| open files | operating system limit | resource.setrlimit() |",
        *PADDING,
    ]
)


def test_table_rows_stay_whole_and_keep_their_header() -> None:
    [out] = condense.condense(
        [src(TABLE)],
        "What is the default integer string conversion digits limit?",
        count_tokens,
        max_tokens=90,
    )
    lines = out.text.splitlines()
    assert "| integer string conversion digits | 4300 | sys.set_int_max_str_digits() |" in lines
    assert "| Limit | Default | Set with |" in lines and "| --- | --- | --- |" in lines
    assert (
        lines.index("| Limit | Default | Set with |")
        < lines.index("| --- | --- | --- |")
        < lines.index("| integer string conversion digits | 4300 | sys.set_int_max_str_digits() |")
    )
    assert all(line.endswith("|") for line in lines if line.startswith("|"))  # no row cut apart
    assert "helper number" not in out.text


def test_an_embedding_function_adds_meaning_to_the_words() -> None:
    """With no word in common, only the vectors can find the sentence."""
    from groundglass.answer.embeddings import get_embedder

    fact = "The tower was finished in 1889 for the World's Fair."
    body = " ".join([*PADDING[:5], fact, *PADDING[5:]])
    question = "When was construction of the Parisian landmark completed?"
    [plain] = condense.condense([src(body)], question, count_tokens, max_tokens=60)
    assert plain.text == body  # nothing matched by words: left whole
    [dense] = condense.condense(
        [src(body)], question, count_tokens, max_tokens=60, embed=get_embedder().encode
    )
    assert fact in dense.text and count_tokens(dense.text) <= 60


FORMAT_CODES = "\n".join(
    [
        "The following directives can be embedded in strftime format codes; their meaning follows each one.",
        "| Directive | Meaning | Example |",
        "| --- | --- | --- |",
        "| %a | Weekday as locale's abbreviated name. | Sun, Mon, …, Sat |",
        "| %d | Day of the month as a zero-padded decimal number. | 01, 02, …, 31 |",
        "| %m | Month as a zero-padded decimal number. | 01, 02, …, 12 |",
        "| %M | Minute as a zero-padded decimal number. | 00, 01, …, 59 |",
        "| %p | Locale's equivalent of either AM or PM. | AM, PM |",
        "| %f | Microsecond as a decimal number, zero-padded to 6 digits. | 000000, …, 999999 |",
        "| %j | Day of the year as a zero-padded decimal number. | 001, 002, …, 366 |",
        "| %J | Not a directive: an unknown code is passed through. | %J |",
        "| %U | Week number of the year (Sunday first) as a zero-padded decimal number. | 00, …, 53 |",
        *PADDING,
    ]
)


def test_a_verbatim_term_of_the_question_keeps_its_own_table_row() -> None:
    """Word tokenizers drop "%j": without matching it as written, the directive sentence and whichever
    rows fit are kept, and the row the question asks about is lost."""
    question = "What does the %j directive mean in strftime format codes?"
    [out] = condense.condense([src(FORMAT_CODES)], question, count_tokens, max_tokens=70)
    lines = out.text.splitlines()
    assert "| %j | Day of the year as a zero-padded decimal number. | 001, 002, …, 366 |" in lines
    assert "| Directive | Meaning | Example |" in lines  # its header comes with it
    assert not any(line.startswith("| %J |") for line in lines)  # case as written


PICKLE = " ".join(
    [
        "Filler about the history of the module and its many uses in many programs.",
        "More filler that says nothing much about anything at all in this paragraph.",
        "- Protocol version 4 was added in Python 3.4.",
        "It adds support for very large objects, pickling more kinds of objects, and data optimizations.",
        "It is the default protocol starting with Python 3.8.",
        "Refer to PEP 3154 for information about improvements brought by protocol 4.",
        "- Protocol version 5 was added in Python 3.8.",
        "It adds support for out-of-band data and speedup for in-band data.",
        "Refer to PEP 574 for information about improvements brought by protocol 5.",
        "Even more filler at the end of the page to make it long.",
    ]
)


def test_a_sentence_opening_with_a_pronoun_keeps_what_it_points_back_to() -> None:
    question = "Which pickle protocol version is the default starting with Python 3.8?"
    [out] = condense.condense([src(PICKLE)], question, count_tokens, max_tokens=100)
    assert "Protocol version 4 was added in Python 3.4. It adds support for very large objects" in out.text
    assert "It is the default protocol starting with Python 3.8." in out.text
    assert count_tokens(out.text) <= 100 < count_tokens(PICKLE)


# random.html's opening, as the extraction writes it (Python's manual, PSF licence)
RANDOM = (
    "random — Generate pseudo-random numbers\n"
    "This module implements pseudo-random number generators for various distributions. For integers, there "
    "is uniform selection from a range. For sequences, there is uniform selection of a random element, a "
    "function to generate a random permutation of a list in-place, and a function for random sampling "
    "without replacement. Almost all module functions depend on the basic function random(), which generates "
    "a random "
    "float uniformly in the half-open range 0.0 <= X < 1.0. Python uses the Mersenne Twister as the core "
    "generator. It produces 53-bit precision floats and has a period of 2**19937-1. The underlying "
    "implementation in C is both fast and threadsafe. The Mersenne Twister is one of the most extensively "
    "tested random number generators in existence. However, being completely deterministic, it is not "
    "suitable for all purposes, and is completely unsuitable for cryptographic purposes."
)


def test_a_sentence_opening_with_a_pronoun_is_scored_with_what_it_points_back_to() -> None:
    # "It produces ... a period of 2**19937-1." holds one of the question's words; the engine kept the
    # sentence before it, with its other neighbour, and cut the answer
    question = "What is the period of the Mersenne Twister generator used by the random module?"
    [out] = condense.condense_for_prompt([src(RANDOM)], question, count_tokens)
    assert (
        "the core generator. It produces 53-bit precision floats and has a period of 2**19937-1." in out.text
    )
    assert count_tokens(out.text) <= 110 < count_tokens(RANDOM)


# smtplib.html's chunk on SMTP.connect, as the chunker writes it
SMTP_CONNECT = (
    "In normal operation it should not be necessary to call this method explicitly. It is used to implement "
    "other methods and may be useful for testing private extensions. If the connection to the server is lost "
    "while waiting for the reply, SMTPServerDisconnected will be raised.\n\n"
    "SMTP.connect(host='localhost', port=0)¶\n"
    "- Connect to a host on a given port. The defaults are to connect to the local host at the standard SMTP "
    "port (25). If the hostname ends with a colon (':') followed by a number, that suffix will be stripped "
    "off and the number interpreted as the port number to use. This method is automatically invoked by the "
    "constructor if a host is specified during instantiation. Returns a 2-tuple of the response code and "
    "message sent by the server in its connection response."
)


def test_the_line_that_names_the_verbatim_term_does_not_crowd_out_the_sentence_that_answers() -> None:
    from groundglass.answer.embeddings import get_embedder

    question = "Which ports do smtplib's SMTP.connect and python -m http.server use by default?"
    [out] = condense.condense([src(SMTP_CONNECT)], question, count_tokens, embed=get_embedder().encode)
    assert "SMTP.connect(host='localhost', port=0)" in out.text
    assert "the standard SMTP port (25)." in out.text
    assert count_tokens(out.text) <= condense.MAX_TOKENS < count_tokens(SMTP_CONNECT)


ARRAY_TYPE_CODES = "\n".join(  # a chunk of array.html (Python 3.11): the table goes on from the chunk before
    [
        "array — Efficient arrays of numeric values",
        "| 'h' | signed short | int | 2 |  |",
        "| 'H' | unsigned short | int | 2 |  |",
        "| 'i' | signed int | int | 2 |  |",
        "",
        "| Type code | C Type | Python Type | Minimum size in bytes | Notes |",
        "| --- | --- | --- | --- | --- |",
        "| 'I' | unsigned int | int | 2 |  |",
        "| 'l' | signed long | int | 4 |  |",
        "| 'L' | unsigned long | int | 4 |  |",
        "| 'q' | signed long long | int | 8 |  |",
        "| 'Q' | unsigned long long | int | 8 |  |",
        "| 'f' | float | float | 4 |  |",
        "| 'd' | double | float | 8 |  |",
    ]
)


def test_the_row_the_question_names_is_kept_though_it_shares_no_word_with_it() -> None:
    """The header holds the question's words ("minimum size in bytes", "type code"), the row for 'd'
    only its key: measured against the header, the row fell below the bar and the model was left with
    the rows for 'h' and 'i'."""
    question = "What is the minimum size in bytes of the array module's type code 'd'?"
    [out] = condense.condense([src(ARRAY_TYPE_CODES)], question, count_tokens, max_tokens=60)
    lines = out.text.splitlines()
    assert "| 'd' | double | float | 8 |  |" in lines
    assert "| Type code | C Type | Python Type | Minimum size in bytes | Notes |" in lines
    assert count_tokens(out.text) <= 60 < count_tokens(ARRAY_TYPE_CODES)
    assert rows.names_row(question, "| 'd' | double | float | 8 |  |")
    assert not rows.names_row(question, "| 'D' | double | float | 8 |  |")  # case as written
    assert not rows.names_row(question, "| 'f' | float | float | 4 |  |")


MAINTENANCE = (
    "20.4. Resource Consumption\n- maintenance_work_mem (integer):\n- Specifies the maximum amount of "
    "memory to be used by maintenance operations, such as VACUUM, CREATE INDEX, and ALTER TABLE ADD "
    "FOREIGN KEY. If this "
    "value is specified without units, it is taken as kilobytes. It defaults to 64 megabytes (64MB). Since "
    "only one of these operations can be executed at a time by a database session, and an installation "
    "normally doesn't have many of them running concurrently, it's safe to set this value significantly "
    "larger than work_mem. Larger settings might improve performance for vacuuming and for restoring "
    "database dumps. Note that when autovacuum runs, up to autovacuum_max_workers times this memory may be "
    "allocated, so be careful not to set the default value too high."
)


def test_the_sentence_that_states_the_default_asked_about_is_kept() -> None:
    # PostgreSQL's manual: "... set the default value too high" holds more of the question's words, and
    # with its neighbours it filled the source's room; the model, without the default, wrote "128MB"
    from groundglass.answer.embeddings import get_embedder

    question = "What is the default value of maintenance_work_mem?"
    [out] = condense.condense([src(MAINTENANCE)], question, count_tokens, embed=get_embedder().encode)
    assert "It defaults to 64 megabytes (64MB)." in out.text
    assert out.text.startswith("20.4. Resource Consumption\n- maintenance_work_mem (integer):")
    assert count_tokens(out.text) <= condense.MAX_TOKENS < count_tokens(MAINTENANCE)
    # a question that asks no default is condensed on its words alone
    [other] = condense.condense(
        [src(MAINTENANCE)], "Why be careful with maintenance_work_mem when autovacuum runs?", count_tokens
    )
    assert "be careful not to set the default value too high" in other.text


def test_a_default_stated_of_what_the_sentence_before_names_is_kept() -> None:
    # SQLite's limits page says the LIKE pattern limit's default only as "The default value of this
    # limit is 50000.", which shares one word with the question; the long sentences before it filled
    # the source's room
    limits = (
        "- Maximum Length Of A LIKE Or GLOB Pattern The pattern matching algorithm used in the default LIKE "
        "and GLOB implementation of SQLite can exhibit O(N²) performance (where N is the number of "
        "characters in the pattern) for certain pathological cases. To avoid denial-of-service attacks "
        "from miscreants who are able to specify their own LIKE or GLOB patterns, the length of the LIKE "
        "or GLOB pattern is limited to SQLITE_MAX_LIKE_PATTERN_LENGTH bytes. The default value of this "
        "limit is 50000. A modern workstation can evaluate even a pathological LIKE or GLOB pattern of "
        "50000 bytes relatively quickly. The denial of service problem only comes into play when the "
        "pattern length gets into millions of bytes."
    )
    question = "What is the default maximum length of a LIKE or GLOB pattern?"
    [out] = condense.condense([src(limits)], question, count_tokens)
    assert "The default value of this limit is 50000." in out.text
    assert count_tokens(out.text) <= condense.MAX_TOKENS < count_tokens(limits)


def test_a_sentence_that_answers_one_part_of_the_question_is_kept() -> None:
    from groundglass.answer.embeddings import get_embedder

    data = json.loads(
        (Path(__file__).parents[1] / "data" / "docs_chunks" / "sqlite_upsert_returning.json").read_text()
    )
    sources = [Source(**s) for s in data["sources"]]  # SQLite's pages, as the relevance gate keeps them
    history = sources[0]
    assert history.text.startswith("4. History\nUPSERT syntax was added to SQLite with version 3.24.0")
    out = condense.condense(
        sources, data["question"], count_tokens, embed=get_embedder().encode, parts=data["parts"]
    )
    # "in which version was UPSERT added": the history's first sentence, not only its later ones
    # that hold more of the question's words ("ON CONFLICT", "DO UPDATE", "version 3.35.0")
    assert "UPSERT syntax was added to SQLite with version 3.24.0" in out[0].text


def test_a_default_asked_in_one_part_does_not_crowd_out_the_other_parts_answer() -> None:
    # Apache httpd's pages (Apache License 2.0), as the relevance gate keeps them: in ab's option list,
    # "Default is no KeepAlive" states a default, which the other part asks for (of LimitRequestFields,
    # which the page never names); with that part's bonus it outscored every other sentence of the
    # chunk, and -n's line, which answers the first part, was cut
    from groundglass.answer.embeddings import get_embedder

    data = json.loads(
        (Path(__file__).parents[1] / "data" / "docs_chunks" / "apache_ab_limitrequestfields.json").read_text()
    )
    sources = [Source(**s) for s in data["sources"]]
    out = condense.condense(
        sources, data["question"], count_tokens, embed=get_embedder().encode, parts=data["parts"]
    )
    options = next(o for o in out if o.text.startswith("Options\n- -k:"))
    assert "- -n requests:\n- Number of requests to perform for the benchmarking session." in options.text
    # the part that asks the default still gets it from the directive's own table
    assert "| Default: | LimitRequestFields 100 |" in out[0].text


DECIMAL = (
    "Decimal numbers can be represented exactly. The exactness carries over into arithmetic. "
    "Unlike hardware based binary floating point, the decimal module has a user alterable precision "
    "(defaulting to 28 places) which can be as large as needed for a given problem: >>> from decimal "
    "import * >>> getcontext().prec = 6 >>> Decimal(1) / Decimal(7) Decimal('0.142857') >>> "
    "getcontext().prec = 28 >>> Decimal(1) / Decimal(7) Decimal('0.1428571428571428571428571429') "
    "Both binary and decimal floating point are implemented in terms of published standards. "
    + " ".join(PADDING[:4])
)


def decimal_condensed(question: str) -> str:
    [out] = condense.condense(
        [src("decimal — Decimal fixed point\n" + DECIMAL)], question, count_tokens, max_tokens=80
    )
    return out.text


def test_an_interactive_example_run_into_a_sentence_is_no_neighbour_of_it() -> None:
    text = decimal_condensed("What is the default precision of the decimal module, in places?")
    # the sentence alone fits now, with the prose before it; the examples glued to it stay out
    assert "(defaulting to 28 places) which can be as large as needed for a given problem:" in text
    assert "The exactness carries over into arithmetic." in text
    assert ">>>" not in text and count_tokens(text) <= 80


def test_an_interactive_example_that_answers_is_kept() -> None:
    text = decimal_condensed("What does Decimal(1) / Decimal(7) give at getcontext().prec = 6?")
    assert ">>> Decimal(1) / Decimal(7) Decimal('0.142857')" in text


# sys.html's chunk of the sys.float_info table, as the chunker writes it: two row groups of one table
FLOAT_INFO = (
    "- sys.float_info:\n| attribute | float.h macro | explanation |\n| --- | --- | --- |\n"
    "| epsilon | DBL_EPSILON | difference between 1.0 and the least value greater than 1.0 that is "
    "representable as a float See also math.ulp(). |\n"
    "| dig | DBL_DIG | maximum number of decimal digits that can be faithfully represented in a float; "
    "see below |\n"
    "\n- sys.float_info:\n| attribute | float.h macro | explanation |\n| --- | --- | --- |\n"
    "| mant_dig | DBL_MANT_DIG | float precision: the number of base- radix digits in the significand of "
    "a float |\n"
    "| max | DBL_MAX | maximum representable positive finite float |"
)


def test_a_table_header_is_kept_with_its_rows_never_for_its_own_words() -> None:
    # the header holds "attribute" and "macro" of the question, and was kept twice, once with no row
    question = "Which C macro does the dig attribute of sys.float_info correspond to?"
    [out] = condense.condense_for_prompt([src(FLOAT_INFO)], question, count_tokens)
    assert "| dig | DBL_DIG |" in out.text
    assert out.text.count("| attribute | float.h macro | explanation |") == 1
    assert count_tokens(out.text) < count_tokens(FLOAT_INFO)


# Postfix's BDAT_README as extracted: the setting is a line of a main.cf listing after three lead-ins
BDAT = (
    "Postfix BDAT (CHUNKING) support\n"
    "Postfix SMTP server supports RFC 3030 CHUNKING (the BDAT command) without BINARYMIME, in both "
    "smtpd(8) and postscreen(8). It is enabled by default.\n"
    "To disable BDAT support globally:\n"
    "/etc/postfix/main.cf:\n"
    "    # The logging alternative:\n"
    "    smtpd_discard_ehlo_keywords = chunking\n"
    "    # The non-logging alternative:\n"
    "    smtpd_discard_ehlo_keywords = chunking, silent-discard\n"
    "Specify '-o smtpd_discard_ehlo_keywords=' in master.cf for the submission and smtps services, if you "
    "have clients that benefit from CHUNKING support.\n"
    'The main differences are that the Postfix SMTP server announces "CHUNKING" support in the EHLO '
    "response, and that instead of sending one DATA request, the remote SMTP client may send one or more "
    "BDAT requests.\n" + " ".join(PADDING)
)


def test_a_lead_in_kept_keeps_the_line_it_introduces() -> None:
    # "/etc/postfix/main.cf:" names a word of the question and was kept with its neighbours, the lead-ins
    # on either side, and the setting they introduce was cut: the model wrote "The main.cf setting that
    # stops ... is [1]."
    question = "Which main.cf setting stops the Postfix SMTP server from offering CHUNKING to all clients?"
    [out] = condense.condense_for_prompt([src(BDAT)], question, count_tokens)
    lines = out.text.splitlines()
    assert "/etc/postfix/main.cf:" in lines
    at = lines.index("# The logging alternative:")
    assert lines[at + 1] == "smtpd_discard_ehlo_keywords = chunking"
    assert count_tokens(out.text) <= condense.MAX_TOKENS < count_tokens(BDAT)


def test_a_lead_in_keeps_no_table_row_or_example_after_it() -> None:
    table = "| a | b |\n| --- | --- |\n| 1 | 2 |\n"
    text = "Intro line here.\nThe values are listed below:\n" + table + " ".join(PADDING)
    units = condense._units(text)
    lead = next(i for i, u in enumerate(units) if u.text == "The values are listed below:")
    assert condense._introduced(units, {lead}) == {lead}
