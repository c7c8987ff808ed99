"""Which parts of a several-part question an answer leaves out (:mod:`groundglass.answer.coverage`)."""

from __future__ import annotations

from groundglass.answer.coverage import unanswered_parts
from groundglass.answer.planner.fallback import part_queries

PICKLE_AND_CACHE = (
    "Which pickle protocol is the default since Python 3.8, "
    "and what is the default maxsize of functools.lru_cache?"
)


def test_the_half_the_answer_never_speaks_of_is_left_out() -> None:
    parts = part_queries(PICKLE_AND_CACHE)
    assert len(parts) == 2
    answer = "The default pickle protocol since Python 3.8 is protocol 4. [2]"
    assert unanswered_parts(parts, answer) == [parts[1]]
    both = answer + " The default maxsize of lru_cache is 128. [1]"
    assert unanswered_parts(parts, both) == []


def test_the_same_question_asked_of_two_names_needs_both_names() -> None:
    parts = part_queries("Which ports do smtplib's SMTP.connect and python -m http.server use by default?")
    assert len(parts) == 2
    assert unanswered_parts(parts, "The default port used by `smtplib.SMTP.connect` is 25. [1]") == [parts[1]]
    assert unanswered_parts(parts, "SMTP.connect uses 25 [1] and http.server uses 8000 [2].") == []


def test_markers_are_not_words_and_parts_without_words_of_their_own_count_as_answered() -> None:
    assert unanswered_parts(["how tall is Everest", "how tall is K2"], "It is 8,849 m [1][2].") == [
        "how tall is Everest",
        "how tall is K2",
    ]
    assert unanswered_parts(["how tall is it", "how tall is it"], "It is 8,849 m [1].") == []
    assert unanswered_parts([], "anything") == []


def test_a_part_that_names_nothing_of_its_own_is_not_asked_again() -> None:
    parts = part_queries("What is the Berlin Wall, and how did it come to be built?")
    assert len(parts) == 2
    # the answer speaks of the second part in other words: nothing to tell it by, so it counts
    assert unanswered_parts(parts, "The Berlin Wall was a guarded concrete barrier [1].") == []


def test_a_part_that_asks_for_an_amount_in_plain_words_needs_a_figure_about_them() -> None:
    # SQLite's manual: the default model answered the constant and stopped; the second part names
    # nothing (no verbatim term, no capitalised word), and it was taken as answered
    parts = part_queries(
        "What is the numeric value of the SQLITE_CONSTRAINT result code, "
        "and how many tables can a single join contain at most?"
    )
    assert len(parts) == 2
    first = "The numeric value of the SQLITE_CONSTRAINT result code is 19. [1]"
    assert unanswered_parts(parts, first) == [parts[1]]
    assert (
        unanswered_parts(parts, first + " SQLite does not support joins containing more than 64 tables. [2]")
        == []
    )
    # a figure beside other words does not answer it
    assert unanswered_parts(parts, first + " Joins are processed in order. [2]") == [parts[1]]


def test_a_part_that_asks_what_the_number_of_something_is_needs_a_figure() -> None:
    # PostgreSQL's manual: the default model spoke of the columns and gave no number
    parts = part_queries(
        "What is the default value of shared_buffers, and what is the maximum number of columns in a table?"
    )
    assert len(parts) == 2
    first = "The default value of shared_buffers is 128 megabytes (128MB)"
    words = first + ", and the maximum number of columns in a table is further limited by tuple size. [1]"
    assert unanswered_parts(parts, words) == [parts[1]]
    assert unanswered_parts(parts, first + ". [1] A table can have at most 1,600 columns. [2]") == []


def test_a_part_that_asks_for_an_amount_needs_a_figure_about_it() -> None:
    parts = part_queries("When was the Berlin Wall built, and how tall is Mount Everest?")
    assert len(parts) == 2
    # speaks of Everest, says nothing of its height: the README's example answer, before
    words_only = "The Berlin Wall was built in 1961. [1] Mount Everest is the highest mountain on Earth. [2]"
    assert unanswered_parts(parts, words_only) == [parts[1]]
    # the height in the same sentence as Everest, or in words, answers it
    assert (
        unanswered_parts(parts, "The Berlin Wall was built in 1961 [1]. Everest is 8,848.86 m tall [2].")
        == []
    )
    assert (
        unanswered_parts(parts, "Built in 1961 [1], the Wall is younger than Everest, 8,849 m high [2].")
        == []
    )
    # a figure elsewhere does not answer it: the wall's year is not Everest's height
    assert unanswered_parts(parts, "Mount Everest is famous. [2] The Berlin Wall was built in 1961. [1]") == [
        parts[1]
    ]
    # the time part: a sentence about the wall without a year leaves it out
    assert unanswered_parts(parts, "The Berlin Wall divided Berlin [1]. Everest is 8,849 m tall [2].") == [
        parts[0]
    ]
    # "how many" answered in words
    timeit = part_queries(
        "What is the default timeout of sqlite3.connect(), and how many times does timeit.timeit() run?"
    )
    assert (
        unanswered_parts(
            timeit,
            "The timeout of sqlite3.connect() is 5.0 s [1]. timeit.timeit() runs one million times [2].",
        )
        == []
    )


def test_a_clause_that_only_says_a_which_part_again_does_not_answer_it() -> None:
    # the default model's web t09: the first part "answered" in its own words, and the answer went out
    parts = part_queries(PICKLE_AND_CACHE, as_asked=True)
    restated = (
        "The pickle protocol is the default since Python 3.8, and the default maxsize of "
        "functools.lru_cache is 128. [1][3]"
    )
    assert unanswered_parts(parts, restated) == [parts[0]]
    # a value in the clause, or in the next sentence that goes on about it, answers it
    assert unanswered_parts(parts, restated.replace("The pickle protocol is", "Protocol 4 is")) == []
    went_on = (
        "The pickle protocol is the default since Python 3.8. [1] It is protocol 4. [1] "
        + "The"
        + restated[58:]
    )
    assert unanswered_parts(parts, went_on) == []
    # a yes/no part may be answered in its own words
    asked = part_queries(
        "Is asyncio.get_event_loop deprecated, and what is the default maxsize of lru_cache?"
    )
    assert len(asked) == 2
    said = "asyncio.get_event_loop is deprecated [1], and the default maxsize of lru_cache is 128 [2]."
    assert unanswered_parts(asked, said) == []


def test_the_module_of_a_dotted_name_does_not_speak_of_the_name() -> None:
    # Python's manual: the default model answered the first part twice, and "sys APIs" in its second
    # sentence was taken as speaking of sys.float_info.dig
    parts = part_queries(
        "What is the default int/str conversion digit limit in Python 3.11, "
        "and which C macro does sys.float_info.dig correspond to?"
    )
    assert len(parts) == 2
    first = (
        "The default int/str conversion digit limit in Python 3.11 is 4300 digits in string form. "
        "This limit can be configured or disabled by environment variable, command line flag, "
        "or sys APIs. [1][2] "
        "The default limit is 4300 digits in string form. [2][3]"
    )
    assert unanswered_parts(parts, first) == [parts[1]]
    assert unanswered_parts(parts, first + " sys.float_info.dig corresponds to DBL_DIG. [1]") == []
    assert unanswered_parts(parts, first + " The dig attribute is the C macro DBL_DIG. [1]") == []
