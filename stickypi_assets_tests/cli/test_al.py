"""`stickypi al rank-images | rank-tuboids` through ``cli.main``: a ranked batch with reasons, annotated items
never asked for, bad inputs reported and the rest ranked, bad mixes refused on one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from stickypi_assets.cli import main
from stickypi_assets.ml.uid.config import save_config
from stickypi_assets.ml.uid.model import MaskRCNNDetector
from stickypi_assets_tests.cli.test_uid_sim import jpeg_folder, stem
from stickypi_assets_tests.ml.itc.helpers import trained_bundle  # noqa: F401 (fixture)
from stickypi_assets_tests.ml.uid.test_model import TINY

UID = TINY.replace(score_threshold=0.0, tile_size=128, tile_overlap=16, tile_batch_size=4)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def uid_bundle(tmp_path_factory) -> Path:
    """A UID bundle with random weights: scores are meaningless, but every path runs."""
    root = tmp_path_factory.mktemp("uid")
    save_config(UID, root / "config" / "config.yaml")
    torch.manual_seed(0)
    MaskRCNNDetector(UID).save(root / "output" / "model_final.pth")
    return root


def test_rank_images_asks_for_a_batch_with_reasons_and_reports_bad_jpegs(uid_bundle, tmp_path, capsys):
    target = jpeg_folder(tmp_path / "jpg")
    out = tmp_path / "scores.csv"
    code = main(["al", "rank-images", "-b", str(uid_bundle), "-t", str(target), "--budget", "5", "--passes", "3",
                 "--window-hours", "0", "-o", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1  # a corrupt JPEG and a foreign file name are reported, the rest ranked
    assert f"not scored: {stem(2)}: cannot decode image" in printed and "foreign.jpg" in printed
    batch = [line for line in printed.splitlines() if line[:4].strip().rstrip(".").isdigit()]
    assert len(batch) == 2  # stem 0 and 1; stem 3 is annotated (a_<stem>.svg), never asked for
    assert stem(3) not in "\n".join(batch) and all("[" in line and "]" in line for line in batch)
    scores = pd.read_csv(out)
    assert set(scores["item"]) == {stem(k) for k in range(4)}
    assert scores.set_index("item").loc[stem(2), "status"] == "error"
    ok = scores[scores["status"] == "ok"]
    assert ok["maskal_certainty"].between(0, 1).all() and set(ok["maskal_pass"]) <= {"boxes", "masks"}
    assert (ok["maskal_pass"] == "masks").sum() == 1  # 20% of 3 images, rounded up


def test_rank_images_is_deterministic_for_a_seed(uid_bundle, tmp_path, capsys):
    target = jpeg_folder(tmp_path / "jpg")
    args = ["al", "rank-images", "-b", str(uid_bundle), "-t", str(target), "--passes", "2", "--window-hours", "0"]
    main([*args, "-o", str(tmp_path / "a.csv")])
    main([*args, "-o", str(tmp_path / "b.csv")])
    capsys.readouterr()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv"))


def test_bad_mix_and_empty_folder_are_one_line_errors(uid_bundle, tmp_path, capsys):
    target = jpeg_folder(tmp_path / "jpg")
    assert main(["al", "rank-images", "-b", str(uid_bundle), "-t", str(target), "--mix", "maskal:0.5,magic:1"]) == 1
    err = capsys.readouterr().err
    assert "unknown images sampler 'magic'" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main(["al", "rank-images", "-b", str(uid_bundle), "-t", str(tmp_path / "empty")]) == 1
    assert "nothing to rank" in capsys.readouterr().err


def test_rank_tuboids_scores_every_tuboid(trained_bundle, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "tuboids.csv"
    code = main(["al", "rank-tuboids", "-b", str(trained_bundle), "-t", str(trained_bundle / "data"),
                 "--budget", "4", "--passes", "4", "-o", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and "annotate next (4 tuboids)" in printed
    scores = pd.read_csv(out)
    assert len(scores) > 4 and scores["item"].is_unique
    for column in ("margin", "entropy", "bald", "frame_disagreement"):
        assert scores[column].between(0, 1).all()
