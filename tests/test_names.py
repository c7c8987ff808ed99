"""One name, one meaning: CLI options, config keys and API fields, read from the real CLI, settings and app.

Every name used in more than one place (several commands, config sections or API bodies, or more than
one of the three) must be declared here: in ``MEANINGS`` with the one thing it means everywhere, or in
``TWO_MEANINGS`` with why it is not renamed yet. A new shared name fails the test until someone says
what it means, which is when a second meaning gets noticed. The mechanical checks: a short flag stands
for one long option everywhere; an option whose help names its setting has that setting's name; a
hidden option is an old spelling listed in ``OLD_SPELLINGS`` and still works, with a warning.
"""

from __future__ import annotations

import re
import typing
import warnings
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from pydantic import BaseModel

from groundglass.cli import app
from groundglass.config import OLD_FETCH_KEYS, Settings, load_settings

Places = dict[str, set[str]]

# The one meaning of each name shared between places.
MEANINGS = {
    # CLI and config, one concept each
    "allow_private": "fetching may reach private and loopback addresses",
    "allowed_networks": "CIDRs a fetch may reach despite being private",
    "api_key": "the key sent to that section's remote service",
    "base_url": "the address of that section's remote service",
    "config": "the config file a command reads (TOML for groundglass, YAML for a DreamBooth run)",
    "context_tokens": "token budget for the sources given to the model",
    "country": "the country whose results a web search prefers",
    "host": "the address the server listens on",
    "index": "the name of a local index",
    "json": "print JSON instead of text",
    "llm": "the language model: its settings ([llm]), or the model spec a preset runs",
    "models": "a table keyed by model name: each API model's preset (server), effort overrides (reasoning)",
    "max_bytes": "the largest response a fetch reads",
    "max_depth": "link depth a crawl follows",
    "max_pages": "pages a crawl reads at most",
    "max_results": "web search results asked of a provider",
    "open": "the server answers without API keys",
    "port": "the port the server listens on",
    "project": "the project keys and usage belong to",
    "quiet": "no progress output",
    "reasoning": "reasoning effort: the [reasoning] presets, OpenAI's `reasoning: {effort}` in a request",
    "reasoning_effort": "minimal | low | medium | high: how much planning and searching an answer gets",
    "search_context_size": "low | medium | high: how much web context an answer gets",
    "source": "where an answer's sources come from: index (a local index) or web (the providers of [search])",
    "temperature": "sampling temperature of the language model",
    "threads": "CPU threads that part uses",
    "timeout_s": "seconds before one request of that section gives up",
    "top_k": "how many of the best-ranked results are kept (sources for an answer, hits of `index search`)",
    "user_agent": "the User-Agent header a fetch sends",
    "workers": "server worker processes",
    "start": "first day of a usage report (UTC, YYYY-MM-DD)",
    "end": "last day of a usage report (UTC, YYYY-MM-DD, inclusive)",
    # DreamBooth, CLI and API
    "batch_size": "images drawn per forward pass",
    "device": "the torch device that runs the model",
    "use_ema": "draw or export with a run's EMA weights (a fit config's model.ema holds EMA settings)",
    "format": "the export format of a trained model: diffusers, single-file, lora (or all)",
    "guidance_scale": "classifier-free guidance scale",
    "local_files_only": "never download a model",
    "negative_prompt": "what the sampled images should not show",
    "out": "the folder a command writes into",
    "prompt": "the text an image is drawn from",
    "resolution": "image size in pixels (square)",
    "scheduler": "the diffusion sampler",
    "seed": "the random seed (image i of a request uses seed + i)",
    "steps": "denoising steps per image (optimizer steps are train_steps)",
    "train_steps": "DreamBooth optimizer steps",
    # API bodies (OpenAI and Perplexity wire names)
    "content": "a message's text or parts",
    "description": "a human-readable description of the object it is in (a preset, a JSON schema)",
    "detail": "OpenAI's image detail level",
    "json_schema": "OpenAI's structured output: the JSON schema the answer must follow",
    "schema": "the JSON schema itself (OpenAI's structured output)",
    "strict": "OpenAI's structured output: follow the schema exactly",
    "image_url": "an image given by URL or data: URI",
    "last_updated_after_filter": "pages updated on or after this date",
    "last_updated_before_filter": "pages updated on or before this date",
    "after": "OpenAI's pagination cursor: the items after this id (`ask --published-after` is a date)",
    "limit": "page size of a list",
    "region": "a user_location's state or province (search.duckduckgo.locale is ddgs's region code)",
    "metadata": "the caller's key-value labels, stored and returned",
    "n": "how many results to generate",
    "name": "the name of the thing made (an exported single file, a JSON schema of structured output)",
    "question": "the question asked (demo's, a thread turn's)",
    "next_token": "the cursor of the next page of async requests",
    "purpose": "what a file is for (batch, fine-tune, ...)",
    "response_format": "the shape the output is returned in",
    "regex": "Perplexity's structured output: the regular expression the whole answer must match",
    "user_location": "where the asker is (country, region, city...), given to the web search providers",
    "role": "who wrote a message",
    "search_after_date_filter": "pages published on or after this date",
    "search_before_date_filter": "pages published on or before this date",
    "search_domain_filter": "domains to search only in (or, with '-', to leave out)",
    "search_mode": "web | academic | sec: which sites a web search covers",
    "search_recency_filter": "how recent the pages must be",
    "stream": "send server-sent events as the work goes",
    "text": "the text of a part",
    "top_p": "nucleus sampling mass",
    "type": "the kind of a tagged union member",
    "return_images": "add the images of the web pages read to the answer",
    "image_domain_filter": "domains the returned images may (or, with '-', may not) come from",
    "image_format_filter": "file formats the returned images may have",
    "latitude": "the asker's latitude (a part of a location)",
    "longitude": "the asker's longitude (a part of a location)",
    "logprobs": "token log probabilities of the output",
    "num_images": "how many images to return or make",
    "max_tokens_per_page": "how many tokens of one page's text are returned (/search) or read (web_search)",
    "search_language_filter": "the languages (ISO 639-1) the pages must be in",
    "tools": "the tools the model may call",
    "language_preference": "the language (ISO 639-1) the answer is written in",
}

