"""The Siamese matcher learns from random init on pairs built from ONE real UID SVG (synthetic motion).

Frame 1 of each pair is frame 0 shifted by up to 8 px, with a brightness change and noise; every insect's
outline moves with the image plus up to 3 px of jitter; ~20 % of insects escape (inpainted away). Training
pairs come from the left two thirds of the card, validation pairs from the right third, so validation
insects were never seen in training. The network is the reference topology with narrower layers
(16/32/32/64 channels, 256-d embedding) to train on one CPU thread in about a minute.

Figures measured when this test was written (1 thread, ~60 s): validation M balanced accuracy 0.999 and
AUC 1.0 (the distance input alone separates most pairs, which is why S is checked too); appearance-only S
after the Siamese stage: balanced accuracy 0.73 at the 0.5 cut (0.5 at init: every score on one side of
the cut) and AUC 0.87, on 50+ positives and 1000+ negatives of unseen insects.
"""

from __future__ import annotations

import numpy as np
import pytest

from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.dataset import PairSource
from stickypi_assets.ml.sim.predict import load_matcher
from stickypi_assets.ml.sim.tracking import Tracker
from stickypi_assets.ml.sim.train import train, validate
from stickypi_assets_tests.conftest import stickypi_path
from stickypi_assets_tests.ml.sim.synthetic import DEVICE, moved_pair, moved_sequence, pair_time, region

SVG = "5595c586.2020-07-15_15-57-38.svg"  # 112 insects


@pytest.mark.slow
def test_siamese_matcher_learns_on_real_insects(tmp_path):
    doc = read_uid_svg(stickypi_path("uid", SVG))
    image = doc.decode_image()
    rng = np.random.default_rng(0)
    train_img, train_inst = region(image, doc.instances, 0, 1728)
    val_img, val_inst = region(image, doc.instances, 1728, image.shape[1])
    assert len(train_inst) > 50 and len(val_inst) > 25
    sources = [
        PairSource.from_pair(moved_pair(train_img, train_inst, rng, pair_time(k)), f"train{k}", "0" * 32, "train")
        for k in range(4)
    ] + [
        PairSource.from_pair(moved_pair(val_img, val_inst, rng, pair_time(10 + k)), f"val{k}", "f" * 32, "validation")
        for k in range(2)
    ]
    config = SimConfig(
        channels=[16, 32, 32, 64], embedding_size=256, ims_per_batch=32, checkpoint_period=40,
        siam_rounds=120, siam_base_lr=1e-3, dist_ar_rounds=60, dist_ar_base_lr=0.05, final_rounds=20,
        final_base_lr=1e-4,
    )  # fmt: skip
    records = []
    train(tmp_path, config=config, sources=sources, on_validation=records.append)
    start = records[0]
    after_siamese = [r for r in records if r["stage"] == "siamese"][-1]
    # appearance alone (S): from chance to clearly better than chance on insects never seen in training
    assert start["s_balanced_accuracy"] == pytest.approx(0.5, abs=0.05)
    assert after_siamese["s_balanced_accuracy"] > 0.65
    assert after_siamese["s_auc"] > 0.78
    assert after_siamese["loss"] < start["loss"]
    metrics = validate(tmp_path, tmp_path / "validation", config=config, sources=sources)
    print("SIM learning test:", {k: metrics[k] for k in ("balanced_accuracy", "auc", "s_balanced_accuracy", "s_auc")},
          "S after the Siamese stage:", after_siamese["s_balanced_accuracy"], after_siamese["s_auc"])
    assert metrics["balanced_accuracy"] > 0.9
    assert metrics["auc"] > 0.95
    assert metrics["n_pos"] > 40 and metrics["n_neg"] > 1000

    # The trained matcher tracks unseen insects through a short sequence (6 frames, 20 min apart).
    matcher, tracked_config, _ = load_matcher(tmp_path)
    frames = moved_sequence(val_img, val_inst, np.random.default_rng(5), 6, pair_time(20))
    result = Tracker(matcher, tracked_config).track(frames, device=DEVICE)
    pure = [t for t in result.tuboids if len({o.instance.name for o in t.observations}) == 1]
    full = {f"g{k}" for k in range(len(val_inst))} & {i.name for i in frames[-1].instances}
    recovered = {t.observations[0].instance.name for t in pure if len(t) == len(frames)}
    print(f"tracking: {len(result.tuboids)} tuboids, {len(pure)} pure; {len(recovered & full)}/{len(full)} "
          "insects present throughout recovered as one full-length tuboid")
    assert len(pure) == len(result.tuboids)
    assert len(recovered & full) >= 0.9 * len(full)
