"""docs/configuration.md is generated from the config classes' ``#:`` comments and must stay complete and current."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from stickypi_assets.ml.config_docs import field_comments, render
from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.uid.config import UidConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
GENERATOR = "python -m stickypi_assets.ml.config_docs > docs/configuration.md"


def test_configuration_md_is_up_to_date() -> None:
    assert DOC.exists(), f"{DOC} is missing: run `{GENERATOR}`"
    assert DOC.read_text(encoding="utf-8") == render(), f"{DOC} is out of date: run `{GENERATOR}`"


@pytest.mark.parametrize("cls", [UidConfig, SimConfig, ItcConfig], ids=lambda c: c.__name__)
def test_every_config_field_is_documented(cls: type) -> None:
    comments = field_comments(cls)
    missing = [f.name.upper() for f in dataclasses.fields(cls) if f.name != "warnings" and not comments.get(f.name)]
    assert not missing, f"{cls.__name__} fields without a #: comment: {missing}"


@dataclass
class _Example:
    """Docstring: not a field."""

    #: First line of a comment
    #: that goes on for a second line.
    documented: int = 1

    def method(self) -> int:
        #: A comment inside a method is not a field's.
        local: int = 2
        return local

    undocumented: str = "x"


def test_field_comments_parses_a_small_dataclass() -> None:
    comments = field_comments(_Example)
    assert comments["documented"] == "First line of a comment that goes on for a second line."
    assert comments["undocumented"] == ""
    assert "local" not in comments
    assert set(comments) == {"documented", "undocumented"}
