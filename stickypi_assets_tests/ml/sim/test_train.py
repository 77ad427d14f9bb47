"""Three-stage training mechanics on tiny data: checkpoints, final rounds saved, resume, metrics, validate."""

from __future__ import annotations

import json

import numpy as np

from stickypi_assets.ml.checkpoints import load_weights_file
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.dataset import PairDataset, PairSource
from stickypi_assets.ml.sim.model import SiameseNet, load_checkpoint, save_checkpoint
from stickypi_assets.ml.sim.train import evaluate, train, validate
from stickypi_assets_tests.ml.sim.helpers import TINY_NET, tiny_sim_pair


def sources() -> list[PairSource]:
    return [
        PairSource.from_pair(tiny_sim_pair(seed=0), "a", md5="0" * 32),  # md5 < 'bf': train
        PairSource.from_pair(tiny_sim_pair(seed=1, hours=1), "b", md5="1" * 32),
        PairSource.from_pair(tiny_sim_pair(seed=2, hours=2), "c", md5="f" * 32),  # validation
    ]


def tiny_config(**kw) -> SimConfig:
    base = dict(TINY_NET, siam_rounds=3, dist_ar_rounds=3, final_rounds=2, checkpoint_period=2, ims_per_batch=4)
    base.update(kw)
    return SimConfig(**base)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_three_stages_save_final_rounds_and_log(tmp_path):
    result = train(tmp_path, config=tiny_config(), sources=sources())
    assert result.rounds == {"siamese": 3, "dist_ar": 3, "full": 2}
    weights = tmp_path / "output" / "model_final.pth"
    assert result.weights == weights and weights.exists()
    checkpoint = load_weights_file(weights)  # what the trainer writes passes the weights-only check
    assert checkpoint["progress"] == {"stage": "done"}  # the last rounds were saved (defect 20)
    records = read_jsonl(tmp_path / "output" / "metrics.jsonl")
    seen = [(r["stage"], r["round"]) for r in records]
    # start of each stage, every checkpoint (round 2), and the end of stages whose last round was not one
    assert seen == [("siamese", 0), ("siamese", 2), ("siamese", 3), ("dist_ar", 0), ("dist_ar", 2),
                    ("dist_ar", 3), ("full", 0), ("full", 2)]
    assert all(r["n_pos"] == 2 and r["n_neg"] == 10 for r in records)  # the validation source only
    assert all(0 <= r["accuracy"] <= 1 and r["loss"] > 0 for r in records)

    metrics = validate(tmp_path, tmp_path / "val", config=tiny_config(), sources=sources())
    results = json.loads((tmp_path / "val" / "results.json").read_text())
    assert len(results) == 12 and {r["gt"] for r in results} == {0.0, 1.0}
    assert all(set(r) == {"pred", "gt"} and 0 <= r["pred"] <= 1 for r in results)
    saved = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert saved == metrics and saved["model_version"] == result.version
    assert {"auc", "accuracy", "recall", "specificity", "balanced_accuracy", "s_auc"} <= set(saved)


def test_resume_continues_an_interrupted_run(tmp_path):
    config = tiny_config()
    net = SiameseNet.from_config(config)
    # as if the run had stopped after round 1 of stage 2
    save_checkpoint(net, tmp_path / "output" / "model_final.pth", config, progress={"stage": "dist_ar", "round": 1})
    result = train(tmp_path, config=config, sources=sources())
    assert result.rounds == {"siamese": 0, "dist_ar": 2, "full": 2}
    # restart ignores the weights and runs the whole schedule
    result = train(tmp_path, config=config, sources=sources(), restart=True)
    assert result.rounds == {"siamese": 3, "dist_ar": 3, "full": 2}
    # resuming a finished run is a new schedule from its weights (fine-tuning), as the original did
    result = train(tmp_path, config=config, sources=sources())
    assert result.rounds == {"siamese": 3, "dist_ar": 3, "full": 2}


def test_a_resumed_run_keeps_the_callers_progress_choice(tmp_path, capsys):
    """Resuming read the checkpoint's position into ``progress``, so a quiet resumed run drew bars."""
    config = tiny_config()
    save_checkpoint(SiameseNet.from_config(config), tmp_path / "output" / "model_final.pth", config,
                    progress={"stage": "dist_ar", "round": 1})  # fmt: skip
    train(tmp_path, config=config, sources=sources(), progress=False)
    assert "sim train" not in capsys.readouterr().err
    save_checkpoint(SiameseNet.from_config(config), tmp_path / "output" / "model_final.pth", config,
                    progress={"stage": "dist_ar", "round": 1})  # fmt: skip
    train(tmp_path, config=config, sources=sources(), progress=True)
    err = capsys.readouterr().err
    assert "sim train dist_ar" in err and "sim train full" in err


def test_progress_bars_only_when_asked_and_chunked_evaluation(tmp_path, capsys):
    config = tiny_config()
    train(tmp_path, config=config, sources=sources())
    validate(tmp_path, tmp_path / "val", config=config, sources=sources())
    assert capsys.readouterr().err == ""
    train(tmp_path, config=config, sources=sources(), restart=True, progress=True)
    err = capsys.readouterr().err
    for stage, n in (("siamese", 3), ("dist_ar", 3), ("full", 2)):
        assert f"sim train {stage}" in err and f"{n}/{n}" in err
    metrics = validate(tmp_path, tmp_path / "val", config=config, sources=sources(), progress=True)
    assert "sim validate" in capsys.readouterr().err and metrics["n_pos"] + metrics["n_neg"] == 12
    # scoring the pairs a few at a time (the progress steps) gives the one-batch scores, in the same order
    net, _ = load_checkpoint(tmp_path / "output" / "model_final.pth", config=config)
    val_set = PairDataset(sources(), "validation", crop_size=config.crop_size)
    whole = evaluate(net, val_set, batch_size=256)
    chunked = evaluate(net, val_set, batch_size=5, progress=True)
    assert "12/12" in capsys.readouterr().err
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
