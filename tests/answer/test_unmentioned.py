"""Which name a question asks about, and whether its sources mention it in a form reference pages use."""

from __future__ import annotations

import pytest

from groundglass.answer.types import Source
from groundglass.answer.unmentioned import asked_name, unlisted_param, unmentioned_name


def _src(text: str, title: str = "Reference") -> Source:
    return Source(url="https://docs.test/page.html", title=title, text=text)


@pytest.mark.parametrize(
    ("question", "name"),
    [
        ("What is the default value of RewriteMaxRules in mod_rewrite?", "RewriteMaxRules"),
        ("What does the %q substitution of sqlite3_mprintf() do?", None),  # a format code: the gate's
        ("Where in httpd.conf is KeepAliveTimeout set?", None),  # where a setting lives, not what
        ("Is KeepAliveTimeout set in httpd.conf?", "KeepAliveTimeout"),
        ("Which sqlite3 dot-command does .autosave stand for?", "sqlite3"),
        ("What is a good default, e.g. for a small server?", None),
        ("What is the capital of France?", None),
    ],
)
def test_the_name_a_question_asks_about(question: str, name: str | None) -> None:
    assert asked_name(question) == name


def test_a_name_no_source_mentions_is_reported() -> None:
    sources = [_src("RewriteRule: Defines rules for the rewriting engine. Default: None", "mod_rewrite")]
    question = "What is the default value of RewriteMaxRules in mod_rewrite?"
    assert unmentioned_name(question, sources) == "RewriteMaxRules"


@pytest.mark.parametrize(
    ("question", "text"),
    [
        # a call by its name, with its arguments
        ("What does SQLite's instr() function return when nothing is found?", "instr(X,Y) returns 0 when"),
        # a dotted name by its last part, as a table of members writes it
        ("Which status code does http.HTTPStatus.IM_A_TEAPOT have?", "| 418 | IM_A_TEAPOT | I'm a teapot |"),
        # case as the page writes it
        ("What is the default of keepalivetimeout?", "KeepAliveTimeout Directive. Default: 5"),
        # in the title only
        ("What does PRAGMA cache_size set?", "Sets the suggested maximum number of pages"),
    ],
)
def test_a_name_the_sources_write_their_own_way_is_mentioned(question: str, text: str) -> None:
    title = "PRAGMA cache_size" if "cache_size" in question else "Reference"
    assert unmentioned_name(question, [_src(text, title)]) is None


def test_a_name_inside_a_longer_one_is_not_mentioned() -> None:
    # "KeepAlive" is in "KeepAliveTimeout", but that is another directive
    assert unmentioned_name("What does KeepAlive default to?", [_src("KeepAliveTimeout: 5")]) == "KeepAlive"


# Signatures as the sources give them: the term line of a definition, as extraction writes Python's <dt>,
# its description on the next line (python3.11-doc's tomllib, zipfile, sqlite3, timeit, zlib, json and
# logging pages).
TOMLLIB = (
    "- tomllib.loads(s, /, *, parse_float=float):\n- Load TOML from a str object. Return a dict. The "
    "parse_float argument has the same meaning as in load()."
)
ELEMENTINCLUDE = (
    "- xml.etree.ElementInclude.include(elem, loader=None, base_url=None, max_depth=6): Returns the "
    "expanded resource."
)


