"""Ranking read web pages: BM25 over every chunk, MiniLM over a shortlist, vectors cached by content."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from groundglass.answer import embeddings
from groundglass.answer.index.documents import Document, Section
from groundglass.answer.index.extract import html_document
from groundglass.answer.search import pages
from groundglass.config import load_settings

FILLER = (
    "The module documents many functions for working with files, processes and the environment "
    "of the interpreter, each with its arguments, its return value and the errors it raises. "
)


def long_page(uri: str, title: str, sections: int, planted: dict[int, str]) -> Document:
    """A manual page of ``sections`` sections of filler; ``planted[n]`` replaces section n's text."""
    out = []
    for n in range(sections):
        text = planted.get(n) or f"Section {n} notes. " + FILLER * 4
        out.append(Section(f"{title} part {n}", text))
    return Document(uri=uri, title=title, kind="html", sections=out)


@pytest.fixture
def settings(tmp_path):
    return load_settings(home=str(tmp_path))


@pytest.fixture
def fresh_embedder(monkeypatch: pytest.MonkeyPatch) -> embeddings.CachedEmbedder:
    """A process embedder with an empty cache (the model itself is shared)."""
    cached = embeddings.CachedEmbedder(embeddings.get_embedder().inner)
    monkeypatch.setattr(embeddings, "_embedder", cached)
    return cached


ANSWER = (
    "If the directory already exists, os.makedirs raises FileExistsError unless exist_ok is true; "
    "the mode argument defaults to 0o777."
)


def test_the_answer_deep_in_a_long_page_is_found_and_only_a_shortlist_is_embedded(
    settings, fresh_embedder: embeddings.CachedEmbedder
) -> None:
    docs = [
        long_page("http://docs.test/os.html", "os", 80, {61: ANSWER}),  # far past the first 24 chunks
        long_page("http://docs.test/shutil.html", "shutil", 60, {}),
        long_page("http://docs.test/pathlib.html", "pathlib", 60, {}),
    ]
    total = len(pages.chunk_pages(docs, settings))
    assert total > 150
    query = "What does os.makedirs raise when the directory exists and exist_ok is false?"
    ranked = pages.rank_pages(docs, query, settings, k=8, max_chunks_per_page=24)
    assert ranked and "FileExistsError" in ranked[0].text
    assert ranked[0].url == "http://docs.test/os.html" and ranked[0].title == "os"
    assert "exist_ok" in (ranked[0].snippet or "")
    assert all(0.0 <= s.score <= 1.0 for s in ranked)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert len(ranked) <= 8 and max(sum(s.url == u for s in ranked) for u in {s.url for s in ranked}) <= 2
    embedded = fresh_embedder.misses
    assert embedded <= 1 + max(pages.SHORTLIST_MIN, pages.SHORTLIST_PER_K * 8) + 3 * pages.PER_PAGE_FLOOR
    assert embedded < total / 3

    # the same pages read again: nothing is embedded but the new question
    again = pages.rank_pages(
        docs, query.replace("What does", "Which error does"), settings, k=8, max_chunks_per_page=24
    )
    assert fresh_embedder.misses == embedded + 1
    assert "FileExistsError" in again[0].text


def test_a_page_without_the_query_words_still_competes(settings, fresh_embedder) -> None:
    """A page that says it in other words has no BM25 hit; its first chunks are embedded anyway."""
    meaning = Document(
        uri="http://docs.test/tower.html",
        title="Eiffel Tower",
        kind="html",
        sections=[
            Section(
                "",
                "The wrought-iron lattice structure on the Champ de Mars in "
                "Paris stands 330 metres tall and was finished in 1889.",
            )
        ],
    )
    other = long_page("http://docs.test/other.html", "Cooking", 30, {})
    ranked = pages.rank_pages(
        [other, meaning], "How high is the Parisian landmark?", settings, k=4, max_chunks_per_page=24
    )
    assert any(s.url == "http://docs.test/tower.html" for s in ranked)


