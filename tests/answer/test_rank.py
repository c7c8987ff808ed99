"""Ranking functions: fusion, near-duplicate removal, per-source diversity and the token budget."""

from __future__ import annotations

import pytest

from groundglass.answer import rank
from groundglass.answer.embeddings import count_tokens
from groundglass.answer.sentences import split_sentences
from groundglass.answer.types import Source


def src(n: int, text: str, url: str | None = None, score: float = 0.5) -> Source:
    return Source(
        url=url or f"https://example.org/{n}",
        title=f"Doc {n}",
        text=text,
        score=score,
        doc_id=str(n),
        chunk_id=f"{n}-0",
    )


def test_rrf_rewards_agreement_and_is_normalised() -> None:
    bm25 = ["a", "b", "c", "d"]
    dense = ["c", "a", "e"]
    fused = rank.rrf_fuse([bm25, dense])
    ids = [k for k, _ in fused]
    assert ids[:2] == ["a", "c"]  # high in both lists beats first in one
    assert set(ids) == {"a", "b", "c", "d", "e"}
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
    assert rank.rrf_fuse([["x"], ["x"]]) == [("x", 1.0)]  # first everywhere = 1.0
    assert rank.rrf_fuse([["x", "y"], ["y", "x"]])[0][0] == "x"  # a tie keeps the first ranking's order
    weighted = rank.rrf_fuse([["p", "q"], ["q", "p"]], weights=[1.0, 3.0])
    assert weighted[0][0] == "q"
    with pytest.raises(ValueError):
        rank.rrf_fuse([["a"]], weights=[1.0, 2.0])


def test_minmax_fusion() -> None:
    fused = dict(rank.minmax_fuse([{"a": 10.0, "b": 5.0, "c": 0.0}, {"b": 0.9, "c": 0.1}]))
    assert fused["b"] == pytest.approx(0.25 + 0.5)
    assert fused["a"] == pytest.approx(0.5)
    assert fused["c"] == pytest.approx(0.0)


def test_dedupe_drops_near_duplicates_keeps_the_better_one() -> None:
    base = (
        "The Fresnel lens was invented by Augustin-Jean Fresnel in 1822 and made lighthouses visible "
        "from much farther out at sea. Its concentric rings of prisms bend the light of a single lamp "
        "into a narrow horizontal beam."
    )
    mirror = base.replace("much farther", "far farther")  # a mirror with one word changed
    other = "Sourdough bread rises slowly with a wild yeast starter kept in a cool place."
    overlap_neighbour = (
        "into a narrow horizontal beam. Keepers polished the prisms every morning and "
        "trimmed the wick before sunset."
    )
    kept = rank.dedupe(
        [src(1, base, score=0.9), src(2, mirror, score=0.8), src(3, other), src(4, overlap_neighbour)]
    )
    assert [s.doc_id for s in kept] == ["1", "3", "4"]
    assert rank.dedupe([src(1, "same words"), src(2, "same words")]) == [src(1, "same words")]


def test_diversify_caps_chunks_per_document() -> None:
    sources = [
        src(1, "a", url="u1"),
        src(2, "b", url="u1"),
        src(3, "c", url="u1"),
        src(4, "d", url="u2"),
        src(5, "e", url="u1"),
    ]
    assert [s.doc_id for s in rank.diversify(sources, 2)] == ["1", "2", "4"]
    assert [s.doc_id for s in rank.diversify(sources, 1)] == ["1", "4"]
    assert len(rank.diversify(sources, 0)) == 5  # 0 = no cap


TEXT = (
    "Lighthouses guide ships at night. Each light has its own pattern of flashes. Keepers once lived "
    "in the towers and trimmed the wicks. Most lights are automatic today."
)


