"""Which entry of a definition list a "which option" question describes (groundglass.answer.entries)."""

from __future__ import annotations

from pathlib import Path

from test_grounding import gate_run

from groundglass.answer.entries import described, named_otherwise
from groundglass.answer.extractive import described_entry
from groundglass.answer.index.extract import html_document
from groundglass.answer.types import Source

# Apache httpd's ab page (Apache License 2.0), whole: its options are one definition list
AB_PAGE = Path(__file__).resolve().parent.parent / "data" / "pages" / "apache-ab.html"
CONCURRENCY = (
    "Which option of ab, the Apache HTTP server benchmarking tool, sets the number of multiple requests to "
    "perform at a time?"
)
HTTPD = (
    "Options\n- -S:\n- Show the settings as parsed from the config file (currently only shows the "
    "virtualhost settings).\n- -D parameter:\n- Sets a configuration parameter which can be used with "
    "<IfDefine> sections in the configuration files to conditionally skip or process commands at server "
    "startup and restart.\n"
    "- -t:\n- Run syntax tests for configuration files only. The program immediately exits after these "
    "syntax parsing tests.\n- -X:\n- Run httpd in debug mode. Only one worker will be started."
)


def ab_text() -> str:
    return html_document(AB_PAGE.read_bytes(), "https://docs.test/programs/ab.html", "ab").text


def test_the_option_whose_description_says_what_the_question_asks_is_found() -> None:
    entry = described(CONCURRENCY, [ab_text()])
    assert entry is not None and entry.term == "-c concurrency" and entry.source == 0
    assert entry.line().startswith("-c concurrency: Number of multiple requests to perform at a time.")
    # -n's description says "Number of requests to perform": the part of the question it answers
    part = "Which ab option sets the number of requests to perform?"
    assert described(part, [ab_text()]).term == "-n requests"  # type: ignore[union-attr]
    # not a "which option" question, or no description says it in the question's words
    assert described("What does ab's -c option do?", [ab_text()]) is None
    assert described("Which option of ab makes it print its output in colour?", [ab_text()]) is None


def test_a_sentence_that_names_another_option_of_the_list_is_sent_back_with_the_entry() -> None:
    sources = [
        Source("https://docs.test/programs/ab.html", "ab - Apache HTTP server benchmarking tool", ab_text())
    ]
    wrong = "The option that sets the number of multiple requests to perform at a time in ab is -n. [1]"
    assert named_otherwise(wrong, CONCURRENCY, [ab_text()])[0] == "-n"  # type: ignore[index]
    shown, gate = gate_run(CONCURRENCY, sources, wrong)
    assert shown == "" and gate.failed is not None and gate.failed.reason == "other_entry"
    assert gate.failed.values == ["-n"] and gate.failed.hints[0][1].startswith("-c concurrency: Number of")
    right = "The option that sets the number of multiple requests to perform at a time is -c. [1]"
    assert gate_run(CONCURRENCY, sources, right)[0] == right


def test_the_entry_is_quoted_when_the_model_wrote_no_option() -> None:
    # the 1.5B model wrote "The command-line option ... is [1]." twice with this list in [1]
    sources = [Source("https://docs.test/programs/httpd.html", "httpd", HTTPD)]
    question = "Which command-line option makes httpd run syntax tests on its configuration files only?"
    said = described_entry(question, sources)
    quoted = (
        "-t: Run syntax tests for configuration files only. The program immediately exits after these "
        "syntax parsing tests."
    )
    assert said == f'The sources give: "{quoted}" [1]'
    assert gate_run(question, sources, said)[1].failed is None


# Git's git-config page (GPL-2.0), three of its log.* variables, as the extraction writes a <dl>
GIT_LOG_VARIABLES = (
    "Variables\n- log.follow:\n- If true, git log will act as if the --follow option was used when a single "
    "<path> is given.\n- log.showRoot:\n- If true, the initial commit will be shown as a big creation "
    "event.\n- log.mailmap:\n- If true, makes git log show mailmap-ed authors and committers."
)
FOLLOW = "Which configuration variable makes git log act as if --follow was given " + "for a single path?"


def test_a_configuration_variable_described_in_other_small_words_is_found() -> None:
    # "git log will act as if the --follow option": the question's words in its order, but for "will",
    # "the" and "option"; word for word, the longest shared run was "a single path is"
    entry = described(FOLLOW, [GIT_LOG_VARIABLES])
    assert entry is not None and entry.term == "log.follow"


def test_a_name_the_question_says_itself_is_not_another_entry() -> None:
    # git log's own option list has an entry "--follow"; the sentence says it because the question does
    log_options = "OPTIONS\n- --follow:\n- Continue listing the history of a file beyond renames."
    sources = [GIT_LOG_VARIABLES, log_options]
    right = "The configuration variable that makes git log act as if --follow was given is log.follow. [1]"
    assert named_otherwise(right, FOLLOW, sources) is None
    wrong = "The configuration variable that makes git log act as if --follow was given is log.mailmap. [1]"
    assert named_otherwise(wrong, FOLLOW, sources) == ("log.mailmap", described(FOLLOW, sources))