# Names that still mean two things, and why they are not renamed yet.
TWO_MEANINGS = {
    "max_tokens": "the answer's cap everywhere except Perplexity's Search API and its Agent API's web_search "
    "tool, where it caps the page text returned or read; both are the wire names of the APIs the server is "
    "compatible with.",
    "model": "the API's `model` is OpenAI's field (an API model name, an image model, a base model to "
    "fine-tune); the CLI's --model and llm.model are a language model spec. Clients rely on both.",
    "search_type": "Perplexity's two wire names: chat's search depth (fast | pro | auto) and the Search "
    "API's kind of search (web | people, people refused here); clients send both as they are.",
}

# Old config keys read for one release: (section, old key) -> (the key to write now, a value to try).
OLD_KEYS: dict[tuple[str, str], tuple[str, Any]] = {
    ("vision", "top_k"): ("max_labels", 3),  # top_k counts sources everywhere else
    # search.context_sizes says what each size means for a web search; these are multipliers
    ("server", "context_sizes"): ("context_scales", {"high": 3.0}),
    # region is a user_location's state or province everywhere else; ddgs's code holds a language too
    ("search.duckduckgo", "region"): ("locale", "us-en"),
}

# A value to try for each [fetch] key (each differs from the default) for the keys moved there from
# [crawl] and [search.reader] (config.OLD_FETCH_KEYS).
FETCH_VALUES: dict[str, Any] = {
    "user_agent": "test-bot/1",
    "allow_private": True,
    "allowed_networks": ["10.0.0.0/8"],
    "timeout_s": 3.5,
    "max_bytes": 4096,
    "max_redirects": 3,
    "concurrency": 3,
    "per_host_concurrency": 3,
    "per_host_delay_s": 0.5,
    "crawl_timeout_s": 3.5,
    "crawl_max_bytes": 4096,
}

# Old spellings kept for one release: (command, old option) -> the option to use now.
OLD_SPELLINGS = {
    ("ask", "--after"): "--published-after",  # the API's `after` is OpenAI's pagination cursor
    ("ask", "--before"): "--published-before",
    ("ask", "--search"): "--source",  # [search] is the web search's table; this is where sources come from
    ("chat", "--search"): "--source",
    ("demo", "-q"): "--question",  # -q is --quiet in every other command
    ("dreambooth bench", "--steps"): "--train-steps",  # --steps is denoising steps in sample/priors
    ("dreambooth demo", "--steps"): "--train-steps",
    ("dreambooth bench", "--warmup"): "--warmup-steps",  # model.ema.warmup is a yes/no, not a count
    ("dreambooth sample", "--ema"): "--use-ema",  # as the fit callbacks say it; model.ema is settings
    ("dreambooth export", "--ema"): "--use-ema",
}


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    sub = getattr(cmd, "commands", None)
    if sub:
        for name, child in sub.items():
            yield from _commands(child, (*path, name))
    else:
        yield " ".join(path), cmd


