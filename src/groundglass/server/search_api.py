"""``POST /search``: Perplexity's Search API, ranked raw results (title, url, snippet, date, last_updated).

The route checks the caller's limits, asks the search service (:mod:`groundglass.server.search_service`)
and writes the ledger row: each request is billed ``server.search_price_per_thousand / 1000``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import APIRouter, Depends, Request

from groundglass.server.auth import Principal
from groundglass.server.errors import APIError
from groundglass.server.schemas import SearchRequest
from groundglass.server.search_service import run_search
from groundglass.server.state import caller, state
from groundglass.server.usage import new_request_id, record_refusal, usage_entry

router = APIRouter(tags=["search"])


@router.post("/search", summary="Ranked raw search results (Perplexity Search API)")
async def search(body: SearchRequest, request: Request, who: Principal = Depends(caller)) -> dict[str, Any]:
    st = state(request)
    started = time.perf_counter()
    request_id = new_request_id()
    try:
        await st.limits.admit(who)
        results = await run_search(st.search, body, st.settings.server.search_modes)
    except APIError as exc:
        await record_refusal(
            st, who, exc, request_id=request_id, model="search", endpoint="/search", started=started
        )
        raise
    cost = st.pricing.search()
    searches = {"num_search_queries": len(body.queries())}
    await st.record(
        usage_entry(
            who,
            request_id=request_id,
            model="search",
            endpoint="/search",
            status=200,
            started=started,
            usage=searches,
            cost=cost,
        )
    )
    out: dict[str, Any] = {"id": request_id, "results": results}
    if body.display_server_time:
        out["server_time"] = dt.datetime.now(dt.UTC).isoformat()
    return out
