"""Images of the pages a web search read, for ``return_images``: found, filtered, ranked, measured.

- Found in the page's HTML (lxml, which the crawler already uses), and among the image results of a
  provider that has them (SearXNG's ``images`` category, sized by their ``resolution``; Brave's image
  search, sized by their ``properties``; their pages held to the search's domain filter): the page's
  ``og:image`` (with
  ``og:image:width``/``height``/``alt``) and its ``<img>`` elements, each with its alt text (or
  title) and the text around it (the ``<figcaption>`` of its figure, else its parent's text). Images
  given as ``data:`` URIs, and those declared smaller than :data:`MIN_SIDE` pixels (icons, tracking
  pixels), are left out.
- Filtered by :class:`ImageFilters`: Perplexity's ``image_domain_filter`` (``["example.com",
  "-ads.example"]``, as ``search_domain_filter``) and ``image_format_filter`` (``["png", "jpeg"]``,
  by the URL's extension, or by the content type when the image had to be fetched).
- Ranked by relevance to the question: the share of the question's words found in the image's alt
  text, title and surrounding text (a page's own ``og:image`` breaks ties: it is the picture the page
  chose for itself).
- Measured: the width and height come from the page (``width``/``height`` attributes, the ``og:image``
  dimensions); an image the page does not size is fetched through the page reader (its SSRF guard,
  politeness and timeout) up to :data:`MAX_IMAGE_BYTES` and measured with Pillow. One that cannot be
  fetched or decoded is dropped. Every URL returned passed the reader's address checks, fetched or not.

Hand-written over lxml because no maintained library extracts a page's images with their context;
the parts that are general (HTML parsing, decoding images, address checks) are lxml's, Pillow's and
:mod:`groundglass.answer.netguard`'s.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from groundglass.answer.search.filters import SearchFilters
from groundglass.errors import GroundglassError
from groundglass.log import get_logger
from groundglass.threads import HTML_LOCK

if TYPE_CHECKING:
    from groundglass.answer.reader import PageReader

log = get_logger(__name__)

MIN_SIDE = 50  # pixels: smaller declared images are icons, spacers or tracking pixels
MAX_IMAGE_BYTES = 2_000_000  # the most fetched to measure one image
MAX_PER_PAGE = 20  # images kept from one page, in page order, before ranking
FORMATS = {
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "png": "png",
    "gif": "gif",
    "webp": "webp",
    "svg": "svg",
    "avif": "avif",
}
IMAGE_TYPES = {f"image/{f}" for f in ("jpeg", "png", "gif", "webp", "avif")} | {"image/svg+xml"}
_WORD = re.compile(r"[a-z0-9]+")
_STOP = set(
    "a an and are as at be by for from how in is it of on or the to was what when where which who why "
    "with".split()
)


@dataclass(frozen=True)
class ImageFilters:
    """Which images a request wants (``return_images`` with its filters)."""

    allow_domains: tuple[str, ...] = ()
    deny_domains: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()  # normalised: jpeg, png, gif, webp, svg, avif

    @classmethod
    def build(cls, domains: list[str] | None = None, formats: list[str] | None = None) -> ImageFilters:
        """Checked filters from the API's values (errors name ``image_domain_filter`` /
        ``image_format_filter``)."""
        try:
            checked = SearchFilters.build(domains=domains)
        except GroundglassError as exc:
            raise GroundglassError(
                exc.message.replace("search_domain_filter", "image_domain_filter"),
                exc.fix,
                param="image_domain_filter",
            ) from None
        out: list[str] = []
        for f in formats or []:
            name = FORMATS.get(str(f).strip().lower().lstrip("."))
            if name is None:
                raise GroundglassError(
                    f"image_format_filter entry {f!r} is not an image format",
                    f"use some of {', '.join(sorted(set(FORMATS)))}",
                    param="image_format_filter",
                )
            if name not in out:
                out.append(name)
        return cls(checked.allow_domains, checked.deny_domains, tuple(out))

    def as_key(self) -> dict[str, Any]:
        return {
            "allow": sorted(self.allow_domains),
            "deny": sorted(self.deny_domains),
            "formats": sorted(self.formats),
        }

    def check_domain(self, url: str) -> bool:
        return SearchFilters(self.allow_domains, self.deny_domains).check_domain(url) is None

    def check_format(self, fmt: str | None) -> bool:
        return not self.formats or fmt in self.formats


@dataclass
class PageImage:
    image_url: str
    origin_url: str  # the page it is on
    title: str  # its alt text (or title attribute), else the page's title
    width: int | None = None
    height: int | None = None
    context: str = ""  # the caption or text around it (ranking only)
    og: bool = False  # the page's own og:image
    score: float = 0.0

    def public(self) -> dict[str, Any]:
        """As the API returns it."""
        out = asdict(self)
        for k in ("context", "og", "score"):
            out.pop(k)
        return out


def url_format(url: str) -> str | None:
    """The image format its URL's extension says (``.../a.JPG`` -> ``jpeg``), or None."""
    path = urlsplit(url).path.lower()
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    return FORMATS.get(ext)