def _options() -> Iterator[tuple[str, Any]]:
    """(command path, click option) for every option of every command (typer builds the click tree)."""
    for path, cmd in _commands(typer.main.get_command(app)):
        for p in cmd.params:
            if p.param_type_name == "option" and "--help" not in p.opts:
                yield path, p


def _key(option: str) -> str:
    return option.lstrip("-").replace("-", "_")


def cli_places() -> Places:
    places: Places = defaultdict(set)
    for path, p in _options():
        if not p.hidden:
            for o in p.opts:
                if o.startswith("--"):
                    places[_key(o)].add(f"cli: {path}")
    return places


def _models(tp: Any) -> Iterator[tuple[type[BaseModel], str]]:
    origin = typing.get_origin(tp)
    if origin is None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            yield tp, ""
        return
    args = typing.get_args(tp)
    if origin is dict:
        yield from ((m, ".*" + s) for m, s in _models(args[1]))
    else:
        for a in args:
            yield from _models(a)


def config_keys(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(section path, key) for every setting and every table of settings; ``*`` stands for a table's
    names (``server.models.*`` holds each API model's preset)."""
    for name, field in model.model_fields.items():
        yield prefix.rstrip(".") or "(top)", name
        for m, suffix in _models(field.annotation):
            yield from config_keys(m, f"{prefix}{name}{suffix}.")


def config_places() -> Places:
    places: Places = defaultdict(set)
    for section, key in config_keys():
        places[key].add(f"config: {section}")
    return places


def api_places(tmp_path: Path) -> Places:
    """Request fields (bodies, query parameters) of every route of the real app's OpenAPI document."""
    from groundglass.server.app import create_app

    with warnings.catch_warnings():  # FastAPI warns about duplicate operation ids on aliased routes
        warnings.simplefilter("ignore")
        spec = create_app(load_settings(None, home=str(tmp_path)), run_jobs=False).openapi()
    schemas = spec["components"]["schemas"]
    places: Places = defaultdict(set)

    def walk(schema: dict[str, Any], where: str, seen: set[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return
            seen.add(name)
            schema, where = schemas[name], name
        for key in ("anyOf", "oneOf", "allOf"):
            for member in schema.get(key, []):
                walk(member, where, seen)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key], where, seen)
        for name, prop in schema.get("properties", {}).items():
            places[name].add(f"api: {where}")
            walk(prop, where, seen)

    for route, ops in spec["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {route}"
            for param in op.get("parameters", []):
                if param["in"] == "query":
                    places[param["name"]].add(f"api: {where}")
            for content in op.get("requestBody", {}).get("content", {}).values():
                walk(content["schema"], where, set())
    return places


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Places:
    """Every name used in more than one place, with its places."""
    places: Places = defaultdict(set)
    for found in (cli_places(), config_places(), api_places(tmp_path_factory.mktemp("home"))):
        for name, where in found.items():
            places[name] |= where
    return {name: where for name, where in places.items() if len(where) > 1}


def test_every_shared_name_has_one_declared_meaning(shared: Places) -> None:
    both = set(MEANINGS) & set(TWO_MEANINGS)
    assert not both, f"a name is either one meaning or a known clash: {sorted(both)}"
    names = sorted(set(shared) - set(MEANINGS) - set(TWO_MEANINGS))
    undeclared = {name: sorted(shared[name]) for name in names}
    assert not undeclared, (
        "these names are used in several places: if each means one thing, add it to MEANINGS with that "
        f"meaning; if not, rename one use (old spelling in OLD_SPELLINGS): {undeclared}"
    )


def test_known_clashes_are_still_shared(shared: Places) -> None:
    """TWO_MEANINGS only shrinks: a clash resolved by a rename leaves the list."""
    stale = sorted(set(TWO_MEANINGS) - set(shared))
    assert not stale, f"no longer used in more than one place: remove them from TWO_MEANINGS: {stale}"


def test_a_short_flag_means_one_long_option_everywhere() -> None:
    meaning: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path, p in _options():
        if p.hidden:
            continue
        longs = [o for o in p.opts if o.startswith("--")]
        for short in (o for o in p.opts if not o.startswith("--")):
            meaning[short].add((longs[0] if longs else p.name, path))
    clashes = {s: sorted(v) for s, v in meaning.items() if len({long for long, _ in v}) > 1}
    assert not clashes, f"short flags standing for different options: {clashes}"
    assert {long for long, _ in meaning["-q"]} == {"--quiet"}


def test_an_option_that_names_its_setting_has_the_settings_name() -> None:
    keys = {f"{section}.{key}" for section, key in config_keys()}
    checked = 0
    for path, p in _options():
        for setting in re.findall(r"setting: ([a-z_.]+)", p.help or ""):
            assert setting in keys, f"{path} {p.opts[0]}: its help names {setting}, which is no setting"
            long = next(o for o in p.opts if o.startswith("--"))
            section, key = setting.rsplit(".", 1)
            # the flag is the key, or its section's default (--reasoning-effort: reasoning.default_effort)
            names = {key, f"{section.rsplit('.', 1)[-1]}_{key.removeprefix('default_')}"}
            assert _key(long) in names, (
                f"{path} {long} sets {setting}: one name for one thing (CLI flag = config key)"
            )
            checked += 1
    assert checked >= 4  # ask's --index, --model, --top-k and --max-tokens at least


def test_every_hidden_option_is_a_listed_old_spelling() -> None:
    hidden = {(path, o) for path, p in _options() if p.hidden for o in p.opts}
    assert hidden == set(OLD_SPELLINGS), "hide an option only to keep an old spelling (list it here)"
    visible = {(path, o) for path, p in _options() if not p.hidden for o in p.opts}
    for (path, _old), new in OLD_SPELLINGS.items():
        assert (path, new) in visible, f"{path}: the new spelling {new} is missing"


@pytest.mark.parametrize(
    ("argv", "old", "new", "error"),
    [
        (["demo", "-q", "Where is Etna?", "--config", "{missing}"], "-q", "--question", "config file"),
        (
            ["ask", "--after", "March", "Why?"],
            "--after",
            "--published-after",
            "--published-after 'March' is not a date",
        ),
        (
            ["ask", "--before", "2024-02-30", "Why?"],
            "--before",
            "--published-before",
            "--published-before '2024-02-30' is not a date",
        ),
        (["ask", "--search", "moon", "Why?"], "--search", "--source", "--source must be one of index, web"),
        (["chat", "--search", "moon"], "--search", "--source", "--source must be one of index, web"),
        (
            ["dreambooth", "demo", "--steps", "0"],
            "--steps",
            "--train-steps",
            "--train-steps must be at least 1",
        ),
        (
            ["dreambooth", "bench", "--config", "{missing}", "--steps", "2"],
            "--steps",
            "--train-steps",
            "no such file",
        ),
        (
            ["dreambooth", "bench", "--config", "{missing}", "--warmup", "0"],
            "--warmup",
            "--warmup-steps",
            "no such file",
        ),
        (
            [
                "dreambooth",
                "export",
                "--ckpt",
                "{missing}",
                "--out",
                "{missing}",
                "--format",
                "bad",
                "--no-ema",
            ],
            "--ema/--no-ema",
            "--use-ema/--no-use-ema",
            "unknown export format",
        ),
    ],
)
def test_old_spellings_still_work_with_a_warning(
    argv: list[str], old: str, new: str, error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old spelling is accepted (no usage error), says what to write instead, then runs as before:
    each call here stops at a clear error after the option was taken, so no model or index is built."""
    from groundglass.cli import main

    argv = [a.replace("{missing}", str(tmp_path / "missing.cfg")) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code != 0
    assert f"warning: {old} is deprecated and goes away in the next release; use {new}" in err
    assert "No such option" not in err and error in err


def test_old_spelling_gives_the_value_it_was_given() -> None:
    from groundglass.commands.renamed import old_spelling

    assert old_spelling(None, "--steps", "--train-steps", 300) == 300
    assert old_spelling(7, "--steps", "--train-steps", 300) == 7


@pytest.mark.parametrize(("section", "old"), sorted(OLD_KEYS))
def test_old_config_keys_still_work_with_a_warning(section: str, old: str) -> None:
    new, value = OLD_KEYS[(section, old)]
    keys = set(config_keys())
    assert (section, new) in keys and (section, old) not in keys

    def read(**keys: Any) -> Any:
        table: Any = _with_table(section, keys)
        for part in section.split("."):
            table = getattr(table, part)
        return getattr(table, new)

    default = read()
    assert read(**{new: value}) != default  # the value to try changes something
    with pytest.warns(FutureWarning, match=rf"{section}\.{old} is deprecated .* write {section}\.{new}"):
        assert read(**{old: value}) == read(**{new: value})
    with pytest.warns(FutureWarning):  # both spellings: the new one wins
        assert read(**{old: value, new: default}) == default


def test_a_presets_old_search_key_still_works_with_a_warning() -> None:
    """server.models.NAME.search was renamed source ([search] is the web search's table)."""
    keys = set(config_keys())
    assert ("server.models.*", "source") in keys and ("server.models.*", "search") not in keys

    def source(**preset: Any) -> str:
        return load_settings(server={"models": {"sonar": preset}}).server.models["sonar"].source

    assert source() == "index" and source(source="web") == "web"
    said = r"server\.models\.sonar\.search is deprecated .* write server\.models\.sonar\.source"
    with pytest.warns(FutureWarning, match=said):
        assert source(search="web") == "web"
    with pytest.warns(FutureWarning):  # both spellings: the new one wins
        assert source(search="web", source="index") == "index"


def test_the_old_api_field_search_still_works_with_a_warning() -> None:
    """A chat request's ``search`` was renamed ``source``: still read, logged as deprecated, and the new
    name wins when both are sent. It is no field of the API's schema any more."""
    from structlog.testing import capture_logs

    from groundglass.server.schemas import ChatRequest

    body = {"model": "sonar", "messages": [{"role": "user", "content": "Why?"}]}
    assert "search" not in ChatRequest.model_fields
    assert ChatRequest.model_validate({**body, "source": "web"}).source == "web"
    with capture_logs() as logs:
        assert ChatRequest.model_validate({**body, "search": "web"}).source == "web"
        assert ChatRequest.model_validate({**body, "search": "web", "source": "index"}).source == "index"
    assert [e["event"] for e in logs] == ["deprecated_field"] * 2 and "send source" in logs[0]["fix"]


def _with_table(table: str, keys: dict[str, Any], **more: Any) -> Settings:
    """Settings from ``keys`` written in ``table`` (``search.reader`` is the reader table of [search])."""
    section, _, sub = table.partition(".")
    return load_settings(**{section: {sub: keys} if sub else keys}, **more)


@pytest.mark.parametrize(("table", "old"), sorted(OLD_FETCH_KEYS))
def test_old_fetch_keys_still_work_with_a_warning(table: str, old: str) -> None:
    """Each key that moved to [fetch] still sets its [fetch] key, says what to write, and loses to it."""
    new = OLD_FETCH_KEYS[(table, old)]
    value = FETCH_VALUES[new]
    assert (table, old) not in set(config_keys()) and ("fetch", new) in set(config_keys())
    default = getattr(load_settings().fetch, new)
    assert value != default
    with pytest.warns(FutureWarning, match=rf"{re.escape(table)}\.{old} is deprecated .* write fetch\.{new}"):
        assert getattr(_with_table(table, {old: value}).fetch, new) == value
    with pytest.warns(FutureWarning):  # both spellings: [fetch] wins
        assert getattr(_with_table(table, {old: value}, fetch={new: default}).fetch, new) == default


def test_two_old_fetch_keys_that_disagree_are_refused() -> None:
    """crawl.allow_private and search.reader.allow_private were two settings and are one now: a config
    that gave them different values is refused with the fix, instead of one silently winning."""
    from groundglass.errors import GroundglassError

    both = {"crawl": {"allow_private": True}, "search": {"reader": {"allow_private": False}}}
    with pytest.warns(FutureWarning), pytest.raises(GroundglassError, match="differ") as info:
        load_settings(**both)
    assert "write fetch.allow_private once" in info.value.fix
    both["search"]["reader"]["allow_private"] = True
    with pytest.warns(FutureWarning):
        assert load_settings(**both).fetch.allow_private is True
    with pytest.warns(FutureWarning):  # [fetch] settles it
        assert load_settings(**both, fetch={"allow_private": False}).fetch.allow_private is False
