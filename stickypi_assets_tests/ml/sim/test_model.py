"""The reference network's shape, the embedding cache, checkpoints loaded with map_location."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import torch

from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.features import CropStore, Frame, PairBatch, frame_pair_batch
from stickypi_assets.ml.sim.model import (
    Matcher,
    SiameseMatcher,
    SiameseNet,
    load_checkpoint,
    save_checkpoint,
    weights_version,
)
from stickypi_assets_tests.ml.sim.helpers import T0, TINY_NET, card, square


def test_reference_shapes():
    net = SiameseNet()  # 64/128/128/256 channels, 1024 embedding, 105 px
    assert net.branch[-1].in_features == 9216 and net.branch[-1].out_features == 1024
    assert [m.out_channels for m in net.branch if isinstance(m, torch.nn.Conv2d)] == [64, 128, 128, 256]
    assert [m.kernel_size[0] for m in net.branch if isinstance(m, torch.nn.Conv2d)] == [10, 7, 4, 4]
    assert [(m.in_features, m.out_features) for m in net.fusion if isinstance(m, torch.nn.Linear)] == [
        (6, 4), (4, 3), (3, 1)
    ]  # fmt: skip
    with torch.no_grad():
        s, q, m = net(torch.rand(2, 1, 105, 105), torch.rand(2, 1, 105, 105), torch.rand(2, 1, 105, 105),
                      torch.rand(2, 4))
    assert s.shape == q.shape == m.shape == (2,)
    assert bool(((m > 0) & (m < 1)).all())


def frames():
    c0 = [(40, 40), (120, 60), (200, 140)]
    c1 = [(42, 41), (121, 62), (60, 150)]
    f0 = Frame("f0", T0, [square(*c) for c in c0], image=card(centres=c0, seed=1))
    f1 = Frame("f1", T0 + timedelta(seconds=1200), [square(*c) for c in c1], image=card(centres=c1, seed=2))
    return f0, f1


def test_matcher_embeds_each_crop_once():
    torch.manual_seed(0)
    matcher = SiameseMatcher.from_config(SimConfig(**TINY_NET))
    assert isinstance(matcher, Matcher)
    f0, f1 = frames()
    rows, cols = np.meshgrid(range(3), range(3), indexing="ij")
    batch = frame_pair_batch(f0, rows.ravel(), f1, cols.ravel(), CropStore())
    scores = matcher.score_pairs(batch)
    assert scores.shape == (9,) and np.all((scores > 0) & (scores < 1))
    assert matcher.n_embedded == 9  # 3 x0 + 3 x1 + 3 x1_a0, not 27
    again = matcher.score_pairs(batch)
    assert matcher.n_embedded == 9
    np.testing.assert_allclose(again, scores)
    # the same pairs given as pixels (no cache keys) score the same
    pixels = PairBatch(distance=batch.distance, delta_t=batch.delta_t, area0=batch.area0, area1=batch.area1,
                       pixels=batch.crop_arrays())
    np.testing.assert_allclose(matcher.score_pairs(pixels), scores, rtol=1e-5, atol=1e-6)


def test_a_resegmented_frame_does_not_reuse_old_embeddings():
    """The matcher outlives a tracking call (cached resource): same image keys, new polygons, new embeddings."""
    torch.manual_seed(0)
    matcher = SiameseMatcher.from_config(SimConfig(**TINY_NET))
    f0, f1 = frames()
    pairs = (np.array([0, 1, 2]), np.array([0, 1, 2]))
    matcher.score_pairs(frame_pair_batch(f0, pairs[0], f1, pairs[1], CropStore()))
    # the same two images segmented again: instance 0 of f1 is now another insect
    g1 = Frame("f1", f1.datetime, [square(200, 140), *f1.instances[1:]], image=f1.image)
    again = matcher.score_pairs(frame_pair_batch(f0, pairs[0], g1, pairs[1], CropStore()))
    fresh = SiameseMatcher(matcher.net).score_pairs(frame_pair_batch(f0, pairs[0], g1, pairs[1], CropStore()))
    np.testing.assert_allclose(again, fresh, rtol=1e-5, atol=1e-6)
    assert matcher.n_embedded == 9 + 1  # only the crop that changed: the new instance 0 of f1


def test_checkpoint_round_trip_uses_map_location(tmp_path, monkeypatch):
    config = SimConfig(**TINY_NET)
    torch.manual_seed(1)
    net = SiameseNet.from_config(config)
    path = save_checkpoint(net, tmp_path / "output" / "model_final.pth", config, progress={"stage": "done"})
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    loaded, checkpoint = load_checkpoint(path, device="cpu")  # network shape from the checkpoint's config
    assert seen["map_location"] == torch.device("cpu")
    assert checkpoint["progress"] == {"stage": "done"}
    f0, f1 = frames()
    batch = frame_pair_batch(f0, [0, 1], f1, [0, 2], CropStore())
    np.testing.assert_allclose(SiameseMatcher(loaded).score_pairs(batch), SiameseMatcher(net).score_pairs(batch))
    assert len(weights_version(path)) == 32


def test_crop_size_too_small():
    with pytest.raises(ValueError):
        SimConfig(crop_size=30)
