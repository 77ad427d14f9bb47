"""``stickypi itc`` sub-commands through their parser (wired into the main CLI by ``add_parser``)."""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from stickypi_assets.cli.common import run_command
from stickypi_assets.cli.itc import add_parser
from stickypi_assets_tests.ml.itc.helpers import TINY, make_bundle


def run(argv: Sequence[str]) -> int:
    """What ``stickypi.cli.main`` does with a registered sub-command (usage errors exit 2, data errors 1)."""
    parser = argparse.ArgumentParser(prog="stickypi")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_command(args.func, args)


def test_predict_dir_writes_results_csv(trained_bundle: Path, tmp_path: Path, capsys):
    target = tmp_path / "target"
    shutil.copytree(trained_bundle / "data", target)
    assert run(["itc", "predict-dir", "--bundle-dir", str(trained_bundle), "--target", str(target)]) == 0
    assert "classified 16 tuboid(s)" in capsys.readouterr().out
    df = pd.read_csv(target / "results.csv", index_col=0)
    assert list(df.columns)[:8] == ["type", "order", "family", "genus", "species", "label", "pattern", "directory"]
    assert list(df.columns)[8:] == ["tuboid_id", "probability", "prob_0", "prob_1", "prob_2"]
    assert run(["itc", "predict-dir", "-b", str(trained_bundle), "-t", str(target)]) == 2  # exists, no --force
    (sorted(target.glob("*/*"))[0] / "tuboid.jpg").unlink()
    assert run(["itc", "predict-dir", "-b", str(trained_bundle), "-t", str(target), "--force"]) == 1  # bad input
    assert "unreadable" in capsys.readouterr().out


def test_validate_writes_its_outputs(trained_bundle: Path, tmp_path: Path, capsys):
    out = tmp_path / "validation"
    assert run(["itc", "validate", "--bundle-dir", str(trained_bundle), "--target", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 6 and 0 <= metrics["accuracy"] <= 1
    for name in ("confusion_matrix.csv", "per_class.csv", "metrics.json", "confusion_matrix.png", "results.csv"):
        assert (out / name).is_file()
    assert '"accuracy"' in capsys.readouterr().out


def test_train_and_usage_errors(tmp_path: Path, capsys):
    bundle = make_bundle(tmp_path / "bundle", TINY.replace(n_rounds=2))
    assert run(["itc", "train", "--bundle-dir", str(bundle), "--max-iter", "1"]) == 0
    assert "rounds 0..1" in capsys.readouterr().out
    assert run(["itc", "train", "-b", str(bundle), "--max-iter", "2"]) == 0
    assert "rounds 1..2" in capsys.readouterr().out
    assert run(["itc", "train", "-b", str(bundle), "--restart-training", "--max-iter", "1"]) == 0
    assert run(["itc", "train", "-b", str(tmp_path / "nowhere")]) == 1  # a missing bundle is a data error
    assert run(["itc", "validate", "-b", str(tmp_path / "nowhere"), "-t", str(tmp_path / "v")]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == f"stickypi: error: no such bundle folder: {tmp_path / 'nowhere'}"
    assert not (tmp_path / "nowhere").exists()  # nothing created for a bundle that does not exist
    with pytest.raises(SystemExit) as exc:
        run(["itc", "predict-dir", "-b", str(bundle)])  # --target missing
    assert exc.value.code == 2
