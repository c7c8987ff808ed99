"""The naive retrieval-augmented pipeline that the documentation eval compares groundglass against.

What a first attempt looks like: the same search (the loopback SearXNG site, or the same local index),
the top pages, their text (trafilatura's plain-text extraction, default options), fixed 800-character
chunks, ranked by how many of the question's words they contain, the best 4 in one prompt ("answer from
these sources with [n] citations, or say you don't know"), llama-cpp-python called directly on the same
GGUF file with the same number of threads, greedy decoding. No dedupe, no relevance threshold, no
support check.

It runs as a command, one process per question, as groundglass's ``ask`` does in the eval, so the
seconds of both include starting Python and loading the model:

    .venv/bin/python -m bench.naive_rag --mode web --searxng http://127.0.0.1:PORT/searxng "question"
    .venv/bin/python -m bench.naive_rag --mode index --index pydocs "question"

It prints one JSON object: ``answer``, ``sources`` (the URL behind each ``[n]``), ``timings`` (s).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench.docqa_site import STOPWORDS

CHUNK_CHARS = 800
TOP_PAGES = 3  # what groundglass reads for a web answer at its default search_context_size ("low")
TOP_CHUNKS = 4
MAX_TOKENS = 512  # groundglass's cap at its default reasoning effort
STOP = STOPWORDS  # the loopback site's search ignores the same words
SYSTEM = (
    "Answer the question from these sources, citing them with [n] markers. If the sources do not "
    "contain the answer, say you don't know."
)


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if w not in STOP}


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size) if text[i : i + size].strip()]


def best_chunks(question: str, pages: list[tuple[str, str]], k: int = TOP_CHUNKS) -> list[tuple[str, str]]:
    """(url, chunk) of the ``k`` chunks sharing the most words with the question (earlier wins ties)."""
    q = words(question)
    scored = [
        (len(q & words(c)), i, url, c)
        for i, (url, c) in enumerate((url, c) for url, text in pages for c in chunks(text))
    ]
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [(url, c) for _, _, url, c in scored[:k]]


def prompt(question: str, picked: list[tuple[str, str]]) -> list[dict[str, str]]:
    sources = "\n\n".join(f"[{n}] {c}" for n, (_, c) in enumerate(picked, start=1))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"},
    ]


def extract(html: bytes) -> str:
    import trafilatura

    return trafilatura.extract(html.decode("utf-8", "replace")) or ""


def search_web(searxng: str, question: str) -> list[str]:
    import httpx

    r = httpx.get(searxng.rstrip("/") + "/search", params={"q": question, "format": "json"}, timeout=30)
    r.raise_for_status()
    return [hit["url"] for hit in r.json().get("results", [])][:TOP_PAGES]


def read_web(urls: list[str]) -> list[tuple[str, str]]:
    import httpx

    with httpx.Client(timeout=30) as client:
        return [(u, extract(client.get(u).content)) for u in urls]


def search_index(index: str, question: str, config: Path | None) -> list[str]:
    from groundglass.answer.index import LocalIndex
    from groundglass.config import load_settings

    settings = load_settings(config)
    with LocalIndex.open(settings, index) as idx:
        hits = idx.search(question, 20, mode="hybrid")
    return list(dict.fromkeys(h.url for h in hits))[:TOP_PAGES]


def read_files(urls: list[str]) -> list[tuple[str, str]]:
    return [(u, extract(Path(unquote(urlsplit(u).path)).read_bytes())) for u in urls]


def load_model(spec: str, threads: int | None, config: Path | None, repack: bool = True) -> Any:
    """llama-cpp-python's ``Llama`` on the model, with its defaults; ``repack=False`` loads the weights
    as stored, as groundglass does for Q4_K models on AVX-512 (:mod:`groundglass.answer.llm.repack`),
    to tell that gain apart from the pipeline's own."""
    from llama_cpp import Llama

    from groundglass.answer.llm.llama_cpp_runtime import default_threads
    from groundglass.answer.llm.load import parse_model_spec
    from groundglass.answer.llm.repack import model_params_with
    from groundglass.assets import ensure_model
    from groundglass.config import load_settings

    settings = load_settings(config)
    parsed = parse_model_spec(spec)
    path = ensure_model(parsed.name, settings, progress=False) if parsed.kind == "embedded" else parsed.path
    if path is None:
        raise SystemExit(f"naive_rag: model {spec!r} is not a local GGUF model")
    n = threads or settings.llm.threads or default_threads()
    with model_params_with(repack=repack):
        return Llama(
            model_path=str(path),
            n_ctx=settings.llm.context_length,
            n_threads=n,
            n_threads_batch=n,
            verbose=False,
        )


def answer(args: argparse.Namespace) -> dict[str, Any]:
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    llm = load_model(args.model, args.threads, args.config, repack=not args.no_repack)
    timings["load"] = time.perf_counter() - t0
    t = time.perf_counter()
    urls = (
        search_web(args.searxng, args.question)
        if args.mode == "web"
        else search_index(args.index, args.question, args.config)
    )
    timings["search"] = time.perf_counter() - t
    t = time.perf_counter()
    pages = read_web(urls) if args.mode == "web" else read_files(urls)
    timings["read"] = time.perf_counter() - t
    t = time.perf_counter()
    picked = best_chunks(args.question, pages)
    timings["rank"] = time.perf_counter() - t
    t = time.perf_counter()
    out = llm.create_chat_completion(
        messages=prompt(args.question, picked), max_tokens=args.max_tokens, temperature=0.0
    )
    timings["generate"] = time.perf_counter() - t
    text = out["choices"][0]["message"]["content"] or ""
    return {
        "answer": text.strip(),
        "sources": [u for u, _ in picked],
        "pages": urls,
        "usage": out.get("usage", {}),
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("question")
    p.add_argument("--mode", choices=["web", "index"], required=True)
    p.add_argument("--searxng", default="", help="SearXNG base URL (web mode)")
    p.add_argument("--index", default="pydocs", help="local index name (index mode)")
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    p.add_argument("--config", type=Path, default=None)
    p.add_argument(
        "--no-repack", action="store_true", help="load the weights as stored (llama.cpp repacks by default)"
    )
    args = p.parse_args(argv)
    if args.mode == "web" and not args.searxng:
        p.error("--mode web needs --searxng URL")
    if not args.question.strip():
        p.error("the question is empty")
    print(json.dumps(answer(args), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
