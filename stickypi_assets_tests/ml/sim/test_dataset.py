"""Training pairs: positives per group, negatives for every other combination (ungrouped included)."""

from __future__ import annotations

import numpy as np

from stickypi_assets.formats.sim_svg import sim_name, write_sim_svg
from stickypi_assets.formats.split import md5_file, split_for_md5
from stickypi_assets.ml.sim.dataset import BalancedSampler, PairDataset, PairSource, augment_crop, load_sources
from stickypi_assets_tests.ml.sim.helpers import tiny_sim_pair


def source(seed: int = 0, split: str = "train", **kw) -> PairSource:
    return PairSource.from_pair(tiny_sim_pair(seed=seed, **kw), f"pair{seed}", md5="0" * 32, split=split)


def test_pair_counts_include_ungrouped_negatives():
    # frame 0: 4 instances, frame 1: 3; groups (0, 1) and (2, 0). Instances 1, 3 (frame 0) and 2 (frame 1)
    # are ungrouped. The original: 2 positives, 1 negative (grouped only, i > j triangle).
    ds = PairDataset([source()], "train")
    assert len(ds.positives) == 2
    assert len(ds.negatives) == 4 * 3 - 2
    negatives = {(r.i0, r.i1) for r in ds.negatives}
    assert {(1, 2), (3, 2), (1, 0), (3, 1)} <= negatives  # ungrouped on either side
    assert (0, 1) not in negatives and (2, 0) not in negatives
    assert len(ds) == 12


def test_split_selects_sources():
    sources = [source(0, "train"), source(1, "validation")]
    assert PairDataset(sources, "train").used_sources() == [0]
    assert PairDataset(sources, "validation").used_sources() == [1]
    assert len(PairDataset(sources, None)) == 24


def test_balanced_sampler():
    ds = PairDataset([source()], "train")
    records = BalancedSampler(ds, np.random.default_rng(0)).sample(4000)
    assert 0.45 < np.mean([r.label for r in records]) < 0.55


def test_validation_order_is_fixed():
    ds = PairDataset([source(0), source(1)], None)
    assert ds.validation_records() == ds.validation_records()
    assert sorted(ds.validation_records(), key=lambda r: (r.source, r.i0, r.i1)) == sorted(
        ds.positives + ds.negatives, key=lambda r: (r.source, r.i0, r.i1)
    )


def test_training_batch_augmentation():
    ds = PairDataset([source()], "train")
    ds.warm()
    rng = np.random.default_rng(1)
    records = BalancedSampler(ds, rng).sample(64)
    batch, labels = ds.training_batch(records, rng)
    x0, x1, x1_a0 = batch.crop_arrays()
    assert x0.shape == (64, 105, 105) and x0.dtype == np.float32
    assert min(x0.min(), x1.min(), x1_a0.min()) >= 0.0 and max(x0.max(), x1.max(), x1_a0.max()) <= 1.0
    assert labels.shape == (64,)
    plain, _ = ds.spec_batch(records)
    assert not np.allclose(batch.distance, plain.distance)  # exponential jitter
    np.testing.assert_allclose(batch.area0, plain.area0)


def test_exponential_jitter_keeps_the_mean():
    ds = PairDataset([source()], "train")
    rng = np.random.default_rng(2)
    rec = ds.negatives[0]
    draws = [ds.training_batch([rec], rng)[0].delta_t[0] for _ in range(2000)]
    assert abs(np.mean(draws) / 1200 - 1) < 0.1


def test_augment_crop_rotations_and_flips_keep_pixels():
    crop = np.zeros((105, 105), np.float32)
    crop[10:20, 30:40] = 0.5
    out = augment_crop(crop, np.random.default_rng(0))
    assert out.shape == (105, 105) and (out > 0.2).sum() == 100


def test_load_sources_split_by_svg_md5(tmp_path):
    for seed in range(3):
        pair = tiny_sim_pair(seed=seed, hours=seed)
        write_sim_svg(pair, tmp_path / sim_name(pair.device, pair.datetime0, pair.datetime1))
    (tmp_path / "not-a-pair.svg").write_text("<svg/>")
    sources = load_sources(tmp_path)
    assert len(sources) == 3
    for s in sources:
        assert s.md5 == md5_file(tmp_path / s.name)
        assert s.split == split_for_md5(s.md5)
        assert s.groups == [(0, 1), (2, 0)]
