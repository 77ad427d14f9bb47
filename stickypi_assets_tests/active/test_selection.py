"""Samplers and batch selection: exclusions, time windows, caps, quotas, diversity, determinism."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from stickypi_assets.active.diversity import CoreSetSampler
from stickypi_assets.active.samplers import (
    ClassSampler,
    ConfidenceBandSampler,
    DetectionCountSampler,
    RandomSampler,
    Sampler,
    ScoreSampler,
    maskal_sampler,
)
from stickypi_assets.active.selection import MixEntry, quotas, select_batch


def make_pool(n_devices: int = 3, n_frames: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    start = pd.Timestamp("2020-06-20T00:00Z")
    for d in range(n_devices):
        for f in range(n_frames):
            n = int(rng.integers(0, 5))
            rows.append({
                "item": f"dev{d}.{f:02d}", "device": f"dev{d}", "datetime": start + pd.Timedelta(minutes=20 * f),
                "det_scores": rng.uniform(0.3, 1.0, n), "det_labels": np.array(["insect"] * n),
                "maskal_uncertainty": rng.uniform(), "empty": n == 0, "n_observations": n,
                "embedding": np.eye(3)[d] + rng.normal(0, 0.01, 3),
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_every_sampler_implements_the_interface_and_ranks_best_first():
    pool = make_pool()
    samplers = [RandomSampler(), maskal_sampler(), ConfidenceBandSampler(), DetectionCountSampler(0, 0),
                ClassSampler(("insect",)), CoreSetSampler()]  # fmt: skip
    for sampler in samplers:
        assert isinstance(sampler, Sampler)
        ranking = sampler.rank(pool)
        assert list(ranking.columns) == ["item", "score", "sampler", "reason"]
        assert ranking["score"].is_monotonic_decreasing and ranking["item"].is_unique
        assert (ranking["sampler"] == sampler.name).all() and ranking["reason"].str.len().gt(0).all()


def test_roboflow_samplers_by_hand():
    pool = pd.DataFrame({
        "item": ["a", "b", "c", "d"],
        "det_scores": [np.array([0.45, 0.55, 0.9]), np.array([0.95]), np.array([]), np.array([0.52])],
        "det_labels": [np.array(["fly", "gnat", "fly"]), np.array(["fly"]), np.array([]), np.array(["gnat"])],
    })  # fmt: skip
    band = ConfidenceBandSampler(threshold=0.5, epsilon=0.1).rank(pool)
    assert band["item"].tolist() == ["a", "d"] and band["score"].iloc[0] >= 2  # a: 0.45 and 0.55; d: 0.52
    assert ConfidenceBandSampler(min_count=2).rank(pool)["item"].tolist() == ["a"]
    assert ConfidenceBandSampler(classes=("fly",)).rank(pool)["item"].tolist() == ["a"]
    assert DetectionCountSampler(0, 0).rank(pool)["item"].tolist() == ["c"]
    assert set(DetectionCountSampler(1, 1).rank(pool)["item"]) == {"b", "d"}
    classes = ClassSampler(("gnat",)).rank(pool)
    assert classes["item"].tolist() == ["a", "d"] or classes["item"].tolist() == ["d", "a"]
    assert "1 detection(s) of gnat" in classes["reason"].iloc[0]


def test_score_sampler_skips_nan_and_says_why():
    pool = pd.DataFrame({"item": ["a", "b", "c"], "bald": [0.2, np.nan, 0.7]})
    ranking = ScoreSampler("bald").rank(pool)
    assert ranking["item"].tolist() == ["c", "a"] and ranking["reason"].iloc[0] == "bald 0.700"
    with pytest.raises(ValueError, match="needs pool columns"):
        ScoreSampler("entropy").rank(pool)


def test_maskal_reason_names_empty_images():
    pool = make_pool()
    ranking = maskal_sampler().rank(pool)
    empty = set(pool.loc[pool["empty"], "item"])
    reasons = dict(zip(ranking["item"], ranking["reason"], strict=True))
    assert all("no detection" in reasons[i] for i in empty)
    assert all(reasons[i].startswith("maskAL certainty") for i in set(pool["item"]) - empty)


def test_quotas_sum_to_the_budget():
    assert quotas([0.7, 0.2, 0.1], 20) == [14, 4, 2]
    assert quotas([0.7, 0.2, 0.1], 3) == [2, 1, 0]
    assert sum(quotas([1, 1, 1], 10)) == 10 and quotas([1, 1, 1], 10) == [4, 3, 3]
    with pytest.raises(ValueError):
        quotas([0, 0], 3)


def test_a_batch_never_holds_an_excluded_item_nor_one_twice():
    pool = make_pool()
    excluded = set(pool["item"].iloc[::2])
    mix = [(maskal_sampler(), 0.5), (RandomSampler(seed=3), 0.5)]
    batch = select_batch(pool, mix, budget=len(pool), exclude=excluded, window=None)
    assert not set(batch["item"]) & excluded and batch["item"].is_unique
    assert len(batch) == len(pool) - len(excluded)  # all the rest, once


def test_one_frame_per_device_per_window():
    pool = make_pool()
    batch = select_batch(pool, [(maskal_sampler(), 1.0)], budget=30, window=timedelta(hours=1))
    for _, group in batch.groupby("device"):
        times = group["datetime"].sort_values()
        assert (times.diff().dropna() >= pd.Timedelta(hours=1)).all()
    # 12 frames of 20 min = 4 h: at most one per hour fits 4 per device (0:00, 1:00, 2:00, 3:00 or so)
    assert batch.groupby("device").size().max() <= 4
    assert len(select_batch(pool, [(maskal_sampler(), 1.0)], budget=30, window=None)) == 30


def test_caps_per_day_and_quotas_move_on_when_a_sampler_runs_dry():
    pool = make_pool()
    empty_frames = int(pool["empty"].sum())
    mix = [MixEntry(DetectionCountSampler(0, 0), 0.5), MixEntry(maskal_sampler(), 0.5, max_per_day=3)]
    batch = select_batch(pool, mix, budget=10, window=None)
    counts = batch["sampler"].value_counts().to_dict()
    assert counts.get("detection_count", 0) == min(empty_frames, 10 - 3) and counts.get("maskal", 0) <= 3
    assert len(batch) == min(10, empty_frames + 3)


def test_selection_is_deterministic_and_ignores_row_order():
    pool = make_pool()
    mix = [(maskal_sampler(), 0.6), (CoreSetSampler(seed=2), 0.2), (RandomSampler(seed=2), 0.2)]
    window = timedelta(minutes=30)
    a = select_batch(pool, mix, budget=10, window=window)
    b = select_batch(pool.sample(frac=1.0, random_state=5).reset_index(drop=True), mix, budget=10, window=window)
    assert len(a) == 10 and a.to_dict("records") == b.to_dict("records")
    other = [(maskal_sampler(), 0.6), (CoreSetSampler(seed=2), 0.2), (RandomSampler(seed=9), 0.2)]
    c = select_batch(pool, other, budget=10, window=window)
    assert a["item"].tolist() != c["item"].tolist()  # another seed, another random share


def test_diversity_covers_the_clusters_and_moves_away_from_annotated_items():
    pool = make_pool()  # three devices = three tight embedding clusters
    first = CoreSetSampler(seed=0).rank(pool)["item"].head(3)
    assert {i.split(".")[0] for i in first} == {"dev0", "dev1", "dev2"}
    labeled = set(pool.loc[pool["device"] != "dev2", "item"])
    nxt = CoreSetSampler(labeled=labeled).rank(pool)
    assert nxt["item"].iloc[0].startswith("dev2") and not set(nxt["item"]) & labeled
    # items already in the batch count as annotated
    chosen = pool.loc[pool["device"] == "dev0", "item"].head(1).tolist()
    after = CoreSetSampler(seed=0).rank(pool, chosen)["item"].head(2)
    assert {i.split(".")[0] for i in after} == {"dev1", "dev2"}


def test_pool_errors_are_clear():
    pool = make_pool()
    with pytest.raises(ValueError, match="unique"):
        select_batch(pd.concat([pool, pool.head(1)]), [(RandomSampler(), 1.0)], 3)
    with pytest.raises(ValueError, match="column 'device'"):
        select_batch(pool.drop(columns="device"), [(RandomSampler(), 1.0)], 3)
    with pytest.raises(ValueError, match="at least one sampler"):
        select_batch(pool, [], 3)