def test_fit_budget_keeps_what_fits_and_trims_the_last_at_a_sentence() -> None:
    words = lambda s: len(s.split())  # noqa: E731 - a token counter: one token per word
    sources = [src(1, TEXT), src(2, TEXT + " Extra."), src(3, "Never reached.")]
    n = words(TEXT)
    fitted = rank.fit_budget(sources, budget_tokens=n + 13, count_tokens=words)
    assert [s.doc_id for s in fitted] == ["1", "2"]
    assert fitted[0].text == TEXT
    trimmed = fitted[1].text
    assert trimmed == "Lighthouses guide ships at night. Each light has its own pattern of flashes."
    assert sum(words(s.text) for s in fitted) == n + 13  # 5 + 8 words of whole sentences
    assert sources[1].text.endswith("Extra.")  # the input is not modified


def test_fit_budget_drops_a_source_when_no_whole_sentence_fits() -> None:
    words = lambda s: len(s.split())  # noqa: E731
    fitted = rank.fit_budget(
        [src(1, TEXT), src(2, TEXT)], budget_tokens=words(TEXT) + 4, count_tokens=words, min_tokens=1
    )
    assert [s.doc_id for s in fitted] == ["1"]  # "Lighthouses guide ships at night." is 5 words > 4


def test_fit_budget_counts_overhead_and_real_tokens() -> None:
    sources = [src(i, TEXT) for i in range(10)]
    per = count_tokens(TEXT)
    fitted = rank.fit_budget(
        sources, budget_tokens=3 * per + 3 * 10 + 5, count_tokens=count_tokens, overhead_tokens=10
    )
    assert len(fitted) == 3  # the 4th would need at least 12 tokens of text beyond the 5 left
    assert sum(count_tokens(s.text) + 10 for s in fitted) <= 3 * per + 35
    for s in fitted:  # never mid-sentence: every kept text is made of whole sentences of the original
        assert all(sentence in split_sentences(TEXT) for sentence in split_sentences(s.text))
    assert rank.fit_budget(sources, budget_tokens=0, count_tokens=count_tokens) == []


def test_trimming_keeps_line_breaks_and_table_rows_whole() -> None:
    words = lambda s: len(s.split())  # noqa: E731
    table = (
        "Limits of the interpreter. They can be changed.\n"
        "| Limit | Default. Note |\n| --- | --- |\n| recursion depth | 1000. Raise it with care |\n"
        "| int digits | 4300 |"
    )
    trimmed = rank.trim_to_sentences(table, 30, words)
    assert trimmed.splitlines() == [
        "Limits of the interpreter. They can be changed.",
        "| Limit | Default. Note |",
        "| --- | --- |",
        "| recursion depth | 1000. Raise it with care |",
    ]
    # a row that does not fit is left out whole, never cut at its ". "
    assert rank.trim_to_sentences(table, 20, words).splitlines()[-1] == "| --- | --- |"


def test_each_querys_best_hit_leads_the_fused_ranking() -> None:
    from groundglass.answer.retrieve import fuse

    def chunk(url: str, n: int) -> Source:
        return Source(url=url, title=url, text=f"chunk {n} of {url}", chunk_id=str(n))

    gzip, zlib, other = "https://docs/gzip.html", "https://docs/zlib.html", "https://docs/other.html"
    examples, more_examples, signature = chunk(gzip, 1), chunk(gzip, 2), chunk(gzip, 3)
    compress, archive = chunk(zlib, 4), chunk(other, 5)
    whole = [examples, more_examples, compress, archive]
    gzip_part = [signature, more_examples, examples, archive]
    zlib_part = [compress, archive, more_examples]
    fused = fuse([whole, gzip_part, zlib_part])
    assert [s.chunk_id for s in fused[:3]] == ["1", "3", "4"]  # examples, signature, compress
    # two chunks of a page at most: the signature, which only the gzip part found, is still there
    assert "3" in [s.chunk_id for s in rank.diversify(fused, 2)]
    assert sorted(s.chunk_id for s in fused) == ["1", "2", "3", "4", "5"]


