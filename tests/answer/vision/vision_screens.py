"""Screenshots and signs rendered with Pillow (DejaVu fonts, shipped with Debian's fonts-dejavu-core),
real photos from scikit-image, and a word-accuracy measure. Shared by the vision tests and
bench/bench_vision.py."""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    path = FONT_DIR / name
    return ImageFont.truetype(str(path) if path.is_file() else name, size)


@dataclass(frozen=True)
class Screen:
    name: str
    image: Image.Image
    text: str  # what is written on it, line by line

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.image.save(buf, "PNG")
        return buf.getvalue()


TERMINAL_ERROR = [
    "$ python fetch_prices.py",
    "Traceback (most recent call last):",
    '  File "/home/ana/shop/fetch_prices.py", line 3, in <module>',
    "    import requests",
    "ModuleNotFoundError: No module named 'requests'",
]


def terminal(
    lines: list[str], *, size: int = 20, fg: str = "#d4d4d4", bg: str = "#1e1e1e", name: str = "terminal"
) -> Screen:
    """A terminal window: monospace text on a dark background, a title bar on top."""
    f = font("DejaVuSansMono.ttf", size)
    step = int(size * 1.55)
    width = int(max(len(line) for line in lines) * size * 0.61) + 48
    height = 36 + 24 + step * len(lines)
    img = Image.new("RGB", (width, height), bg)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, width, 30), fill="#3c3c3c")
    for i, colour in enumerate(("#ff5f56", "#ffbd2e", "#27c93f")):
        d.ellipse((12 + 22 * i, 9, 24 + 22 * i, 21), fill=colour)
    for i, line in enumerate(lines):
        d.text((20, 44 + i * step), line, fill=fg, font=f)
    return Screen(name, img, "\n".join(lines))


