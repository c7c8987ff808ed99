"""The page reader against a real web site on 127.0.0.1: extraction, limits, faults and the SSRF guard."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from groundglass.answer.reader import PageReader, ReadError, ReadPage, decode_body, detect_language
from groundglass.config import FetchSettings

LOOPBACK = ["127.0.0.1/32"]


def reader_settings(**kw: Any) -> FetchSettings:
    base: dict[str, Any] = {
        "allowed_networks": LOOPBACK,
        "per_host_delay_s": 0.0,
        "per_host_concurrency": 8,
        "timeout_s": 2.0,
        "max_bytes": 200_000,
        "max_redirects": 5,
    }
    base.update(kw)
    return FetchSettings(**base)


def read(url: str, **kw: Any) -> ReadPage:
    async def go() -> ReadPage:
        async with PageReader(reader_settings(**kw)) as reader:
            return await reader.read(url)

    return asyncio.run(go())


def read_error(url: str, **kw: Any) -> ReadError:
    with pytest.raises(ReadError) as info:
        read(url, **kw)
    return info.value


# --- extraction ------------------------------------------------------------------------------------


def test_html_main_text_title_and_date(web_site: Any) -> None:
    page = read(f"{web_site.base_url}/lighthouses.html")
    doc = page.document
    assert doc.title == "The Eddystone Lighthouse: four towers on one rock"
    assert doc.date == "2024-05-10"
    assert "John Smeaton, often called the father of civil engineering" in doc.text
    for boilerplate in ("Accept all cookies", "Sign me up", "Privacy policy", "SeaDog42", "Shipwrecks"):
        assert boilerplate not in doc.text, boilerplate
    assert page.final_url == page.url and not page.truncated and page.replaced_bytes == 0


def test_pdf_and_plain_text(web_site: Any) -> None:
    pdf = read(f"{web_site.base_url}/report.pdf")
    assert pdf.document.kind == "pdf"
    assert pdf.document.title == "Lighthouse Board annual report 1883"
    assert pdf.document.date == "2024-01-15"
    assert "designed by James Douglass" in pdf.document.text
    txt = read(f"{web_site.base_url}/keepers.txt")
    assert txt.document.kind == "text"
    assert "automated in 1982" in txt.document.text


def test_language_detection_and_declared_language(web_site: Any) -> None:
    de = read(f"{web_site.base_url}/leuchtturm.html")
    assert de.declared_language == "de"
    assert detect_language(de) == "de"
    en = read(f"{web_site.base_url}/tides.html")
    assert detect_language(en) == "en"


def test_invalid_utf8_is_replaced_not_fatal(web_site: Any) -> None:
    page = read(f"{web_site.base_url}/bad-utf8.html")
    assert page.replaced_bytes >= 3
    assert "dovetailed together" in page.document.text
    assert "\ufffd" in page.document.text


def test_decode_body_uses_declared_charset() -> None:
    assert decode_body("café".encode("latin-1"), "iso-8859-1") == ("café", 0)
    meta = b"<html><head><meta charset='windows-1252'></head><body>\x93quoted\x94</body></html>"
    assert "\u201cquoted\u201d" in decode_body(meta, None)[0]
    assert decode_body(b"\xef\xbb\xbfhello", "latin-1") == ("hello", 0)  # a BOM wins
    assert decode_body(b"ok \xff", "no-such-charset") == ("ok \ufffd", 1)


# --- limits and faults -----------------------------------------------------------------------------


def test_huge_page_is_cut_at_the_byte_limit(web_site: Any) -> None:
    started = time.monotonic()
    page = read(f"{web_site.base_url}/huge", max_bytes=100_000)
    assert page.truncated
    assert "polished the great lens" in page.document.text
    assert time.monotonic() - started < 10  # it did not download 20 MB first


def test_endless_stream_stops_at_the_byte_limit(web_site: Any) -> None:
    page = read(f"{web_site.base_url}/endless", max_bytes=50_000)
    assert page.truncated
    assert "never ends" in page.document.text


def test_trickling_and_hanging_pages_time_out(web_site: Any) -> None:
    for path in ("/drip", "/slow"):
        started = time.monotonic()
        err = read_error(f"{web_site.base_url}{path}", timeout_s=1.0)
        assert err.kind == "timeout", (path, err.reason)
        assert time.monotonic() - started < 3.0


def test_redirects_loop_limit_and_follow(web_site: Any) -> None:
    err = read_error(f"{web_site.base_url}/loop/a")
    assert err.kind == "redirects" and "loop" in err.reason
    err = read_error(f"{web_site.base_url}/chain/6", max_redirects=3)
    assert err.kind == "redirects" and "more than 3" in err.reason
    page = read(f"{web_site.base_url}/chain/2", max_redirects=3)
    assert page.final_url == f"{web_site.base_url}/lighthouses.html"
    assert page.url == f"{web_site.base_url}/chain/2"


@pytest.mark.parametrize(
    ("path", "kind", "words"),
    [
        ("/binary-as-html", "binary", "binary content served as text/html"),
        ("/pdf-as-html", "binary", "PDF file served as text/html"),
        ("/image.png", "content_type", "unsupported content type image/png"),
        ("/status/500", "http_error", "HTTP 500"),
        ("/status/404", "http_error", "HTTP 404"),
        ("/to-file", "bad_url", "not an http(s) URL"),
    ],
)
def test_faulty_pages_are_refused_with_a_reason(web_site: Any, path: str, kind: str, words: str) -> None:
    err = read_error(f"{web_site.base_url}{path}")
    assert err.kind == kind
    assert words in err.reason


def test_read_many_reports_every_failure_and_keeps_order(web_site: Any) -> None:
    base = web_site.base_url
    urls = [
        f"{base}/image.png",
        f"{base}/tides.html",
        f"{base}/loop/a",
        f"{base}/lens.html",
        f"{base}/keepers.txt",
    ]

    async def go() -> tuple[list[ReadPage], list[Any]]:
        async with PageReader(reader_settings()) as reader:
            return await reader.read_many(
                urls, want=2, accept=lambda p: "no tides" if "tides" in p.final_url else None
            )

    pages, failures = asyncio.run(go())
    assert [p.url for p in pages] == [f"{base}/lens.html", f"{base}/keepers.txt"]
    kinds = {f.url.rsplit("/", 1)[1]: f.kind for f in failures}
    assert kinds == {"image.png": "content_type", "tides.html": "filtered", "a": "redirects"}


def test_a_page_read_early_is_fetched_once_and_given_to_the_read_that_asks_for_it(web_site: Any) -> None:
    base = web_site.base_url
    before = {p: web_site.hits[p] for p in ("/lighthouses.html", "/tides.html", "/lens.html")}

    async def go() -> tuple[list[ReadPage], list[Any]]:
        async with PageReader(reader_settings()) as reader:
            reader.read_early(f"{base}/lighthouses.html")
            reader.read_early(f"{base}/lighthouses.html")  # asked twice: still one read
            reader.read_early(f"{base}/tides.html")  # never asked for: left to the reader's close
            await asyncio.sleep(0.5)  # both are fetched before the reads below ask
            return await reader.read_many([f"{base}/lighthouses.html", f"{base}/lens.html"])

    pages, failures = asyncio.run(go())
    assert not failures
    assert pages[0].document.title == "The Eddystone Lighthouse: four towers on one rock"
    assert [p.url for p in pages] == [f"{base}/lighthouses.html", f"{base}/lens.html"]
    hits = {p: web_site.hits[p] - before[p] for p in before}
    assert hits == {"/lighthouses.html": 1, "/tides.html": 1, "/lens.html": 1}


def test_per_host_politeness_spaces_request_starts(web_site: Any) -> None:
    urls = [f"{web_site.base_url}/keepers.txt?n={i}" for i in range(4)]

    async def go(delay: float) -> float:
        async with PageReader(reader_settings(per_host_delay_s=delay, per_host_concurrency=1)) as reader:
            started = time.monotonic()
            pages, failures = await reader.read_many(urls)
            assert len(pages) == 4 and not failures
            return time.monotonic() - started

    assert asyncio.run(go(0.3)) >= 0.9  # 4 starts, 3 gaps of at least 0.3 s


# --- the SSRF guard -------------------------------------------------------------------------------


def test_loopback_is_refused_unless_allowed(web_site: Any) -> None:
    err = read_error(f"{web_site.base_url}/lighthouses.html", allowed_networks=[])
    assert err.kind == "blocked" and "127.0.0.1" in err.reason
    # after DNS resolution: a name that resolves to loopback is refused as well
    err = read_error(f"http://localhost:{web_site.port}/lighthouses.html", allowed_networks=[])
    assert err.kind == "blocked"
    assert web_site.hits["/lighthouses.html"] == 0  # refused before connecting
    allowed = read(f"{web_site.base_url}/lighthouses.html", allowed_networks=[], allow_private=True)
    assert allowed.document.title


def test_every_redirect_hop_is_checked(web_site: Any) -> None:
    err = read_error(f"{web_site.base_url}/to-private")  # 127.0.0.1 allowed, 127.0.0.2 is not
    assert err.kind == "blocked" and "127.0.0.2" in err.reason
    err = read_error(f"{web_site.base_url}/to-metadata")
    assert err.kind == "blocked" and "169.254.169.254" in err.reason
    assert web_site.hits["/to-private"] == 1 and web_site.hits["/lighthouses.html"] == 0


# --- the extraction cache --------------------------------------------------------------------------------


def test_a_page_fetched_again_unchanged_is_not_extracted_again(web_site: Any, tmp_path: Any) -> None:
    import json
    import sqlite3

    from groundglass.answer.search.disk_cache import DiskCache

    cache = DiskCache(tmp_path / "texts.sqlite3", max_rows=10)

    def read_cached(path: str) -> ReadPage:
        async def go() -> ReadPage:
            async with PageReader(reader_settings(), extract_cache=cache) as reader:
                return await reader.read(f"{web_site.base_url}/{path}")

        return asyncio.run(go())

    first = read_cached("lighthouses.html")
    conn = sqlite3.connect(tmp_path / "texts.sqlite3")
    [(key, stored)] = conn.execute("SELECT key, vec FROM v").fetchall()
    # what the cache holds is what the next read returns: mark it, and the mark comes back
    data = json.loads(stored)
    assert data["title"] == first.document.title and data["sections"][0][1] == first.document.sections[0].text
    marked = json.dumps({**data, "title": "from the cache"}).encode()
    conn.execute("UPDATE v SET vec = ? WHERE key = ?", (marked, key))
    conn.commit()
    again = read_cached("lighthouses.html")
    assert again.document.title == "from the cache" and again.document.text == first.document.text
    # another page (other bytes) is a new entry; an unreadable entry is extracted again
    assert read_cached("keepers.txt").document.kind == "text"
    conn.execute("UPDATE v SET vec = ? WHERE key = ?", (b"not json", key))
    conn.commit()
    assert read_cached("lighthouses.html").document.title == first.document.title
    assert conn.execute("SELECT count(*) FROM v").fetchone()[0] == 2
    conn.close()