def test_merge_pages_gives_each_page_one_source_at_its_best_place() -> None:
    sig = "- @functools.lru_cache(maxsize=128, typed=False):"
    pages = [
        ("u/functools", f"functools\n{sig}\nTo help measure the cache's hits, ..."),
        ("u/whatsnew", "lru_cache() can now be used as a straight decorator."),
        ("u/functools", f"{sig}\nIt leaves maxsize at its default of 128."),
        ("u/functools", "- cache_info():\nReturns hits and misses."),
    ]
    sources = [Source(url=u, title=u, text=t, score=0.9 - 0.1 * n) for n, (u, t) in enumerate(pages)]
    merged = rank.merge_pages(sources)
    assert [s.url for s in merged] == ["u/functools", "u/whatsnew"]
    assert [s.score for s in merged] == [0.9, 0.8]  # each page's best chunk's
    # the signature line once (below the section's heading in the first chunk, the first line of the
    # next), each chunk's own text in rank order, a chunk with another heading whole
    assert merged[0].text == (
        f"functools\n{sig}\nTo help measure the cache's hits, ...\n\nIt leaves maxsize at its default of 128."
        "\n\n- cache_info():\nReturns hits and misses."
    )
    assert merged[1] is sources[1]


def test_merge_pages_says_a_long_line_once() -> None:
    # json.html's chunks each hold json.dumps' entry; the merged source showed its signature three times
    sig = "- json.dumps(obj, *, skipkeys=False, ensure_ascii=True, indent=None, separators=None):"
    about = "- Serialize obj to a JSON formatted str using this conversion table."
    pages = [
        f"Basic Usage\n{sig}\nAs a result of this, loads(dumps(x)) != x if x has non-string keys.",
        f"- json.dump(obj, fp):\nDefault: None\n{sig}\n{about}",
        f"{sig}\n{about}\nDefault: None",
    ]
    sources = [Source(url="u/json", title="json", text=t, score=0.9 - 0.1 * n) for n, t in enumerate(pages)]
    [merged] = rank.merge_pages(sources)
    assert merged.text.count(about) == 1
    assert merged.text.count("Default: None") == 2  # short: it may be another entry's
    # the signature stays where it heads what the page has not shown: the line below is not json.dump's
    assert (
        merged.text == f"{pages[0]}\n\n- json.dump(obj, fp):\nDefault: None\n{sig}\n{about}\n\nDefault: None"
    )


def test_merge_pages_keeps_sources_without_a_url_apart() -> None:
    sources = [Source(url="", title="note", text="One."), Source(url="", title="note", text="Two.")]
    assert rank.merge_pages(sources) == sources


def test_merge_pages_does_not_repeat_the_term_whose_description_goes_on() -> None:
    # concurrent.futures.html: three chunks of ThreadPoolExecutor's entry, each under its signature
    sig = "- class concurrent.futures.ThreadPoolExecutor(max_workers=None, thread_name_prefix=''):"
    other = "- class concurrent.futures.ProcessPoolExecutor(max_workers=None, mp_context=None):"
    was = "Changed in version 3.5: If max_workers is None, it defaults to 5 x CPUs."
    now = "Changed in version 3.8: Default value of max_workers is min(32, cpus + 4)."
    pages = [
        f"ThreadPoolExecutor\n{sig}\n{was}",
        f"ThreadPoolExecutor\n{sig}\n{now}",
        f"ProcessPoolExecutor\n{other}\nOn Windows, max_workers must be less than or equal to 61.",
        f"{sig}\ninitializer is an optional callable that is called at the start of each worker thread.",
    ]
    sources = [Source(url="u/cf", title="cf", text=t, score=0.9 - 0.1 * n) for n, t in enumerate(pages)]
    [merged] = rank.merge_pages(sources)
    lines = merged.text.splitlines()
    # said again once another entry came between: the last chunk would read as ProcessPoolExecutor's
    assert lines.count(sig) == 2
    assert merged.text.index(other) < merged.text.rindex(sig)
    assert f"{was}\n\n{now}" in merged.text
