"""Website ingestion from a real HTTP server on 127.0.0.1, and the SSRF guard."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx
import pytest

from groundglass.answer.index import LocalIndex, NothingIngestedError, add_sources
from groundglass.answer.index.crawl import crawl
from groundglass.answer.index.documents import Document, Skipped
from groundglass.answer.netguard import BlockedAddressError, Policy, check_url, guarded_client
from groundglass.config import load_settings


def _crawl_settings(gg_home, **crawl):
    fetch = {f"fetch__{k}": crawl.pop(k) for k in list(crawl) if k.startswith("crawl_")}
    return load_settings(fetch__allow_private=True, **fetch, **{f"crawl__{k}": v for k, v in crawl.items()})


def _run(site, settings, start: str = "/") -> tuple[dict[str, Document], dict[str, str]]:
    docs: dict[str, Document] = {}
    skipped: dict[str, str] = {}
    for item in crawl(site.base + start, settings.crawl, settings.fetch):
        path = urlsplit(item.uri).path
        if isinstance(item, Skipped):
            skipped[path] = item.reason
        else:
            docs[path] = item
    return docs, skipped


def test_crawl_follows_links_and_sitemap_obeys_robots_and_limits(site_server, gg_home) -> None:
    docs, skipped = _run(site_server, _crawl_settings(gg_home, max_depth=2))
    assert set(docs) == {
        "/",
        "/about.html",
        "/guides/lamp-maintenance.html",
        "/guides/fog-signals.md",
        "/docs/manual.txt",
        "/orphan.html",
        "/guides/deep/level2.html",
    }
    # orphan.html is linked from nowhere: only the sitemap knows it
    assert "Biscuit" in docs["/orphan.html"].text
    assert skipped["/private/secret.html"] == "disallowed by robots.txt"
    assert "/private/secret.html" not in site_server.requests  # robots.txt is read before fetching
    assert "/index.html" in site_server.requests  # fetched, but the same page as "/": kept once
    assert skipped["/logo.png"] == "unsupported content type image/png"
    assert "/guides/deep/level3.html" not in docs  # depth 3 > max_depth 2
    assert not any("example.com" in p for p in skipped)  # other hosts are never queued
    lamp = docs["/guides/lamp-maintenance.html"]
    assert (lamp.kind, lamp.title, lamp.date) == ("html", "Lamp and lens maintenance", "2023-05-17")
    assert lamp.uri == site_server.base + "/guides/lamp-maintenance.html"
    assert docs["/guides/fog-signals.md"].kind == "markdown"
    assert docs["/docs/manual.txt"].kind == "text"


def test_crawl_page_limit_and_depth_zero(site_server, gg_home) -> None:
    before = len(site_server.requests)
    docs, _ = _run(site_server, _crawl_settings(gg_home, max_pages=2))
    pages = [p for p in site_server.requests[before:] if p not in ("/robots.txt", "/sitemap.xml")]
    assert pages == ["/", "/index.html"]  # two pages fetched (the second is "/" again: kept once)
    assert set(docs) == {"/"}
    docs, _ = _run(site_server, _crawl_settings(gg_home, max_depth=0))
    assert set(docs) == {"/"}


def test_crawl_redirects_stay_on_site(site_server, gg_home) -> None:
    docs, skipped = _run(site_server, _crawl_settings(gg_home, max_depth=0), start="/redirect-about")
    assert set(docs) == {"/about.html"}
    docs, skipped = _run(site_server, _crawl_settings(gg_home, max_depth=0), start="/redirect-offsite")
    assert docs == {} and skipped["/redirect-offsite"] == "redirected to another host (http://example.com/)"


def test_crawl_byte_limit(site_server, gg_home) -> None:
    docs, skipped = _run(site_server, _crawl_settings(gg_home, max_depth=0, crawl_max_bytes=500))
    assert docs == {} and "fetch.crawl_max_bytes" in skipped["/"]


def test_crawl_reads_its_old_keys_for_one_release(site_server, gg_home) -> None:
    """crawl.allow_private and crawl.max_bytes (now fetch.allow_private, fetch.crawl_max_bytes) still
    steer the crawler, with a warning naming the new key."""
    with (
        pytest.warns(
            FutureWarning, match=r"crawl\.allow_private is deprecated .* write fetch\.allow_private"
        ),
        pytest.warns(FutureWarning, match=r"crawl\.max_bytes is deprecated .* write fetch\.crawl_max_bytes"),
    ):
        settings = load_settings(crawl__allow_private=True, crawl__max_bytes=500, crawl__max_depth=0)
    assert (settings.fetch.allow_private, settings.fetch.crawl_max_bytes) == (True, 500)
    docs, skipped = _run(site_server, settings)
    assert docs == {} and "fetch.crawl_max_bytes" in skipped["/"]  # reached the loopback site, cut at 500


def test_website_ingest_and_search(site_server, gg_home) -> None:
    settings = _crawl_settings(gg_home)
    index = LocalIndex.open(settings, "site", create=True)
    report = add_sources(index, [site_server.base + "/"], progress=False)
    assert report.added == 8  # everything but the robots-disallowed page and the image
    top = index.search("How should I clean the Fresnel lens prisms?", k=3)[0]
    assert top.url == site_server.base + "/guides/lamp-maintenance.html"
    assert top.date == "2023-05-17" and "linen cloth" in top.text
    assert index.search("handshake", k=3, mode="bm25") == []  # only on the disallowed page
    again = add_sources(index, [site_server.base + "/"], progress=False)
    assert (again.added, again.unchanged) == (0, 8)
    index.close()


# --------------------------------------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ],
)
def test_private_and_metadata_addresses_are_refused(address: str) -> None:
    assert not Policy().allows(ipaddress.ip_address(address))
    assert Policy(allow_private=True).allows(ipaddress.ip_address(address))


def test_public_addresses_pass() -> None:
    assert Policy().allows(ipaddress.ip_address("93.184.216.34"))
    assert Policy().allows(ipaddress.ip_address("2606:4700::1111"))


def test_ingest_of_a_loopback_site_is_refused_without_allow_private(site_server, index_settings) -> None:
    assert index_settings.fetch.allow_private is False
    index = LocalIndex.open(index_settings, "web", create=True)
    before = len(site_server.requests)
    with pytest.raises(NothingIngestedError, match=r"refusing to fetch from 127\.0\.0\.1") as info:
        add_sources(index, [site_server.base + "/"], progress=False)
    assert "allow_private" in info.value.message
    port = urlsplit(site_server.base).port
    with pytest.raises(BlockedAddressError, match="refusing"):  # a name that resolves to loopback
        check_url(f"http://localhost:{port}/", Policy())
    assert len(site_server.requests) == before  # not a single request reached the server
    index.close()


def test_the_connection_itself_is_guarded(site_server) -> None:
    """Without any pre-check, the guarded client still refuses to connect to loopback."""
    port = urlsplit(site_server.base).port
    with guarded_client(Policy()) as client, pytest.raises(BlockedAddressError):
        client.get(f"http://localhost:{port}/")


def test_redirects_are_rechecked(site_server) -> None:
    """127.0.0.1 is trusted explicitly; its redirect to 127.0.0.2 is not, and is refused at connect time."""
    policy = Policy(allowed_networks=["127.0.0.1/32"])
    with guarded_client(policy) as client:
        assert client.get(site_server.base + "/redirect-about").status_code == 200  # same address: fine
        with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.2"):
            client.get(site_server.base + "/redirect-private")
    with httpx.Client(follow_redirects=False) as plain:  # the server really does redirect there
        assert "127.0.0.2" in plain.get(site_server.base + "/redirect-private").headers["location"]
