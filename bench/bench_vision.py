"""Images that drive the search: OCR and labelling speed, OCR word accuracy, end-to-end stage times.

    .venv/bin/python -m bench.bench_vision [--repeat 3] [--threads N]

1. OCR on rendered screenshots and signs (tests/answer/vision/vision_screens.py: a Python traceback,
   npm and rustc errors, a dialog, two signs): seconds per image and the share of the written words
   read correctly. Ours: RapidOCR with text detection capped at 960 px on the longest side, pieces
   of a line joined, glued words split again. Baseline: RapidOCR's defaults (the shortest side scaled
   up to 736 px), raw output; ratios ours/baseline.
2. Labelling with EfficientNet-Lite0 on real photos (scikit-image; scikit-learn's china.jpg when
   installed): seconds per image, and whether the top label is one of the expected classes.
   Baseline: decoding and preprocessing the same images alone (what any classifier pays); ratio.
3. End to end at the retrieval level, split into stages: decode+validate, OCR, labels, queries,
   search (hybrid, every query) in a small local index of SEARCH_CORPUS, for the test images; and
   whether the best page is the expected one. Then the whole `groundglass ask --image` path through
   the engine, split into its stages (images, search, rank, first token, generation, citations);
   baseline: the engine answering the text query the image was turned into, without the image.

Model load times are reported apart; timings are medians over ``--repeat`` runs after a warm-up.
Timings are wall-clock on a shared machine: the load average printed at the top says how busy it was.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "answer" / "vision"))  # the rendered screenshots live with the tests

from vision_screens import (  # noqa: E402
    SEARCH_CORPUS,
    TERMINAL_ERROR,
    ZERMATT_SIGN,
    bench_screens,
    photo_png,
    sign,
    terminal,
    word_accuracy,
)

from groundglass.answer.vision import ImageInput, image_queries, load_images  # noqa: E402
from groundglass.answer.vision.facts import image_facts  # noqa: E402
from groundglass.answer.vision.labels import classifier, classify, preprocess  # noqa: E402
from groundglass.answer.vision.ocr import ocr_engine, read_text  # noqa: E402
from groundglass.config import load_settings  # noqa: E402

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
EXPECTED_LABELS: dict[str, set[str]] = {
    "coffee": {"espresso", "cup", "coffee mug"},
    "chelsea": CATS,
    "rocket": {"missile", "projectile", "space shuttle"},
    "china": {"palace", "bell cote", "monastery", "pagoda"},
    "astronaut": {"space shuttle", "spacesuit"},  # no spacesuit class in ImageNet-1k: expected to miss
}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(median seconds, last result) over ``repeat`` runs after one warm-up run."""
    result = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def ocr_section(repeat: int, threads: int | None) -> None:
    from rapidocr_onnxruntime import RapidOCR

    started = time.perf_counter()
    ocr_engine(960, threads)
    print(f"OCR model load (ours): {time.perf_counter() - started:.2f} s")
    baseline_engine = RapidOCR(intra_op_num_threads=threads or -1)

    def baseline(image: Image.Image) -> str:
        result, _ = baseline_engine(np.ascontiguousarray(np.asarray(image)[:, :, ::-1]))
        return "\n".join(text for _, text, _ in result or [])

    print(f"\n{'screen':<20} {'size':>9} {'ours s':>7} {'base s':>7} {'ours words':>10} {'base words':>10}")
    ours_t, base_t, ours_a, base_a = [], [], [], []
    for screen in bench_screens():
        image = screen.image.convert("RGB")
        t_ours, lines = timed(lambda image=image: read_text(image, threads=threads), repeat)
        t_base, raw = timed(lambda image=image: baseline(image), repeat)
        a_ours = word_accuracy(screen.text, "\n".join(line.text for line in lines))
        a_base = word_accuracy(screen.text, raw)
        ours_t.append(t_ours)
        base_t.append(t_base)
        ours_a.append(a_ours)
        base_a.append(a_base)
        size = f"{image.width}x{image.height}"
        print(f"{screen.name:<20} {size:>9} {t_ours:7.2f} {t_base:7.2f} {a_ours:10.1%} {a_base:10.1%}")
    mo, mb = statistics.mean(ours_t), statistics.mean(base_t)
    ao, ab = statistics.mean(ours_a), statistics.mean(base_a)
    print(f"OCR seconds per image: {mo:.2f} (baseline RapidOCR defaults {mb:.2f}; ratio {mo / mb:.2f}x)")
    print(f"OCR words read correctly: {ao:.1%} (baseline {ab:.1%}; ratio {ao / ab:.2f}x)")


def photos() -> dict[str, bytes]:
    out = {name: photo_png(name) for name in ("coffee", "chelsea", "rocket", "astronaut")}
    try:
        from sklearn.datasets import load_sample_image
    except ImportError:
        print("(scikit-learn is not installed: china.jpg skipped)")
        return out
    buf = io.BytesIO()
    Image.fromarray(load_sample_image("china.jpg")).save(buf, "JPEG", quality=92)
    out["china"] = buf.getvalue()
    return out


