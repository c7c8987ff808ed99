"""CLI commands ``groundglass ask`` and ``groundglass demo``: thin faces over the answer engine.

``ask`` searches a local index (``--source index``, the default) or the web (``--source web``, with
the filters ``--domain``, ``--recency``, ``--published-after``, ``--published-before``, ``--language`` and
``--search-context-size``); ``--image`` adds images whose text and content steer the search.

``ask`` streams the answer to stdout as the model writes it, then the numbered sources and any
sentence that its citations do not support. With ``--json``, stdout carries only the
Perplexity-shaped JSON object. Progress and errors go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer

from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from groundglass.answer.engine import Engine
    from groundglass.answer.events import Event
    from groundglass.answer.search.filters import SearchFilters
    from groundglass.answer.types import Answer, AskRequest
    from groundglass.answer.vision import ImageInput
    from groundglass.config import Settings

DEMO_INDEX = "default"

# The search fields' API names (what SearchFilters.build and the web search name in their errors) as
# ask's flags
FILTER_FLAGS = {
    "search_context_size": "--search-context-size",
    "search_recency_filter": "--recency",
    "search_after_date_filter": "--published-after",
    "search_before_date_filter": "--published-before",
    "search_language_filter": "--language",
    "search_domain_filter": "--domain",
}
DEMO_SOURCE = "builtin:wikipedia"
DEMO_QUESTION = "When was the Berlin Wall built, and why?"


def in_flag_names(error: GroundglassError) -> GroundglassError:
    """A search filter's error as the terminal should read it: naming ask's flags, not the API fields
    that the shared check names (the API keeps its field names)."""
    if error.param not in FILTER_FLAGS:
        return error

    def flags(text: str) -> str:
        for field, flag in FILTER_FLAGS.items():
            text = text.replace(field, flag)
        return text

    fix = flags(error.fix)
    if error.param == "search_recency_filter":
        fix = "use --recency hour, day, week, month or year"
    elif error.param == "search_context_size":
        fix = "use --search-context-size low, medium or high"
    return GroundglassError(
        flags(error.message), fix, status=error.status, code=error.code, param=FILTER_FLAGS[error.param]
    )


# --- rendering ----------------------------------------------------------------------------------------


def status(message: str) -> None:
    typer.secho(message, err=True, dim=True)


def _stream_to_terminal(events: Iterator[Event], out: TextIO) -> Answer:
    """Write tokens as they arrive; return the finished answer (raise on an error event)."""
    from groundglass.answer.events import Done, ErrorEvent, ImagesRead, SourcesFound, StepDone, Token

    wrote = False
    for event in events:
        if isinstance(event, ImagesRead):
            from groundglass.answer.vision import seen

            for n, facts in enumerate(event.facts, start=1):
                status(f"image {n}: {seen(facts)}")
        elif isinstance(event, StepDone):
            status(f"searched {event.query!r}: {len(event.urls)} source(s), {event.seconds:.1f} s")
        elif isinstance(event, SourcesFound):
            if event.queries:
                searched = "; ".join(event.queries)
                status(f"{len(event.sources)} source(s) found for: {searched}; writing the answer...")
        elif isinstance(event, Token):
            out.write(event.text)
            out.flush()
            wrote = True
        elif isinstance(event, ErrorEvent):
            if wrote:
                out.write("\n")
                out.flush()
            raise GroundglassError(event.message, code=event.code)
        elif isinstance(event, Done):
            out.write("\n")
            out.flush()
            return event.answer
    raise GroundglassError("the answer stream ended early", "run the command again")


def _print_sources(answer: Answer, out: TextIO) -> None:
    """The numbered sources (uncited ones dimmed) and the sentences their citations do not support;
    colours only on a terminal."""
    from groundglass.answer.cite import cited_numbers

    if not answer.sources:
        return
    color = out.isatty()
    cited = set(cited_numbers(answer.content))
    typer.echo("\nSources", file=out)
    for n, source in enumerate(answer.sources, start=1):
        line = f"[{n}] {source.title} — {source.url}"
        typer.echo(line if n in cited else typer.style(line, dim=True), file=out, color=color)
    weak = [a for a in answer.attribution if not a.supported]
    if weak:
        typer.echo(typer.style("\nNot supported by the cited sources:", fg="yellow"), file=out, color=color)
        for a in weak:
            why = "no citation" if not a.citations else f"support {a.support:.2f}"
            typer.echo(typer.style(f"  ! {a.text} ({why})", fg="yellow"), file=out, color=color)


def _start(engine: Engine, request: AskRequest) -> Iterator[Event]:
    """Check the request and load its model and index, with a spinner on a terminal."""
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status("loading the model and the index...", spinner="dots"):
            return engine.stream(request)
    return engine.stream(request)


def answer_in_terminal(engine: Engine, request: AskRequest, out: TextIO | None = None) -> Answer:
    """Stream the answer to ``out`` (stdout), then its sources; return it."""
    out = out or sys.stdout
    answer = _stream_to_terminal(_start(engine, request), out)
    _print_sources(answer, out)
    if answer.related_questions:
        typer.echo("\nRelated", file=out)
        for q in answer.related_questions:
            typer.echo(f"  - {q}", file=out)
    report = answer.search_report
    if report is not None:
        used = ", ".join(report["providers_used"]) or "none"
        failed = f" (failed: {', '.join(report['providers_failed'])})" if report["providers_failed"] else ""
        status(f"web search: {used}{failed}")
    if answer.declined and not answer.sources and report is not None and report.get("error"):
        # why no page was usable (all blocked as private addresses, filtered out, unreadable): the
        # terminal showed only "0 source(s) found", with the reason in --json's search_report alone
        status(f"(web search: {report['error']})")
    if answer.declined and not answer.sources and request.search == "index":
        index = request.index or engine.settings.retrieval.index
        status(
            f"(nothing in index {index!r} is close enough to the question; add documents with "
            f"`groundglass index add PATH --index {index}`)"
        )
    return answer


def answer_as_json(engine: Engine, request: AskRequest, out: TextIO | None = None) -> Answer:
    """Print the finished answer as one Perplexity-shaped JSON object on ``out`` (stdout); return it."""
    out = out or sys.stdout
    from groundglass.answer.events import Done, ErrorEvent
    from groundglass.answer.response import to_perplexity_json

    for event in _start(engine, request):
        if isinstance(event, ErrorEvent):
            raise GroundglassError(event.message, code=event.code)
        if isinstance(event, Done):
            out.write(json.dumps(to_perplexity_json(event.answer), ensure_ascii=False, indent=2) + "\n")
            out.flush()
            return event.answer
    raise GroundglassError("the answer stream ended early", "run the command again")


# --- commands -----------------------------------------------------------------------------------------


def settings_from(config: Path | None) -> Settings:
    from groundglass.config import load_settings

    return load_settings(config)


def checked_source(source: str, old: str | None) -> str:
    """``--source``, or its old spelling ``--search`` (with a warning: ``[search]`` is the web search's
    table), checked here so that the error names the flag rather than the engine's field."""
    from groundglass.answer.retrieve import SEARCH_MODES
    from groundglass.commands.renamed import old_spelling

    source = old_spelling(old, "--search", "--source", source)
    if source not in SEARCH_MODES:
        raise GroundglassError(
            f"--source must be one of {', '.join(SEARCH_MODES)}, got {source!r}",
            "use index (a local index) or web (the search providers)",
            param="--source",
        )
    return source


