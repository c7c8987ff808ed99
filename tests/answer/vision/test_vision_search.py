"""End to end at the retrieval level: an image (and maybe a question) -> visual facts -> queries ->
the right page of a small local index built with `groundglass index add`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from vision_screens import SEARCH_CORPUS, TERMINAL_ERROR, ZERMATT_SIGN, sign, terminal

from groundglass.answer.index.store import LocalIndex
from groundglass.answer.vision import ImageInput, extract_facts, image_queries
from groundglass.config import Settings, load_settings

GG = str(Path(sys.executable).parent / "groundglass")



@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, LocalIndex]]:
    home = tmp_path_factory.mktemp("vision-home")
    folder = tmp_path_factory.mktemp("vision-corpus")
    for name, text in SEARCH_CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    env = {**os.environ, "GROUNDGLASS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("GROUNDGLASS_CONFIG", None)
    proc = subprocess.run([GG, "index", "add", str(folder), "--index", "vision", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert f"index 'vision': {len(SEARCH_CORPUS)} added" in proc.stdout, proc.stdout
    settings = load_settings(home=str(home))
    index = LocalIndex.open(settings, "vision")
    yield settings, index
    index.close()


def top_pages(index: LocalIndex, queries: list[str]) -> list[str]:
    """The best page's file name for each query."""
    return [index.search(q, k=1)[0].url.rsplit("/", 1)[-1] for q in queries]


def test_a_screenshot_of_an_error_finds_the_fix(corpus_index) -> None:
    settings, index = corpus_index
    shot = terminal(TERMINAL_ERROR)
    facts = extract_facts([ImageInput.from_bytes(shot.png(), "terminal.png")], settings)
    queries = image_queries(facts, "how do I fix this?")
    assert queries[0].startswith("how do I fix ModuleNotFoundError: No module named requests")
    assert top_pages(index, queries) == ["python-modulenotfounderror.md"] * len(queries)


def test_a_photo_of_a_sign_finds_the_place(corpus_index) -> None:
    settings, index = corpus_index
    board = sign(ZERMATT_SIGN)
    facts = extract_facts([ImageInput.from_bytes(board.png(), "sign.png")], settings)
    queries = image_queries(facts)  # no question: "what is this?"
    assert queries[0] == "what is Zermatt"
    assert top_pages(index, queries) == ["zermatt.md"] * len(queries)


def test_photos_find_what_they_show(corpus_index, photos) -> None:
    settings, index = corpus_index
    coffee, cat = extract_facts([ImageInput.from_bytes(photos["coffee"], "coffee.png"),
                                 ImageInput.from_bytes(photos["chelsea"], "chelsea.png")], settings)
    queries = image_queries(coffee, "how much caffeine is in this?")
    assert queries[0] == "how much caffeine is in espresso?"
    assert top_pages(index, queries) == ["espresso.md"] * len(queries)
    assert top_pages(index, image_queries(cat))[0] == "tabby-cat.md"
