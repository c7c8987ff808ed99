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
    proc = subprocess.run(
        [GG, "index", "add", str(folder), "--index", "vision", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
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
    coffee, cat = extract_facts(
        [
            ImageInput.from_bytes(photos["coffee"], "coffee.png"),
            ImageInput.from_bytes(photos["chelsea"], "chelsea.png"),
        ],
        settings,
    )
    queries = image_queries(coffee, "how much caffeine is in this?")
    assert queries[0] == "how much caffeine is in espresso?"
    assert top_pages(index, queries) == ["espresso.md"] * len(queries)
    assert top_pages(index, image_queries(cat))[0] == "tabby-cat.md"


# --- the whole question through `groundglass ask --image` (tiny model: the mechanics, not the prose) ---


def ask(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GROUNDGLASS_HOME": str(settings.home),
        "HF_HUB_OFFLINE": "1",
        "GROUNDGLASS_LLM_THREADS": "1",
    }
    env.pop("GROUNDGLASS_CONFIG", None)
    return subprocess.run(
        [GG, "ask", "--index", "vision", "--model", "tiny", "--max-tokens", "24", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_ask_about_a_screenshot_from_the_cli(corpus_index, tmp_path: Path) -> None:
    settings, _ = corpus_index
    shot = tmp_path / "terminal.png"
    shot.write_bytes(terminal(TERMINAL_ERROR).png())
    proc = ask(settings, "--image", str(shot), "--json", "how do I fix this?")
    assert proc.returncode == 0, proc.stderr
    data = __import__("json").loads(proc.stdout)
    [facts] = data["visual_facts"]
    assert "ModuleNotFoundError" in facts["text"] and facts["source"] == str(shot)
    assert {"labels", "caption", "metadata"} <= set(facts) and facts["metadata"]["format"] == "PNG"
    assert data["search_results"][0]["url"].endswith("python-modulenotfounderror.md")
    # the answer says first what was recognised in the image, then answers
    content = data["choices"][0]["message"]["content"]
    assert content.startswith("In the image: ") and "No module named" in content.split("\n\n", 1)[0]
    assert 1 <= data["usage"]["num_search_queries"] <= settings.vision.max_queries


def test_ask_with_only_an_image_streams_what_it_saw(corpus_index, tmp_path: Path) -> None:
    settings, _ = corpus_index
    board = tmp_path / "sign.png"
    board.write_bytes(sign(ZERMATT_SIGN).png())
    proc = ask(settings, "--image", str(board))  # no question: "What is this?"
    assert proc.returncode == 0, proc.stderr
    assert "image 1: " in proc.stderr and "ZERMATT" in proc.stderr.split("image 1: ", 1)[1].splitlines()[0]
    assert "found for: what is Zermatt" in proc.stderr
    assert "zermatt.md" in proc.stdout.split("Sources", 1)[1]


def test_bad_images_on_the_cli_are_one_line_errors(corpus_index, tmp_path: Path, photos) -> None:
    settings, _ = corpus_index
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(photos["coffee"][: len(photos["coffee"]) // 3])
    text = tmp_path / "notes.png"
    text.write_text("not an image at all", encoding="utf-8")
    for value, message in [
        (str(truncated), "cut.png"),
        (str(text), "is text, not a supported image"),
        (str(tmp_path / "missing.png"), "missing.png"),
        ("data:image/png;base64,%%%", "base64"),
        ("ftp://example.org/a.png", "must be an http(s) URL or a data: URI"),
    ]:
        proc = ask(settings, "--image", value, "what is this?")
        assert proc.returncode == 2, (value, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("error: ") and message in proc.stderr, (value, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""