def _images(values: list[str]) -> list[ImageInput]:
    """``--image`` values as the request takes them; the vision package (OCR, image labels: a fifth of
    a second of imports) is imported only for a question that has images."""
    if not values:
        return []
    from groundglass.answer.vision import ImageInput

    return [ImageInput.from_cli(v) for v in values]


def _check_context_size(settings: Settings, size: str | None) -> None:
    """``--search-context-size`` checked before any work, its error naming the flag."""
    if size is None:
        return
    from groundglass.answer.search.web import context_preset

    try:
        context_preset(settings, size)
    except GroundglassError as e:
        raise in_flag_names(e) from None


def _check_question(question: str, images: list[str]) -> None:
    if not question.strip() and not images:
        raise GroundglassError(
            "the question is empty",
            'ask something, e.g. groundglass ask "Who was Ada '
            'Lovelace?" (or give an image with --image PATH)',
        )


def _filters(
    domain: list[str],
    recency: str | None,
    language: list[str],
    *,
    published_after: str | None,
    published_before: str | None,
    after: str | None,
    before: str | None,
) -> SearchFilters:
    """ask's search filters, their errors naming its flags; ``after``/``before`` are the old spellings
    of the two dates (taken with a warning when given)."""
    from groundglass.answer.search.filters import SearchFilters
    from groundglass.commands.renamed import old_spelling

    # --after/--before read like the API's `after` (a pagination cursor); these are publication dates
    after = old_spelling(after, "--after", "--published-after", published_after)
    before = old_spelling(before, "--before", "--published-before", published_before)
    try:
        return SearchFilters.build(
            domains=domain, recency=recency, after=after, before=before, languages=language
        )
    except GroundglassError as e:
        raise in_flag_names(e) from None


