"""What of a question a text must hold as written: verbatim terms and the table rows it names."""

from __future__ import annotations

from groundglass.answer.querytext import (
    Verbatim,
    literal_hits,
    literal_terms,
    named_rows,
    row_keys,
    shared_run,
)

TABLE = """| attribute | float.h macro | explanation |
| --- | --- | --- |
| epsilon | DBL_EPSILON | difference between 1.0 and the next float |
| dig | DBL_DIG | maximum number of decimal digits |
| mant_dig | DBL_MANT_DIG | float precision |"""


def test_the_row_whose_first_cell_the_question_names_is_found_and_its_neighbours_are_not() -> None:
    keys = row_keys("Which C macro does the dig attribute of sys.float_info correspond to?")
    assert named_rows(TABLE, keys) == {"dig"}  # not mant_dig, which only shares "dig" with it
    assert named_rows(TABLE, row_keys("What is DBL_MANT_DIG's attribute, mant_dig?")) == {"mant_dig"}


def test_a_format_code_names_the_row_its_table_keys_without_the_percent_sign() -> None:
    # SQLite's printf page: the row of %q is keyed "q, Q"; the %w row only mentions %q
    table = (
        "| Substitution Type | Meaning |\n| --- | --- |\n"
        "| q, Q | The string is printed with all single quote (') characters doubled. |\n"
        "| w | This substitution works like %q except that it doubles all double-quote characters. |"
    )
    question = "What does the %q substitution of sqlite3_mprintf() do with single quotes?"
    assert named_rows(table, row_keys(question)) == {"q, q"}
    assert named_rows(table, row_keys("What does the sqlite3_mprintf() do with quotes?")) == set()


def test_header_cells_and_prose_are_not_row_keys() -> None:
    # "attribute" heads the first column: the question uses the word, but no row is keyed by it
    assert named_rows(TABLE, row_keys("Which attribute holds the float precision?")) == set()
    assert named_rows("The dig attribute is explained below.", row_keys("the dig attribute")) == set()


def test_marked_up_and_multi_word_keys_match_and_rarer_matches_weigh_more() -> None:
    table = "| Name | Value |\n| --- | --- |\n| `max_exp` | 1024 |\n| Windows XP | yes |\n"
    assert named_rows(table, row_keys("What is max_exp?")) == {"max_exp"}
    assert named_rows(table, row_keys("Is Windows XP supported?")) == {"windows xp"}
    verbatim = Verbatim.of("Which C macro does the dig attribute of sys.float_info correspond to?")
    texts = ["sys.float_info holds ...", "see sys.float_info", "more on sys.float_info", TABLE]
    weights = verbatim.weighted(texts)
    assert set(weights) == {0, 1, 2, 3}
    assert weights[3] > weights[0] == weights[1] == weights[2]


def test_codes_of_letters_then_digits_are_verbatim_terms_and_short_or_plain_words_are_not() -> None:
    assert literal_terms("Which codec has the alias cp819?") == ["cp819"]
    assert literal_terms("Is sha256 or md5 used by hashlib.new()?") == ["sha256", "md5", "hashlib.new"]
    assert literal_terms("Does the -X option take IPv6 on Win32?") == ["-X", "IPv6", "Win32"]
    assert literal_terms("What is h2 in Python 3.11, and %j?") == ["%j"]  # too short; a version; a code


def test_camel_case_names_are_verbatim_terms_and_a_products_name_is_not() -> None:
    # Apache httpd's directives and Kubernetes' fields are read as written: a chunk of the table of
    # MaxKeepAliveRequests shares every word of "keep alive timeout"
    assert literal_terms("What is the default value of KeepAliveTimeout in Apache httpd?") == [
        "KeepAliveTimeout"
    ]
    assert literal_terms("What does imagePullPolicy default to?") == ["imagePullPolicy"]
    assert literal_terms("How long is LDAPCacheTTL by default?") == ["LDAPCacheTTL"]
    assert literal_terms("Which port does PostgreSQL or MySQL listen on?") == []
    assert shared_run(
        "Which option sets the number of multiple requests?", "-c: Number of multiple requests."
    ) == [
        "number",
        "of",
        "multiple",
        "requests",
    ]


def test_a_signature_counts_where_it_opens_its_line_with_a_parameter_the_question_names() -> None:
    lru = Verbatim.of("What is the default maxsize of functools.lru_cache?")
    signature = "@functools.lru_cache(maxsize=128, typed=False)"
    assert lru.signatures(f"@functools.lru_cache(user_function)\n{signature}") == {
        "functools.lru_cache(maxsize="
    }
    assert lru.hits(signature) == 2  # the name, and its signature
    assert (
        lru.signatures("x = functools.lru_cache(maxsize=32)(f)") == set()
    )  # a call within a line: an example
    assert lru.signatures("@functools.lru_cache(typed=False)") == set()  # not the parameter asked about
    pool = Verbatim.of("What is the default value of max_workers for concurrent.futures.ThreadPoolExecutor?")
    # None leaves the default to the prose ("Default value of max_workers is changed to min(32, ...)")
    assert pool.signatures("- class concurrent.futures.ThreadPoolExecutor(max_workers=None)") == set()
    json = Verbatim.of("What separators does json.dumps use by default?")
    assert json.signatures("json.dumps(obj, *, indent=None, separators=None)") == set()


def test_a_call_is_held_where_its_signature_is() -> None:
    # Node.js's setTimeout section is headed "setTimeout(callback[, delay[, ...args]])"
    assert literal_hits("setTimeout(callback[, delay[, ...args]])", ["setTimeout()"]) == 1
    assert literal_hits("Cancels a Timeout object created by setTimeout().", ["setTimeout()"]) == 1
    assert literal_hits("clearTimeout(timeout)", ["setTimeout()"]) == 0
    assert literal_hits("mysetTimeout(x)", ["setTimeout()"]) == 0
    assert Verbatim.of("When does setTimeout() set the delay to 1?").scanned == ("setTimeout(",)
