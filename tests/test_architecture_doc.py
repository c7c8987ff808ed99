"""docs/architecture.md against the code: the page a newcomer reads first must not drift from the tree.

The page's house is a code block that starts with ``src/groundglass/``: one line per module, a package
as ``name/`` with its modules indented under it (its line stands for its ``__init__.py``). Lines whose
first word is neither a ``.py`` file nor a folder (descriptions carried over, ``--`` group titles) are
not entries. A module added, moved or renamed without its line fails here, and so does a line, or any
``*.py`` path the page's prose names, for a file that is gone.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "groundglass"
DOC = ROOT / "docs" / "architecture.md"


def code_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def house_entries() -> tuple[set[str], set[str]]:
    """The modules and the folders the house names, as paths relative to ``src/groundglass``."""
    blocks = [b for b in code_blocks(DOC.read_text()) if b and b[0].startswith("src/groundglass/")]
    assert len(blocks) == 1, "docs/architecture.md needs one code block that starts with src/groundglass/"
    modules: set[str] = set()
    folders: set[str] = set()
    stack: list[tuple[int, str]] = []  # (indent, folder name with its slash)
    for line in blocks[0]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        word = line.split()[0]
        if not (word.endswith(".py") or word.endswith("/")):
            continue  # a description carried over, or a group title
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "".join(name for _, name in stack) + word
        if word.endswith("/"):
            stack.append((indent, word))
        if not path.startswith("src/groundglass/") or path == "src/groundglass/":
            continue
        relative = path.removeprefix("src/groundglass/")
        (folders if word.endswith("/") else modules).add(relative.rstrip("/"))
    return modules, folders


def code_modules() -> tuple[set[str], set[str]]:
    """The modules (``__init__.py`` aside) and the packages under ``src/groundglass``."""
    modules: set[str] = set()
    packages: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if "__pycache__" in relative:
            continue
        if path.name == "__init__.py":
            if path.parent != PACKAGE:
                packages.add(path.parent.relative_to(PACKAGE).as_posix())
        else:
            modules.add(relative)
    return modules, packages


def test_every_module_and_package_has_its_line_in_the_house() -> None:
    named_modules, named_folders = house_entries()
    modules, packages = code_modules()
    assert not sorted(modules - named_modules), (
        "docs/architecture.md's house has no line for these modules: add one each (what it does), "
        f"under its package: {sorted(modules - named_modules)}"
    )
    assert not sorted(packages - named_folders), (
        f"docs/architecture.md's house has no line for these packages: {sorted(packages - named_folders)}"
    )


def test_the_house_names_no_module_that_is_gone() -> None:
    named_modules, named_folders = house_entries()
    gone = sorted(m for m in named_modules if not (PACKAGE / m).is_file())
    gone += sorted(f + "/" for f in named_folders if not (PACKAGE / f).is_dir())
    assert not gone, f"docs/architecture.md's house names what src/groundglass no longer holds: {gone}"


def test_every_python_file_the_page_names_exists() -> None:
    """A ``name.py`` or ``folder/name.py`` anywhere on the page (the flows, the server) is a real file:
    a path from the repository root, or a module of the package named by its path's end."""
    modules, _ = code_modules()
    names = set(re.findall(r"[\w./]*\w\.py\b", DOC.read_text()))
    missing = []
    for name in sorted(names):
        if (ROOT / name).is_file() or (PACKAGE / name).is_file():
            continue
        if any(m == name or m.endswith("/" + name) for m in modules):
            continue
        missing.append(name)
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