def label_section(repeat: int) -> None:
    started = time.perf_counter()
    classifier()
    print(f"\nLabel model load: {time.perf_counter() - started:.2f} s")
    print(f"{'photo':<10} {'size':>9} {'label s':>8} {'prep s':>7}  top labels")
    label_t, prep_t, hits = [], [], 0
    for name, blob in photos().items():
        t_label, labels = timed(
            lambda blob=blob: classify(Image.open(io.BytesIO(blob)).convert("RGB"), 3), repeat
        )
        t_prep, _ = timed(lambda blob=blob: preprocess(Image.open(io.BytesIO(blob)).convert("RGB")), repeat)
        label_t.append(t_label)
        prep_t.append(t_prep)
        hit = labels[0].name in EXPECTED_LABELS.get(name, set())
        hits += hit
        size = "x".join(map(str, Image.open(io.BytesIO(blob)).size))
        shown = ", ".join(f"{lb.name} {lb.score:.2f}" for lb in labels)
        print(f"{name:<10} {size:>9} {t_label:8.3f} {t_prep:7.3f}  {shown}{'' if hit else '  (miss)'}")
    ml, mp = statistics.mean(label_t), statistics.mean(prep_t)
    print(
        f"Labelling seconds per image: {ml:.3f} (baseline decode+preprocess {mp:.3f}; "
        f"ratio {ml / mp:.1f}x); top-1 as expected: {hits}/{len(label_t)}"
    )


def end_to_end_section(threads: int | None, model: str) -> None:
    from groundglass.answer.embeddings import get_embedder
    from groundglass.answer.index import LocalIndex, add_documents
    from groundglass.answer.index.documents import Document, Section

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=home, vision={"threads": threads})
        index = LocalIndex.open(settings, "vision-bench", create=True)
        docs = [
            Document(
                uri=f"file:///corpus/{name}",
                title=text.splitlines()[0].lstrip("# "),
                sections=[Section("", text.split("\n", 2)[2])],
                kind="markdown",
            )
            for name, text in SEARCH_CORPUS.items()
        ]
        add_documents(index, docs)
        get_embedder().encode(["warm up"])
        cases = [
            (
                "terminal",
                terminal(TERMINAL_ERROR).png(),
                "how do I fix this?",
                "python-modulenotfounderror.md",
            ),
            ("sign", sign(ZERMATT_SIGN).png(), "", "zermatt.md"),
            ("coffee", photo_png("coffee"), "how much caffeine is in this?", "espresso.md"),
            ("chelsea", photo_png("chelsea"), "", "tabby-cat.md"),
        ]
        print(
            f"\n{'image':<9} {'decode':>7} {'ocr':>6} {'labels':>7} {'queries':>8} {'search':>7} "
            f"{'total':>6}  best page"
        )
        totals = []
        for name, blob, question, expected in cases:
            t0 = time.perf_counter()
            (image,) = load_images([ImageInput.from_bytes(blob, name)], settings)
            t1 = time.perf_counter()
            facts = image_facts(image, settings.vision)
            t2 = time.perf_counter()
            queries = image_queries(facts, question, max_queries=settings.vision.max_queries)
            t3 = time.perf_counter()
            best = [index.search(q, k=1)[0].url.rsplit("/", 1)[-1] for q in queries]
            t4 = time.perf_counter()
            ocr_s, label_s = facts.timings.get("ocr", 0.0), facts.timings.get("labels", 0.0)
            totals.append(t4 - t0)
            verdict = "ok" if best[0] == expected else f"WRONG (expected {expected})"
            print(
                f"{name:<9} {t1 - t0:7.3f} {ocr_s:6.2f} {label_s:7.2f} {t3 - t2:8.4f} {t4 - t3:7.3f} "
                f"{t4 - t0:6.2f}  {best[0]} {verdict}"
            )
        print(f"Image question to retrieved pages: {statistics.mean(totals):.2f} s per image on average")
        index.close()
        answer_stages(settings, cases, model)


def answer_stages(settings: Any, cases: list[tuple[str, bytes, str, str]], model: str) -> None:
    """The engine end to end (`ask --image`), stage by stage, next to the same query as plain text."""
    from groundglass.answer.engine import Engine
    from groundglass.answer.types import AskRequest

    engine = Engine(
        settings.model_copy(
            update={
                "llm": settings.llm.model_copy(update={"model": model, "max_tokens": 48, "temperature": 0.0})
            }
        )
    )
    engine.answer(AskRequest.from_question("warm up: what is espresso?", index="vision-bench"))
    print(f"\nAnswer stages through the engine, model {model!r} (seconds; stage ends, cumulative)")
    print(
        f"{'image':<9} {'images':>7} {'search':>7} {'rank':>6} {'1st tok':>8} {'answer':>7} {'total':>6}  "
        f"{'text-only':>9} {'ratio':>6}  cited"
    )
    ratios = []
    for name, blob, question, _expected in cases:
        started = time.perf_counter()
        answer = engine.answer(
            AskRequest.from_question(
                question, index="vision-bench", images=[ImageInput.from_bytes(blob, name)]
            )
        )
        total = time.perf_counter() - started
        t = answer.timings
        started = time.perf_counter()
        engine.answer(AskRequest.from_question(answer.queries[0], index="vision-bench"))
        text_only = time.perf_counter() - started
        ratios.append(total / text_only)
        cited = answer.sources[0].url.rsplit("/", 1)[-1] if answer.sources else "-"
        widths = (("vision_s", 7), ("retrieve_s", 7), ("rank_s", 6), ("first_token_s", 8), ("generate_s", 7))
        stages = " ".join(f"{t.get(k, 0):{w}.2f}" for k, w in widths)
        print(f"{name:<9} {stages} {total:6.2f}  {text_only:9.2f} {total / text_only:6.2f}  {cited}")
    print(f"image question / the same query as text: {statistics.mean(ratios):.2f}x on average")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per image after a warm-up")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (OCR)")
    parser.add_argument("--model", default="default", help="model spec for the answer stages")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    ocr_section(args.repeat, args.threads)
    label_section(args.repeat)
    end_to_end_section(args.threads, args.model)


if __name__ == "__main__":
    main()
