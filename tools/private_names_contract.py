"""An import-linter contract: no module uses another module's private names (``_name``).

A leading underscore says "only this module relies on me": a private name used from elsewhere is a
seam that nobody can see, so moving or changing it breaks a module its owner never knew about. The
contract reads each module of ``packages`` (with :mod:`ast`, nothing is imported) and reports

- ``from groundglass.x import _name`` (also relative: ``from .x import _name``), and
- ``module._name`` where ``module`` was imported as a module of the package,

whenever the name belongs to a module other than the importer. ``allow`` lists exceptions as
``importer -> module._name``; the config file says why each one is there.

Used by ``make lint`` (``.importlinter``, ``contract_types``); import-linter's own contract types cover
layers, cycles and private *modules*, not private names.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class PrivateNamesContract(Contract):
    type_name = "private_names"

    packages = fields.SetField(subfield=fields.StringField())
    allow = fields.SetField(subfield=fields.StringField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        allowed = {" ".join(a.split()) for a in (self.allow or set())}  # type: ignore[attr-defined]
        breaches: list[dict[str, Any]] = []
        used_allowances: set[str] = set()
        for package in sorted(self.packages):  # type: ignore[attr-defined]
            for module in sorted(m for m in graph.modules if m == package or m.startswith(package + ".")):
                path = _source(module)
                if path is None:
                    continue
                for line, owner, name in private_uses(module, path, graph.modules):
                    key = f"{module} -> {owner}.{name}"
                    if key in allowed:
                        used_allowances.add(key)
                        continue
                    breaches.append({"importer": module, "owner": owner, "name": name, "line": line})
        stale = sorted(allowed - used_allowances)
        return ContractCheck(
            kept=not breaches and not stale,
            metadata={"breaches": breaches, "stale": stale},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for b in check.metadata["breaches"]:
            output.print_error(
                f"- {b['importer']} (l.{b['line']}) uses {b['owner']}.{b['name']}, a private name of "
                f"another module: make it public (drop the underscore) or move the code that needs it",
                bold=False,
            )
        for key in check.metadata["stale"]:
            output.print_error(f"- allow entry '{key}' matches nothing any more: remove it", bold=False)
        output.new_line()


def _source(module: str) -> Path | None:
    """The file of ``module`` (found from its top package's folder, without importing it)."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(module: str, path: Path, modules: set[str]) -> list[tuple[int, str, str]]:
    """(line, owning module, name) for each private name of another module of ``modules`` used here."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    module_aliases: dict[str, str] = {}  # local name -> a module of the package bound to it
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            for alias in node.names:
                full = f"{source}.{alias.name}"
                if full in modules:  # `from package import submodule`
                    module_aliases[alias.asname or alias.name] = full
                elif source in modules and source != module and _private(alias.name):
                    found.append((node.lineno, source, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    module_aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in module_aliases
            and _private(node.attr)
            and module_aliases[node.value.id] != module
        ):
            found.append((node.lineno, module_aliases[node.value.id], node.attr))
    return found
