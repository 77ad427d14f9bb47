"""Markdown reference of every bundle config key, generated from the config dataclasses' own comments.

Each stage's config class (the stage table's ``config_class``: ``UidConfig``, ``SimConfig``, ``ItcConfig``)
documents its fields with ``#:`` comments next to the code; this module turns them into
``docs/configuration.md`` so the reference cannot drift from the code (a test regenerates it and compares).
Run ``python -m stickypi_assets.ml.config_docs > docs/configuration.md`` after changing a config.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

_FIELD = re.compile(r"^    (\w+)\s*:\s*[^=]+?(?:=.*)?$")

HEADER = """# Bundle configuration keys

Generated from the config classes by `python -m stickypi_assets.ml.config_docs` (do not edit by hand).
Each bundle's `config/config.yaml` holds these keys in upper case (e.g. `SCORE_THRESHOLD: 0.85`); missing keys take
the defaults below, unknown keys are reported. The original tools' files load as they are.
"""


def field_comments(cls: type) -> dict[str, str]:
    """``{field name: the #: comment lines right above it, joined}`` read from the class source."""
    comments: dict[str, str] = {}
    block: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            block.append(stripped[2:].strip())
            continue
        match = _FIELD.match(line)
        if match and not stripped.startswith(("def ", "@")):
            comments[match.group(1)] = " ".join(block)
        if not stripped.startswith("#"):
            block = []
    return comments


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _cell(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    if len(text) > 60:
        text = text[:57] + "…"
    return text.replace("|", "\\|")


def config_table(cls: type, title: str, summary: str) -> str:
    comments = field_comments(cls)
    rows = [f"## {title}", "", summary, "", "| key | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if not f.repr or f.name == "warnings":
            continue
        text = comments.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{f.name.upper()}` | `{_cell(_default(f))}` | {text} |")
    return "\n".join(rows) + "\n"


def render() -> str:
    from stickypi_assets.ml.stages import STAGES

    tables = [config_table(s.config_class, f"{s.title} (`{s.bundle_name}`)", s.config_summary) for s in STAGES.values()]
    return "\n".join([HEADER, *tables])


if __name__ == "__main__":
    print(render(), end="")