def ask(
    question: str = typer.Argument("", help="The question, in quotes (may be left out with --image)."),
    source: str = typer.Option(
        "index",
        "--source",
        "-s",
        help="Where the sources come from: index (a local index) or web (the search providers "
        "set in the config's search section).",
    ),
    search: str | None = typer.Option(None, "--search", hidden=True, help="Deprecated: --source."),
    index: str | None = typer.Option(
        None, "--index", "-i", help="Local index to search (setting: retrieval.index)."
    ),
    image: list[str] = typer.Option(
        [],
        "--image",
        help="An image that drives the search: a file, an http(s) URL or a data: URI. Repeat for several.",
    ),
    domain: list[str] = typer.Option(
        [],
        "--domain",
        help="Only this domain; a leading - excludes it (--domain=-reddit.com). Repeat for several.",
    ),
    recency: str | None = typer.Option(None, "--recency", help="hour | day | week | month | year."),
    published_after: str | None = typer.Option(
        None, "--published-after", help="Published on or after this date (YYYY-MM-DD)."
    ),
    published_before: str | None = typer.Option(
        None, "--published-before", help="Published on or before this date."
    ),
    after: str | None = typer.Option(None, "--after", hidden=True, help="Deprecated: --published-after."),
    before: str | None = typer.Option(None, "--before", hidden=True, help="Deprecated: --published-before."),
    language: list[str] = typer.Option(
        [], "--language", help="Only pages in this language (e.g. en). Repeat for several."
    ),
    search_context_size: str | None = typer.Option(
        None,
        "--search-context-size",
        help="Web: low | medium | high: pages read, text given to the model (search.context_size).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="default | fast | tiny | PATH.gguf | openai:MODEL@BASE_URL (setting: llm.model).",
    ),
    reasoning_effort: str | None = typer.Option(
        None,
        "--reasoning-effort",
        "-e",
        help="minimal | low | medium | high: sub-queries, search rounds, a <think> trace "
        "(setting: reasoning.default_effort).",
    ),
    related: bool | None = typer.Option(
        None, "--related/--no-related", help="Suggest follow-up questions the sources can answer."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one Perplexity-shaped JSON object."),
    top_k: int | None = typer.Option(
        None, "--top-k", help="Most sources given to the model (setting: retrieval.top_k)."
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", help="Longest answer, in tokens (setting: llm.max_tokens)."
    ),
    config: Path | None = typer.Option(None, "--config", help="Config file (TOML)."),
) -> None:
    """Answer QUESTION from a local index or the web, with numbered citations like [1]."""
    # Longer than most functions: typer reads the options from the signature; the work is in the
    # helpers above.
    from groundglass.answer.engine import Engine
    from groundglass.answer.types import AskRequest

    _check_question(question, image)
    filters = _filters(
        domain,
        recency,
        language,
        published_after=published_after,
        published_before=published_before,
        after=after,
        before=before,
    )
    source = checked_source(source, search)
    settings = settings_from(config)
    _check_context_size(settings, search_context_size)
    engine = Engine(settings)
    request = AskRequest.from_question(
        question,
        index=index,
        model=model,
        top_k=top_k,
        max_tokens=max_tokens,
        search=source,
        search_filters=filters,
        search_context_size=search_context_size,
        images=_images(image),
        reasoning_effort=reasoning_effort,
        return_related_questions=related,
    )
    if json_out:
        answer_as_json(engine, request)
    else:
        answer_in_terminal(engine, request)


def demo(
    question: str = typer.Option(DEMO_QUESTION, "--question", help="What to ask."),
    question_short: str | None = typer.Option(
        None, "-q", hidden=True, help="Deprecated: -q means --quiet elsewhere; use --question."
    ),
    model: str = typer.Option("default", "--model", "-m", help="Model spec for the answer."),
    config: Path | None = typer.Option(None, "--config", help="Config file (TOML)."),
) -> None:
    """Set up the embedded model and the Wikipedia index (once), then answer a sample question."""
    from groundglass.answer.engine import Engine
    from groundglass.answer.types import AskRequest
    from groundglass.commands.renamed import old_spelling

    question = old_spelling(question_short, "-q", "--question", question)
    settings = settings_from(config)
    status("1/3 model: checking the embedded model (assembled and verified once)...")
    _ensure_model(model, settings)
    status(f"2/3 index: {DEMO_INDEX!r} from {DEMO_SOURCE}...")
    ensure_demo_index(settings)
    status(f"3/3 asking: {question}")
    typer.echo(f"Q: {question}\n")
    engine = Engine(settings)
    answer_in_terminal(engine, AskRequest.from_question(question, index=DEMO_INDEX, model=model))
    status(f'\nnext: groundglass ask "your question"   (index {DEMO_INDEX!r}, model {model!r})')


def _ensure_model(model: str, settings: Settings) -> None:
    from groundglass.answer.llm.load import EMBEDDED

    if model in EMBEDDED:
        from groundglass.assets import ensure_model

        path = ensure_model(model, settings)
        status(f"    ready: {path}")


def ensure_demo_index(settings: Settings) -> None:
    """Build the demo index from the Wikipedia summaries unless it is complete already.

    An interrupted build resumes (documents already stored are skipped). An index of that name that
    holds other documents is the user's own: it is used as it is, never mixed with Wikipedia.
    """
    from groundglass.answer.index.builtin import wikipedia_count
    from groundglass.answer.index.ingest import add_sources
    from groundglass.answer.index.store import LocalIndex
    from groundglass.errors import NotFoundError

    try:
        index = LocalIndex.open(settings, DEMO_INDEX)
    except NotFoundError:
        index = LocalIndex.open(settings, DEMO_INDEX, create=True)
    with index:
        stats = index.stats()
        have, want = stats["kinds"].get("wikipedia", 0), wikipedia_count()
        if have >= want:
            status(f"    ready: {stats['documents']:,} documents, {stats['chunks']:,} chunks (built before)")
            return
        if stats["documents"] and not have:
            status(
                f"    index {DEMO_INDEX!r} holds your own {stats['documents']:,} documents: using it as it is"
            )
            return
        status(
            f"    building: {want - have:,} summaries to embed (a few minutes on 2 cores; "
            "Ctrl-C is safe, the next run resumes)"
        )
        report = add_sources(index, [DEMO_SOURCE], progress=True)
        status(f"    {report.summary()}")


def register(app: typer.Typer) -> None:
    """Mount ``ask`` and ``demo`` on the root app."""
    app.command("ask")(ask)
    app.command("demo")(demo)
