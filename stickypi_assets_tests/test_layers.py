"""The package's layers: imports point downward only, and the core imports no Dagster (README "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

from stickypi_assets_tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "stickypi_assets"

#: What each part of the package may import from the package (besides itself), bottom to top.
ALLOWED: dict[str, set[str]] = {
    "settings": set(),
    "formats": set(),
    "storage": {"formats", "settings"},
    "ml": {"formats", "storage.keys"},
    "synth": {"formats", "storage", "ml", "settings"},
    "active": {"formats", "storage", "ml", "synth", "settings"},
    "pipeline": {"formats", "storage", "ml", "active", "settings"},
    "lifecycle": {"formats", "storage", "ml", "active", "settings"},
    "orchestration.partitions": {"storage", "settings"},
    "orchestration.conditions": {"settings"},
    "orchestration.resources": {"storage", "ml", "lifecycle", "settings"},
    "orchestration.assets": {"orchestration.partitions", "orchestration.conditions", "orchestration.resources",
                             "pipeline", "lifecycle", "active", "storage", "ml", "formats", "settings"},
    "orchestration.automation": {"orchestration.partitions", "orchestration.resources", "orchestration.assets",
                                 "pipeline", "lifecycle", "storage", "ml", "settings"},
    "definitions": {"orchestration", "ml"},
    "demo": {"definitions", "orchestration", "pipeline", "lifecycle", "active", "synth", "storage", "ml", "formats",
             "settings"},
    "cli": {"demo", "pipeline", "lifecycle", "active", "synth", "storage", "ml", "formats", "settings"},
}  # fmt: skip
#: Parts that must not import Dagster at all (the core, usable from a notebook without it).
DAGSTER_FREE = ("settings", "formats", "storage", "ml", "active", "synth", "pipeline", "lifecycle")


def _part(module: str) -> str:
    """The most specific key of ``ALLOWED`` that ``module`` (dotted, below the package) belongs to."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in ALLOWED:
            return ".".join(parts[:n])
    return parts[0]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        if parts:
            yield ".".join(parts), path


def test_imports_point_downward_only():
    wrong = []
    for module, path in _modules():
        own = _part(module)
        for name in _imports(path):
            if not name.startswith("stickypi_assets."):
                continue
            target = name.removeprefix("stickypi_assets.")
            if any(target == a or target.startswith(a + ".") for a in {own, *ALLOWED.get(own, set())}):
                continue
            wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_the_core_imports_no_dagster():
    users = [module for module, path in _modules() if _part(module).split(".")[0] in DAGSTER_FREE
             and any(n == "dagster" or n.startswith(("dagster.", "dagster_")) for n in _imports(path))]  # fmt: skip
    assert users == []


def test_only_definitions_settings_and_init_at_the_root():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "definitions.py", "settings.py"]
