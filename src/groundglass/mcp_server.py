"""groundglass as an MCP server (the official ``mcp`` SDK), so that desktop assistants and agent
frameworks can call it as tools, over stdio or streamable HTTP (``groundglass mcp``):

- ``ask``: a cited answer, the same object ``groundglass ask --json`` prints (answer, citations,
  search_results, attribution, usage), searched in the local index or on the web;
- ``search``: ranked results (title, url, snippet, date, score) from the configured search providers
  (``search.providers``; ``local`` is the local index), nothing read;
- ``index_search``: the best chunks of a local index (hybrid BM25 + vectors, or one of the two).

The engine is loaded once, on the first call, and runs off the event loop. A request the engine
refuses (an unknown index, an empty question) is a tool error whose text says what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import anyio

from groundglass.errors import GroundglassError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from mcp.server.mcpserver import MCPServer

    from groundglass.answer.engine import Engine
    from groundglass.config import Settings

    OffLoop = Callable[[Callable[[], Any]], Awaitable[Any]]  # runs blocking work off the event loop

INSTRUCTIONS = (
    "groundglass answers questions from sources with numbered citations. Use `ask` for an answer whose "
    "every sentence cites its source ([n] is search_results[n-1]); `search` for raw ranked web results; "
    "`index_search` for passages of a local document index."
)


def build_server(settings: Settings) -> MCPServer:
    """The MCP server and its three tools; the engine is loaded on the first call that needs it."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from groundglass import __version__

    server: MCPServer = MCPServer("groundglass", instructions=INSTRUCTIONS, version=__version__)
    engine: list[Engine] = []

    def the_engine() -> Engine:
        from groundglass.answer.engine import Engine

        if not engine:
            engine.append(Engine(settings))
        return engine[0]

    async def off_loop(work: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(work)
        except GroundglassError as exc:
            raise ToolError(str(exc)) from exc  # what went wrong, and what to do

    _add_ask(server, the_engine, off_loop)
    _add_searches(server, settings, the_engine, off_loop)
    return server


def _add_ask(server: MCPServer, the_engine: Callable[[], Engine], off_loop: OffLoop) -> None:
    """The ``ask`` tool: a cited answer."""

    @server.tool(description="A grounded answer with numbered citations [n] that map to search_results[n-1].")
    async def ask(
        question: str,
        source: Literal["index", "web"] | None = None,
        index: str | None = None,
        reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None,
        max_tokens: int | None = None,
        search: Literal["index", "web"] | None = None,
    ) -> dict[str, Any]:
        """source: where sources come from (index, the default, or web); index: which local index;
        search: the old name of source (deprecated, goes away in the next release)."""
        from groundglass.answer.response import to_perplexity_json
        from groundglass.answer.types import AskRequest

        request = AskRequest.from_question(
            question,
            search=source or search or "index",
            index=index,
            reasoning_effort=reasoning_effort,
            max_tokens=max_tokens,
        )
        answer = await off_loop(lambda: the_engine().answer(request))
        return to_perplexity_json(answer)


def _add_searches(
    server: MCPServer, settings: Settings, the_engine: Callable[[], Engine], off_loop: OffLoop
) -> None:
    """The ``search`` (providers' results) and ``index_search`` (a local index's passages) tools."""
    from mcp.server.mcpserver.exceptions import ToolError

    @server.tool(description="Ranked results from the configured search providers (nothing is read).")
    async def search(query: str, max_results: int = 10) -> list[dict[str, Any]]:
        from groundglass.answer.search.web import WebRetriever

        if not 1 <= max_results <= 20:
            raise ToolError(f"max_results must be 1 to 20, got {max_results}")
        sources, report = await off_loop(lambda: WebRetriever(settings).search(query, None, max_results))
        if report.error and not sources:
            raise ToolError(f"no search provider answered: {report.error} (check [search] providers)")
        return [s.search_result() for s in sources]

    @server.tool(description="The best passages of a local index for a query (hybrid, bm25 or dense).")
    async def index_search(
        query: str, index: str | None = None, k: int = 5, mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    ) -> list[dict[str, Any]]:
        if not 1 <= k <= 50:
            raise ToolError(f"k must be 1 to 50, got {k}")
        hits = await off_loop(lambda: the_engine().index(index).search(query, k, mode))
        return [{**s.search_result(), "text": s.text} for s in hits]