@pytest.mark.parametrize(
    ("question", "texts", "missing"),
    [
        (  # another call's signature has the parameter; the asked call's does not
            "What is the default maximum nesting depth accepted by tomllib.loads() (its max_depth argument)?",
            [TOMLLIB, ELEMENTINCLUDE],
            "the max_depth parameter of tomllib.loads()",
        ),
        (
            "What is the default compresslevel parameter of zipfile.ZipFile.extractall()?",
            ["- ZipFile.extractall(path=None, members=None, pwd=None):\n- Extract all members."],
            "the compresslevel parameter of zipfile.ZipFile.extractall()",
        ),
        (
            "What is the default value of sqlite3.connect()'s pool_size parameter?",
            [
                "- sqlite3.connect(database, timeout=5.0, detect_types=0, isolation_level='DEFERRED', "
                "check_same_thread=True, cached_statements=128, uri=False):\n- Open"
            ],
            "the pool_size parameter of sqlite3.connect()",
        ),
        (  # the parameter is there
            "How many times does timeit.timeit() execute the statement by default (its number argument)?",
            [
                "- timeit.timeit(stmt='pass', setup='pass', timer=<default timer>, number=1000000, "
                "globals=None):\n- Create a Timer instance"
            ],
            None,
        ),
        (
            "What is the default value of the level argument of zlib.compress()?",
            ["- zlib.compress(data, /, level=-1, wbits=MAX_WBITS):\n- Compresses the bytes in data"],
            None,
        ),
        (  # one of two signatures of the call has it
            "What is the default step argument of range()?",
            ["- class range(stop)\n- class range(start, stop[, step])"],
            None,
        ),
        (  # a signature that takes more than it names may take it
            "What does the sort_arrays parameter of json.dumps() do?",
            ["- json.dumps(obj, *, skipkeys=False, indent=None, sort_keys=False, **kw):\n- Serialize obj"],
            None,
        ),
        (
            "What is the default highWaterMark parameter of new stream.Readable()?",
            ["- new stream.Readable([options])"],
            None,
        ),
        (  # no signature of the call printed: the sources say nothing either way
            "What is the default value of the rotate argument of logging.basicConfig()?",
            ["logging.basicConfig() does basic configuration for the logging system."],
            None,
        ),
    ],
)
def test_a_parameter_the_calls_printed_signature_lacks_is_reported(
    question: str, texts: list[str], missing: str | None
) -> None:
    assert unlisted_param(question, [_src(t) for t in texts]) == missing


def test_a_question_about_such_a_parameter_is_declined_before_the_model() -> None:
    question = "What is the default nesting depth accepted by tomllib.loads() (its max_depth argument)?"
    # the call is mentioned, so only the signature tells that it takes no max_depth
    assert unmentioned_name(question, [_src(TOMLLIB), _src(ELEMENTINCLUDE)]) == (
        "the max_depth parameter of tomllib.loads()"
    )


@pytest.mark.parametrize(
    ("question", "text", "missing"),
    [
        # a long option anywhere in the question, not only the first term
        (
            "Which port does python -m http.server use by default when started with its --tls-cert option?",
            "python -m http.server [--bind ADDRESS] [--directory DIR] [port]. "
            "The server listens to port 8000 by default.",
            "--tls-cert",
        ),
        # an option's value, named with it
        (
            "What does the -X jitmode command-line option do?",
            "-X importtime to show how long each import takes. -X dev: enable Python Development Mode.",
            "-X jitmode",
        ),
        # an environment variable in capitals
        (
            "What does the PYTHONJITLEVEL environment variable control?",
            "PYTHONHASHSEED: If this variable is not set or set to random, a random value is used.",
            "PYTHONJITLEVEL",
        ),
        # a release the sources never speak of
        (
            "Which pattern matching syntax did Python 3.15 add to the match statement?",
            "Changed in version 3.10: the match statement was added. Changed in version 3.11: ...",
            "Python 3.15",
        ),
    ],
)
def test_every_option_variable_and_release_the_question_names_must_be_mentioned(
    question: str, text: str, missing: str
) -> None:
    assert unmentioned_name(question, [_src(text)]) == missing


@pytest.mark.parametrize(
    ("question", "text"),
    [
        (
            "Which port does python -m http.server use by default when started with its --bind option?",
            "python -m http.server --bind 127.0.0.1. The server listens to port 8000 by default.",
        ),
        ("What does the -X importtime option do?", "-X importtime to show how long each import takes."),
        ("What does the PYTHONHASHSEED variable do?", "PYTHONHASHSEED: If this variable is not set, ..."),
        (
            "Since Python 3.8, what is the default max_workers of ThreadPoolExecutor?",
            "Changed in version 3.8: Default value of max_workers is changed to min(32, os.cpu_count() + 4).",
        ),
    ],
)
def test_options_variables_and_releases_the_sources_name_are_mentioned(question: str, text: str) -> None:
    assert unmentioned_name(question, [_src(text)]) is None
