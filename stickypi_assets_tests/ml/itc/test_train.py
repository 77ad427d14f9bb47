"""Training loop mechanics on a tiny model: outputs, metrics log, checkpoints, resume, restart, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from stickypi_assets.ml.checkpoints import load_weights_file
from stickypi_assets.ml.itc.config import load_config, save_config
from stickypi_assets.ml.itc.train import train
from stickypi_assets_tests.ml.itc.helpers import LABELS, TINY, make_bundle


def _state(bundle: Path) -> dict[str, torch.Tensor]:
    return load_weights_file(bundle / "output" / "model_final.pth")["model"]


def test_train_writes_weights_metrics_and_resumes(tmp_path: Path):
    bundle = make_bundle(tmp_path / "bundle")
    result = train(bundle, progress=False)
    out = bundle / "output"
    assert (result.start_round, result.rounds) == (0, 4)
    assert (result.n_train, result.n_validation) == (10, 6)  # per label of 8: floor(8 * 191 / 255) = 5 train
    assert result.weights == out / "model_final.pth" and len(result.version) == 32
    assert load_config(out / "config.yaml") == TINY
    manifest = json.loads((out / "dataset.json").read_text())
    assert len(manifest["train"]) == 10 and len(manifest["validation"]) == 6 and manifest["report"]["skipped"] == []
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["event"], r["round"]) for r in records] == [
        ("validation", 0), ("train", 2), ("validation", 2), ("train", 4), ("validation", 4),
    ]  # fmt: skip
    assert all(r["loss"] > 0 for r in records) and records[-1]["n"] == 6
    assert result.last_validation == records[-1] and result.last_train_loss == records[-2]["loss"]
    assert load_weights_file(result.weights)["progress"] == {"round": 4}

    resumed = train(bundle, max_iter=6, progress=False)  # continues after round 4
    assert (resumed.start_round, resumed.rounds) == (4, 6) and resumed.version != result.version
    done = train(bundle, max_iter=6, progress=False)  # nothing left to do: weights untouched
    assert (done.start_round, done.rounds) == (6, 6) and done.version == resumed.version
    restarted = train(bundle, restart=True, max_iter=1, progress=False)  # fresh weights, round 0
    assert (restarted.start_round, restarted.rounds) == (0, 1)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path: Path):
    once = make_bundle(tmp_path / "once")
    twice = tmp_path / "twice"
    shutil.copytree(once, twice)
    train(once, progress=False)  # rounds 0-3 in one go
    train(twice, max_iter=2, progress=False)  # "interrupted" after round 1 ...
    resumed = train(twice, progress=False)  # ... and resumed: rounds 2-3
    assert resumed.start_round == 2
    a, b = _state(once), _state(twice)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_class_balance_by_loss_and_sgd_train(tmp_path: Path):
    config = TINY.replace(class_balance="loss", optimizer="sgd", base_lr=0.01, n_rounds=2, checkpoint_period=5)
    bundle = make_bundle(tmp_path / "bundle", config)
    result = train(bundle, progress=False)
    assert result.rounds == 2 and result.last_train_loss is not None


def test_other_labels_are_not_resumed_silently(tmp_path: Path):
    bundle = make_bundle(tmp_path / "bundle", TINY.replace(n_rounds=1))
    train(bundle, progress=False)
    save_config(
        TINY.replace(labels=LABELS[:2] + [[r"^Background.*", 2], [r"^Insecta.*", 3]]), bundle / "config" / "config.yaml"
    )
    with pytest.raises(ValueError, match="LABELS.*restart"):
        train(bundle, progress=False)
    assert train(bundle, restart=True, max_iter=1, progress=False).rounds == 1


def test_no_training_tuboids_is_a_clear_error(tmp_path: Path):
    bundle = make_bundle(tmp_path / "bundle", rows=[])
    with pytest.raises(ValueError, match="no training tuboids"):
        train(bundle, progress=False)