def _int(value: Any) -> int | None:
    m = re.match(r"\s*(\d{1,5})(?:px)?\s*$", str(value or ""))
    return int(m.group(1)) if m else None


def _text(value: str | None, limit: int = 300) -> str:
    return " ".join((value or "").split())[:limit]


def page_images(html: bytes | str, page_url: str, page_title: str = "") -> list[PageImage]:
    """The images a page shows (og:image first, then ``<img>`` in page order), without duplicates."""
    import lxml.etree
    import lxml.html

    try:
        with HTML_LOCK:  # one page at a time: see groundglass.threads
            tree = lxml.html.fromstring(html, base_url=page_url)
    except (ValueError, lxml.etree.ParserError):
        return []
    found: dict[str, PageImage] = {}

    def add(src: str | None, **kw: Any) -> None:
        if not src or src.strip().startswith("data:") or len(found) >= MAX_PER_PAGE:
            return
        url = urljoin(page_url, src.strip())
        if urlsplit(url).scheme not in ("http", "https") or url in found:
            return
        w, h = kw.get("width"), kw.get("height")
        if (w is not None and w < MIN_SIDE) or (h is not None and h < MIN_SIDE):
            return
        found[url] = PageImage(image_url=url, origin_url=page_url, **kw)

    meta = {
        (m.get("property") or m.get("name") or "").strip().lower(): m.get("content")
        for m in tree.iter("meta")
        if m.get("content")
    }
    add(
        meta.get("og:image") or meta.get("og:image:url") or meta.get("twitter:image"),
        title=_text(meta.get("og:image:alt") or meta.get("og:title") or page_title),
        width=_int(meta.get("og:image:width")),
        height=_int(meta.get("og:image:height")),
        context=_text(meta.get("og:description") or meta.get("description")),
        og=True,
    )
    for img in tree.iter("img"):
        figure = next((a for a in img.iterancestors() if a.tag == "figure"), None)
        caption = figure.find(".//figcaption") if figure is not None else None
        around = caption if caption is not None else img.getparent()
        add(
            img.get("src") or img.get("data-src"),
            title=_text(img.get("alt") or img.get("title") or page_title),
            width=_int(img.get("width")),
            height=_int(img.get("height")),
            context=_text(around.text_content() if around is not None else ""),
        )
    return list(found.values())


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def rank_images(images: list[PageImage], query: str) -> list[PageImage]:
    """``images`` best first: the share of the query's words in each image's alt text, title and
    context; the page's og:image first among equals, then page order."""
    wanted = _words(query)
    for im in images:
        have = _words(f"{im.title} {im.context}")
        im.score = round(len(wanted & have) / len(wanted), 4) if wanted else 0.0
    return sorted(images, key=lambda im: (-im.score, not im.og))


def _measure(data: bytes) -> tuple[int, int, str | None]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.width, im.height, (im.format or "").lower() or None


async def select_images(
    reader: PageReader, images: list[PageImage], filters: ImageFilters, query: str, limit: int
) -> list[PageImage]:
    """Up to ``limit`` of ``images``, ranked, filtered, every URL past the reader's address checks, and
    measured (fetched only when the page did not give both sides)."""
    from groundglass.answer.netguard import check_url

    out: list[PageImage] = []
    seen: set[str] = set()
    for im in rank_images(images, query):
        if len(out) >= limit:
            break
        if im.image_url in seen or not filters.check_domain(im.image_url):
            continue
        seen.add(im.image_url)
        fmt = url_format(im.image_url)
        if fmt is not None and not filters.check_format(fmt):
            continue
        try:
            if im.width is None or im.height is None or fmt is None:
                fetched = await reader.fetch_binary(im.image_url, IMAGE_TYPES, MAX_IMAGE_BYTES)
                if fetched.content_type == "image/svg+xml":
                    fmt = "svg"
                    if im.width is None or im.height is None:
                        continue  # an SVG's size is its viewBox's business: not measured here
                else:
                    w, h, fmt = await asyncio.to_thread(_measure, fetched.data)
                    im.width, im.height = im.width or w, im.height or h
            else:
                await asyncio.to_thread(check_url, im.image_url, reader.policy)
        except Exception as exc:  # unreachable, refused, too large, not an image: not returned
            log.info("image_dropped", url=im.image_url, reason=str(exc)[:200])
            continue
        if not filters.check_format(FORMATS.get(fmt or "", fmt)):
            continue
        out.append(im)
    return out
