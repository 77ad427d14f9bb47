"""`stickypi uid check-data` on a bundle with hostile SVGs: one line per bad file, the good files still checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stickypi_assets.cli import main
from stickypi_assets.formats import uid_svg
from stickypi_assets_tests.formats.test_uid_svg import BLUE_SQUARE, svg_doc

GOOD = ("a_good.svg", "z_good.svg")
DEEP = "<g>" * 100_000 + BLUE_SQUARE + "</g>" * 100_000
NAN_STROKE = '<path id="nan" style="stroke: rgb(nan, 0, 0)" d="M30,30 L40,30 L40,40 Z"/>'
HUGE_ARC = '<path id="arc" style="stroke:#0000ff" d="M10,10 A1e308,1e308 0 0,1 20,20 L10,20 Z"/>'


@pytest.fixture
def hostile_bundle(tmp_path: Path) -> Path:
    """Two good files around three hostile ones: deep nesting (fatal), a NaN colour and a huge arc (paths)."""
    data = tmp_path / "data"
    data.mkdir()
    for name in GOOD:
        (data / name).write_bytes(svg_doc(BLUE_SQUARE))
    (data / "deep.svg").write_bytes(svg_doc(DEEP))
    (data / "nan_colour.svg").write_bytes(svg_doc(NAN_STROKE + BLUE_SQUARE))
    (data / "huge_arc.svg").write_bytes(svg_doc(HUGE_ARC + BLUE_SQUARE))
    return tmp_path


def test_check_data_records_a_hostile_file_and_goes_on(hostile_bundle: Path, capsys) -> None:
    assert main(["uid", "check-data", "-b", str(hostile_bundle), "--json"]) == 1  # some file failed
    by_file = {r["file"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(by_file) == ["a_good.svg", "deep.svg", "huge_arc.svg", "nan_colour.svg", "z_good.svg"]
    deep = by_file["deep.svg"]
    assert (deep["n_instances"], deep["split"]) == (None, None)
    assert deep["warnings"] == ["error: deep.svg: elements nested deeper than 1000 levels (hostile or broken file)"]
    for name in GOOD:  # before and after the bad file in name order
        assert by_file[name]["n_instances"] == 1 and by_file[name]["warnings"] == []
    # the hostile paths cost only themselves: the good square of each file is read, the reason recorded
    nan, arc = by_file["nan_colour.svg"], by_file["huge_arc.svg"]
    assert nan["n_instances"] == 1 and arc["n_instances"] == 1
    assert nan["warnings"] == [
        "nan_colour.svg: path 'nan': invalid stroke colour (colour 'rgb(nan, 0, 0)': channel 'nan' is not a "
        "finite number); skipped"
    ]
    assert arc["warnings"][0].startswith("huge_arc.svg: path 'arc': cannot parse path data (arc geometry is not")


def test_check_data_records_an_unexpected_exception_with_its_type(hostile_bundle: Path, monkeypatch, capsys) -> None:
    real_read = uid_svg.read_uid_svg

    def flaky_read(path, *args, **kwargs):
        if Path(path).name == "a_good.svg":
            raise RuntimeError("reader bug")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(uid_svg, "read_uid_svg", flaky_read)
    assert main(["uid", "check-data", "-b", str(hostile_bundle)]) == 1
    out = capsys.readouterr().out
    assert "    - error: unexpected RuntimeError: reader bug" in out
    assert "    - error: deep.svg: elements nested deeper than 1000 levels" in out
    assert "5 files: 3 instances" in out and "2 unreadable" in out  # z_good, nan_colour, huge_arc still counted