def sign(
    lines: list[tuple[str, int, bool]], *, bg: str = "#0b5d2e", fg: str = "white", name: str = "sign"
) -> Screen:
    """A road/town sign: (text, font size, bold) lines centred on a coloured board with a border."""
    fonts = [font("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size) for _, size, bold in lines]
    widths = [f.getbbox(t)[2] for (t, _, _), f in zip(lines, fonts, strict=True)]
    heights = [int(size * 1.35) for _, size, _ in lines]
    width, height = max(widths) + 160, sum(heights) + 120
    img = Image.new("RGB", (width, height), "#9db4c8")  # sky
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((20, 20, width - 20, height - 20), radius=24, fill=bg, outline=fg, width=6)
    y = 60
    for (text, _, _), f, w, h in zip(lines, fonts, widths, heights, strict=True):
        d.text(((width - w) // 2, y), text, fill=fg, font=f)
        y += h
    return Screen(name, img, "\n".join(t for t, _, _ in lines))


ZERMATT_SIGN = [("Welcome to", 40, False), ("ZERMATT", 96, True), ("Matterhorn Village", 40, False)]


def dialog(title: str, message: list[str], *, name: str = "dialog") -> Screen:
    """A light-theme error dialog: a title bar, a message in a proportional font, an OK button."""
    f_title, f_body = font("DejaVuSans-Bold.ttf", 18), font("DejaVuSans.ttf", 17)
    width = max(f_body.getbbox(m)[2] for m in [title, *message]) + 80
    height = 60 + 28 * len(message) + 70
    img = Image.new("RGB", (width, height), "#f3f3f3")
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, width, 40), fill="#d9d9d9")
    d.text((16, 10), title, fill="#111111", font=f_title)
    for i, line in enumerate(message):
        d.text((24, 56 + 28 * i), line, fill="#202020", font=f_body)
    d.rounded_rectangle((width - 110, height - 50, width - 24, height - 16), radius=6, fill="#2f6fdb")
    d.text((width - 82, height - 44), "OK", fill="white", font=f_title)
    return Screen(name, img, "\n".join([title, *message, "OK"]))


def bench_screens() -> list[Screen]:
    """The rendered screenshots the OCR benchmark reads."""
    return [
        terminal(TERMINAL_ERROR, name="python-traceback"),
        terminal(
            [
                "npm ERR! code EACCES",
                "npm ERR! syscall mkdir",
                "npm ERR! path /usr/local/lib/node_modules",
                "npm ERR! Error: EACCES: permission denied, mkdir '/usr/local/lib/node_modules'",
            ],
            size=18,
            name="npm-eacces",
        ),
        terminal(
            [
                "error[E0382]: borrow of moved value: `names`",
                "  --> src/main.rs:7:20",
                "help: consider cloning the value if the performance cost is acceptable",
            ],
            size=18,
            fg="#1f1f1f",
            bg="#fafafa",
            name="rust-borrow-light",
        ),
        dialog(
            "Disk Full",
            ["There is not enough space on the disk to save the file.", "Delete some files and try again."],
            name="disk-full-dialog",
        ),
        sign(ZERMATT_SIGN, name="zermatt-sign"),
        sign([("Gare de Lyon", 64, True), ("Sortie / Exit", 36, False)], bg="#1d3f8f", name="station-sign"),
    ]


# A small corpus whose right page each test image must find (one page per image, plus distractors).
SEARCH_CORPUS = {
    "python-modulenotfounderror.md": """# Fixing ModuleNotFoundError: No module named 'requests'

Python raises ModuleNotFoundError when an import statement names a package that is not installed in
the interpreter that runs the script. For "No module named 'requests'" install the package into the
same environment: `python -m pip install requests`, then run the script again with that interpreter.
""",
    "python-typeerror.md": """# TypeError: 'NoneType' object is not subscriptable

Python raises this TypeError when code indexes a value that is None, often the result of a function
that forgot to return something. Check what the function returns before indexing it.
""",
    "npm-eacces.md": """# npm ERR! code EACCES: permission denied

npm reports EACCES when it tries to write global packages to /usr/local/lib/node_modules without
permission. Install Node with a version manager or point npm's prefix at a folder you own.
""",
    "zermatt.md": """# Zermatt

Zermatt is a car-free mountain village in the canton of Valais, Switzerland, at the foot of the
Matterhorn. Visitors arrive by train from Visp or Täsch, and the Gornergrat railway climbs to 3,089 m.
""",
    "interlaken.md": """# Interlaken

Interlaken is a town in the Bernese Oberland, Switzerland, between Lake Thun and Lake Brienz. Mountain
railways run from there to the Jungfraujoch and to the village of Grindelwald.
""",
    "espresso.md": """# Espresso

Espresso is coffee brewed by forcing hot water under pressure through finely ground beans. A single
30 ml shot holds about 63 mg of caffeine and is topped by a layer of crema.
""",
    "green-tea.md": """# Green tea

Green tea is made from unoxidised leaves of Camellia sinensis. A cup holds about 30 mg of caffeine,
less than coffee, and it is brewed with water below boiling point.
""",
    "tabby-cat.md": """# Tabby cat

A tabby is any domestic cat whose coat has stripes, dots, lines or swirls, usually with a mark shaped
like an M on its forehead. Tabby is a pattern, not a breed.
""",
}


_WORD = re.compile(r"[\w']+")


def words(text: str) -> list[str]:
    return [w.strip("'").lower() for w in _WORD.findall(text) if w.strip("'")]


def word_accuracy(expected: str, read: str) -> float:
    """The share of the expected words that OCR read (as a multiset: each read word counts once)."""
    want = Counter(words(expected))
    got = Counter(words(read))
    total = sum(want.values())
    return sum(min(n, got[w]) for w, n in want.items()) / total if total else 1.0


def photo_png(name: str) -> bytes:
    """A scikit-image sample photo (coffee, chelsea, rocket, astronaut...) as PNG bytes."""
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(getattr(data, name)()).save(buf, "PNG")
    return buf.getvalue()
