"""The `stickypi` command: help, uid check-data on the real UID annotations, warehouse commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stickypi_assets.cli import main
from stickypi_assets_tests.conftest import stickypi_path

# Reference 2.8/9.2: of the 15 SVGs here, these are validation by the md5 rule (the other 10 are train).
VALIDATION = {
    "0a5bb6f4.2020-06-30_20-41-05.svg",
    "0a5bb6f4.2020-07-02_18-59-29.svg",
    "15e612cd.2020-07-09_04-40-18.svg",
    "5595c586.2020-09-20_19-28-32.svg",
    "afbd6f68.2020-04-12_01-59-16.svg",
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A UID bundle whose data/ links to the real SVGs plus one broken file."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "data").mkdir()
    for svg in sorted(stickypi_path("uid").glob("*.svg")):
        (root / "data" / svg.name).symlink_to(svg)
    (root / "data" / "broken.svg").write_text("<svg><image xlink:href='data:nope'")
    return root


def test_help_lists_commands():
    out = subprocess.run(
        [sys.executable, "-m", "stickypi_assets.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for word in ("uid", "images", "warehouse", "demo"):
        assert word in out


def test_uid_check_data_json(bundle: Path, capsys):
    code = main(["uid", "check-data", "--bundle-dir", str(bundle), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # the broken file is reported, and flagged in the exit status
    by_file = {r["file"]: r for r in report}
    assert set(report[0]) == {"file", "n_instances", "split", "warnings"}
    broken = by_file.pop("broken.svg")
    assert broken["n_instances"] is None and broken["warnings"][0].startswith("error:")
    assert len(by_file) == 15
    assert {f for f, r in by_file.items() if r["split"] == "validation"} == VALIDATION
    afbd = by_file["afbd6f68.2020-04-12_01-59-16.svg"]
    assert afbd["n_instances"] == 149 and len(afbd["warnings"]) >= 2  # 151 paths, 2 degenerate
    assert by_file["e086a015.2020-06-11_19-25-02.svg"]["n_instances"] == 261
    assert by_file["5595c586.2020-09-20_19-28-32.svg"]["n_instances"] == 164


def test_uid_check_data_table_and_missing_bundle(bundle: Path, tmp_path: Path, capsys):
    main(["uid", "check-data", "-b", str(bundle)])
    out = capsys.readouterr().out
    assert "16 files:" in out and "10 train / 5 validation files, 1 unreadable" in out
    assert main(["uid", "check-data", "-b", str(tmp_path / "nope")]) == 1  # a missing input is a data error
    assert "data/*.svg" in capsys.readouterr().err


def test_sim_make_candidates_on_real_svgs(tmp_path: Path, capsys):
    from stickypi_assets.formats.sim_svg import read_sim_svg

    for svg in sorted(stickypi_path("uid").glob("08038ade.*.svg")):
        (tmp_path / svg.name).symlink_to(svg)
    assert main(["sim", "make-candidates", "--target", str(tmp_path)]) == 0
    assert "wrote 2 candidate pair SVG(s)" in capsys.readouterr().out
    pairs = sorted((tmp_path / "candidates" / "08038ade").glob("*.svg"))
    assert [p.name for p in pairs] == [
        "08038ade.2020-07-08_10-48-38.2020-07-17_22-27-31.svg",
        "08038ade.2020-07-17_22-27-31.2020-08-23_11-55-05.svg",
    ]
    pair = read_sim_svg(pairs[0])
    assert pair.device == "08038ade" and len(pair.frame0.instances) == 41
    assert main(["sim", "make-candidates", "--target", str(tmp_path)]) == 2  # refuses to overwrite
    assert "--force on the command line" in capsys.readouterr().err