def test_bm25_scores_use_the_index_tokenizer() -> None:
    scores = pages.bm25_scores(
        ["Lighthouses guide ships", "bread and butter", "a lighthouse keeper"], "lighthouse ships"
    )
    assert set(scores) == {0, 2}  # porter stemming: lighthouses ~ lighthouse
    assert scores[0] > scores[2]  # two terms beat one
    assert pages.bm25_scores(["anything"], "the of and") == {}  # only stop words: no lexical signal
    assert pages.rank_pages([], "q", load_settings(), k=3, max_chunks_per_page=4) == []


def test_a_later_process_finds_the_page_vectors_on_disk(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [long_page("http://docs.test/os.html", "os", 40, {30: ANSWER})]
    query = "What does os.makedirs raise when the directory exists?"
    first = embeddings.CachedEmbedder(embeddings.get_embedder().inner)
    monkeypatch.setattr(embeddings, "_embedder", first)
    ranked = pages.rank_pages(docs, query, settings, k=4, max_chunks_per_page=24)
    assert first.misses > 5
    later = embeddings.CachedEmbedder(embeddings.get_embedder().inner)  # as in a new process: memory empty
    monkeypatch.setattr(embeddings, "_embedder", later)
    again = pages.rank_pages(docs, query, settings, k=4, max_chunks_per_page=24)
    assert later.misses == 1  # the question only
    assert [s.text for s in again] == [s.text for s in ranked]
    assert (settings.cache_dir / "page-vectors.sqlite3").is_file()


def test_a_later_process_finds_the_page_chunks_on_disk(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Splitting a long page is seconds of word-piece counting; a new process reads the split back."""
    from collections import OrderedDict

    from groundglass.answer.index import chunking
    from groundglass.answer.search import chunk_cache
    from groundglass.answer.search.disk_cache import DiskCache

    docs = [long_page("http://docs.test/os.html", "os", 40, {30: ANSWER})]
    monkeypatch.setattr(pages, "_CHUNKED", OrderedDict())  # other tests' pages stay out of it
    first = pages.chunk_pages(docs, settings)
    path = settings.cache_dir / chunk_cache.FILE
    assert path.is_file()

    real_split = chunking.chunk_document

    def split_again(*args: object, **kwargs: object) -> None:
        raise AssertionError("the page was split again")

    monkeypatch.setattr(pages, "_CHUNKED", OrderedDict())  # as in a new process: memory empty
    monkeypatch.setattr(chunking, "chunk_document", split_again)
    again = pages.chunk_pages(docs, settings)
    assert [c.chunk for c in again] == [c.chunk for c in first]

    # a changed page is a new key: split, not read back stale
    monkeypatch.setattr(chunking, "chunk_document", real_split)
    changed = [long_page("http://docs.test/os.html", "os", 40, {30: "os.makedirs is gone in this release."})]
    texts = [c.chunk.body for c in pages.chunk_pages(changed, settings)]
    assert any("is gone in this release" in t for t in texts)
    assert not any("FileExistsError" in t for t in texts)

    # a damaged row is never an error: the page is split again (and the row rewritten)
    monkeypatch.setattr(pages, "_CHUNKED", OrderedDict())
    row = chunk_cache.key(
        docs[0].content_hash(docs[0].uri), settings.retrieval.chunk_tokens, settings.retrieval.chunk_overlap
    )
    DiskCache(path, chunk_cache.MAX_ROWS).put({row: b"not zlib"})
    assert [c.chunk for c in pages.chunk_pages(docs, settings)] == [c.chunk for c in first]
    assert chunk_cache.ChunkCache(path).get(row) == [c.chunk for c in first]


def test_a_verbatim_term_of_the_question_ranks_its_chunk_first(
    settings, fresh_embedder: embeddings.CachedEmbedder
) -> None:
    """The FTS tokenizer turns "%j" into "j" (or nothing): every section about format codes matched the
    question alike, and the one that holds %j came wherever its other words put it."""
    codes = {
        n: (
            f"The strftime format codes directive %{c} means {meaning}. Format codes and directives "
            f"are listed in the strftime format codes table; each directive has a meaning."
        )
        for n, (c, meaning) in enumerate(
            [
                ("a", "the weekday name"),
                ("d", "the day of the month"),
                ("m", "the month"),
                ("M", "the minute"),
                ("p", "AM or PM"),
                ("f", "the microsecond"),
                ("U", "the week number"),
            ],
            start=3,
        )
    }
    codes[40] = "Directive %j: day of the year as a zero-padded decimal number."
    docs = [
        long_page("http://docs.test/datetime.html", "datetime", 50, codes),
        long_page("http://docs.test/time.html", "time", 40, {}),
    ]
    ranked = pages.rank_pages(
        docs,
        "What does the %j directive mean in strftime format codes?",
        settings,
        k=4,
        max_chunks_per_page=24,
    )
    assert "%j" in ranked[0].text and "day of the year" in ranked[0].text


DOCS = Path("/usr/share/doc/python3.11/html")
FLOAT_INFO_QUESTION = "Which C macro does the dig attribute of sys.float_info correspond to?"


@pytest.mark.skipif(not (DOCS / "library" / "sys.html").is_file(), reason="needs Debian's python3.11-doc")
def test_the_table_row_the_question_names_outranks_chunks_that_only_name_the_object(
    settings, fresh_embedder: embeddings.CachedEmbedder
) -> None:
    """On the real sys page, five chunks hold "sys.float_info" (the object) and one holds the row
    "| dig | DBL_DIG |" without it. Counting the object's name like the row put two prose chunks about
    sys.float_info.dig first and left the row out, and the model answered with the next row's macro."""
    docs = [
        html_document((DOCS / rel).read_bytes(), (DOCS / rel).as_uri(), Path(rel).stem)
        for rel in ("library/sys.html", "whatsnew/2.6.html")
    ]
    ranked = pages.rank_pages(docs, FLOAT_INFO_QUESTION, settings, k=3, max_chunks_per_page=24)
    assert re.search(r"^\| dig \| DBL_DIG \|", ranked[0].text, re.MULTILINE), ranked[0].text


@pytest.mark.skipif(not (DOCS / "library/functools.html").is_file(), reason="needs Debian's python3.11-doc")
def test_the_signature_that_gives_the_default_asked_about_outranks_examples_that_use_it(
    settings, fresh_embedder: embeddings.CachedEmbedder
) -> None:
    """Every chunk of functools' section on lru_cache has its heading,
    "@functools.lru_cache(user_function)"; the examples say "maxsize" most often
    (``@lru_cache(maxsize=32)``), and one ranked first while the chunk with
    "@functools.lru_cache(maxsize=128, typed=False)" came seventh, out of the sources."""
    rel = "library/functools.html"
    docs = [html_document((DOCS / rel).read_bytes(), (DOCS / rel).as_uri(), "functools")]
    question = "Which pickle protocol is the default, and what is the default maxsize of functools.lru_cache?"
    ranked = pages.rank_pages(docs, question, settings, k=2, max_chunks_per_page=24)
    assert "@functools.lru_cache(maxsize=128, typed=False)" in ranked[0].text, ranked[0].text


# SQLite's pragma.html (public domain), from "List Of PRAGMAs" to defer_foreign_keys: each entry's title is
# a hidden <h _id=... style="display:none">, half of them inside an unclosed <p>
PRAGMA_PAGE = Path(__file__).resolve().parent.parent / "data" / "pages" / "sqlite-pragma.html"


def test_hidden_entry_titles_head_their_entries() -> None:
    doc = html_document(PRAGMA_PAGE.read_bytes(), "https://docs.test/pragma.html", "pragma")
    by_heading = {s.heading: s.text for s in doc.sections}
    assert "The default suggested cache size is -2000" in by_heading["PRAGMA cache_size"]
    # one whose title stood inside the paragraph before it, and the next one, which did not
    assert "return one row for each database" in by_heading["PRAGMA database_list"]
    assert "persists across database connections" in by_heading["PRAGMA default_cache_size"]
    assert "persists across" not in by_heading["PRAGMA database_list"]
    assert "GGHEAD" not in doc.text


def test_an_entry_the_question_names_gives_its_first_chunk_first(settings) -> None:
    # cache_size's entry is four chunks; a compatibility note and the page cache's allocation scored
    # above its first, which holds the syntax and the default, and took the page's two places
    doc = html_document(PRAGMA_PAGE.read_bytes(), "https://docs.test/pragma.html", "pragma")
    found = pages.rank_pages([doc], "What is the default value of PRAGMA cache_size?", settings, 4, 8)
    assert len(found) == 2  # retrieval.max_per_source
    lead = next(s for s in found if s.text.startswith("PRAGMA cache_size\n"))
    assert "PRAGMA schema.cache_size;" in lead.text and "is -2000" in lead.text


def test_an_entrys_best_chunk_stays_first_when_it_holds_the_part_asked_about(settings) -> None:
    # Python 3.11's concurrent.futures page (PSF licence): ThreadPoolExecutor's section is the class with
    # its examples; the chunk of its signature and "Changed in version 3.8: Default value of max_workers
    # is changed to min(32, os.cpu_count() + 4)" ranked first by far, and the entry's own order put its
    # opening and an example on the page's two places
    path = PRAGMA_PAGE.parent / "python-concurrent-futures.html"
    doc = html_document(path.read_bytes(), "https://docs.test/concurrent.futures.html", "cf")
    question = "What is the default max_workers of ThreadPoolExecutor since Python 3.8?"
    found = pages.rank_pages([doc], question, settings, 4, 8)
    assert "min(32, os.cpu_count() + 4)" in found[0].text, [s.text[:200] for s in found]


def test_a_pages_best_lexical_chunk_keeps_one_of_its_places(settings) -> None:
    # SQLite's cli.html (public domain), whole: "Use the ".dump" command to convert the entire contents
    # of a database ..." is the page's best BM25 chunk, but MiniLM put it 36th, and the page's two
    # places went to other chunks
    path = PRAGMA_PAGE.parent / "sqlite-cli.html"
    doc = html_document(path.read_bytes(), "https://docs.test/cli.html", "cli")
    question = "Which sqlite3 shell dot-command writes out the entire database as SQL text?"
    found = pages.rank_pages([doc], question, settings, 4, 8)
    assert len(found) == 2
    assert any('Use the ".dump" command to convert the entire contents' in s.text for s in found)


def test_a_chunk_that_says_the_questions_phrase_keeps_one_of_its_places(settings) -> None:
    # Apache httpd's ab page (Apache License 2.0): its options are one long list, chunked a dozen at a
    # time; "-c concurrency: Number of multiple requests to perform at a time" shares seven words in a
    # row with the question, but its chunk is about -A to -d as much, and the chunk of -k ("perform
    # multiple requests within one HTTP session") and -n took the page's places (read beside the
    # performance tuning page, as the search engine gave them): the model answered -n
    docs = [
        html_document(
            (PRAGMA_PAGE.parent / f"apache-{name}.html").read_bytes(), f"https://docs.test/{name}", name
        )
        for name in ("ab", "perf-tuning")
    ]
    question = (
        "Which option of ab, the Apache HTTP server benchmarking tool, sets the number of multiple requests "
        "to perform at a time?"
    )
    found = pages.rank_pages(docs, question, settings, 4, 8)
    assert any("Number of multiple requests to perform at a time" in s.text for s in found)
