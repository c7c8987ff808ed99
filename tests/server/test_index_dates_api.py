"""The last_updated filters on the local index, against a real server with the tiny model through the
official ``perplexityai`` client: the index keeps each file's modification day
(tests/answer/test_index_last_updated.py), so ``search_results[].last_updated`` carries it and
``last_updated_after_filter`` / ``last_updated_before_filter`` (and chat's Unix-second
``updated_*_timestamp``) keep the index's sources by it, where they were once a 400.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Api, cli, pplx

QUESTION = "Who is the keeper of the Skerrymoor light?"
FILES = {  # name -> (text, the day it last changed)
    "keeper-1990.md": (
        "# Keeper in 1990\n\nThe keeper of the Skerrymoor light in 1990 was Alasdair.\n",
        "2023-03-10",
    ),
    "keeper-now.md": ("# Keeper now\n\nThe keeper of the Skerrymoor light is now Morag.\n", "2024-06-04"),
}


def noon(day: str) -> float:
    return dt.datetime.fromisoformat(day).replace(hour=12, tzinfo=dt.UTC).timestamp()


@pytest.fixture(scope="module")
def dated(api: Api, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The index ``dated`` in the api fixture's home, from files with known modification days."""
    folder = tmp_path_factory.mktemp("dated-files")
    for name, (text, day) in FILES.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        os.utime(path, (noon(day), noon(day)))
    cli(api.home, "index", "add", str(folder), "--index", "dated")
    return "dated"


def found(api: Api, dated: str, **fields: Any) -> dict[str, str | None]:
    r = pplx(api).chat.completions.create(
        model="sonar",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=8,
        extra_body={"source": "index", "index": dated, **fields},
    )
    return {Path(x.url).name: x.last_updated for x in r.search_results or []}


def test_index_sources_say_when_they_changed_and_are_filtered_by_it(api: Api, dated: str) -> None:
    assert found(api, dated) == {name: day for name, (_, day) in FILES.items()}
    assert found(api, dated, last_updated_after_filter="1/1/2024") == {"keeper-now.md": "2024-06-04"}
    assert found(api, dated, last_updated_before_filter="2023-03-10") == {"keeper-1990.md": "2023-03-10"}
    assert found(api, dated, updated_after_timestamp=int(noon("2024-06-04"))) == {
        "keeper-now.md": "2024-06-04"
    }


def test_a_window_no_source_falls_in_finds_nothing(api: Api, dated: str) -> None:
    assert found(api, dated, last_updated_after_filter="6/5/2024") == {}
