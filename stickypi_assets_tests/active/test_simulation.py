"""The simulated annotation loop on a tiny real learner: same start for every strategy, no item asked twice,
curves read correctly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stickypi_assets.active.samplers import RandomSampler, ScoreSampler
from stickypi_assets.active.simulation import label_share, labels_to_reach, run_strategy, summarise
from stickypi_assets.active.uncertainty import margin


class BlobStage:
    """Three 2-D Gaussian classes, one of them rare; a logistic regression retrained every round."""

    metric = "accuracy"

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        centres, sizes = np.array([[0, 0], [3, 0], [0, 3]]), [150, 150, 20]
        self.x = np.concatenate([rng.normal(c, 0.9, (n, 2)) for c, n in zip(centres, sizes, strict=True)])
        self.y = np.repeat([0, 1, 2], sizes)
        self.test_x = np.concatenate([rng.normal(c, 0.9, (100, 2)) for c in centres])
        self.test_y = np.repeat([0, 1, 2], 100)
        start = pd.Timestamp("2020-06-20T00:00Z")
        n = len(self.y)
        self.pool = pd.DataFrame({"item": [f"i{k:03d}" for k in range(n)], "device": "d",
                                  "datetime": [start + pd.Timedelta(minutes=k) for k in range(n)]})  # fmt: skip
        self.index = {item: k for k, item in enumerate(self.pool["item"])}
        self.trained: list[list[str]] = []

    def train(self, labeled, seed):
        self.trained.append(list(labeled))
        idx = [self.index[i] for i in labeled]
        if len(set(self.y[idx])) < 2:
            return None
        return LogisticRegression().fit(self.x[idx], self.y[idx])

    def evaluate(self, model):
        if model is None:
            return {"accuracy": 1 / 3}
        return {"accuracy": float((model.predict(self.test_x) == self.test_y).mean())}

    def score(self, model, unlabeled, labeled, seed):
        frame = self.pool.set_index("item").loc[list(unlabeled)].reset_index()
        probs = model.predict_proba(self.x[[self.index[i] for i in unlabeled]]) if model else np.ones((len(frame), 3))
        frame["margin"] = margin(probs)
        return frame


def random_mix(seed, labeled):
    return [(RandomSampler(seed=seed), 1.0)]


def margin_mix(seed, labeled):
    return [(ScoreSampler("margin", seed=seed), 1.0)]


def test_strategies_share_the_initial_set_and_never_ask_twice():
    stage = BlobStage()
    a = run_strategy(stage, "random", random_mix, seed=3, n_initial=6, batch_size=5, n_rounds=4)
    b = run_strategy(stage, "margin", margin_mix, seed=3, n_initial=6, batch_size=5, n_rounds=4)
    first_a, first_b = stage.trained[0], stage.trained[5]
    assert first_a == first_b and len(first_a) == 6
    for labeled in stage.trained:
        assert len(labeled) == len(set(labeled))
    assert [r.n_labels for r in a] == [6, 11, 16, 21, 26] == [r.n_labels for r in b]
    assert b[-1].picked_by == {"initial random": 6, "margin": 20}
    again = run_strategy(BlobStage(), "margin", margin_mix, seed=3, n_initial=6, batch_size=5, n_rounds=4)
    assert [r.metrics for r in again] == [r.metrics for r in b]


def test_summary_compares_each_seed_with_its_own_random_run():
    rows = pd.DataFrame({
        "strategy": ["random"] * 3 + ["margin"] * 3 + ["random"] * 3 + ["margin"] * 3,
        "seed": [0] * 6 + [1] * 6,
        "n_labels": [10, 20, 40] * 4,
        "m": [0.5, 0.6, 0.8, 0.5, 0.9, 0.95, 0.4, 0.5, 0.6, 0.4, 0.45, 0.5],
    })  # fmt: skip
    summary = summarise(rows, "m").set_index(["strategy", "seed"])["share_of_random_labels"]
    assert summary[("margin", 0)] == pytest.approx(17.5 / 40) and summary[("random", 0)] == pytest.approx(1.0)
    assert pd.isna(summary[("margin", 1)])  # never reached seed 1's random final (0.6)


def test_labels_to_reach_interpolates_between_rounds():
    assert labels_to_reach([10, 20, 30], [0.5, 0.7, 0.9], 0.8) == pytest.approx(25.0)
    assert labels_to_reach([10, 20, 30], [0.5, 0.7, 0.9], 0.4) == 10.0
    assert labels_to_reach([10, 20, 30], [0.5, 0.7, 0.9], 0.95) is None
    assert labels_to_reach([10, 20, 30], [0.5, 0.8, 0.8], 0.8) == pytest.approx(20.0)


def test_label_share_against_random_by_hand():
    random_curve = pd.DataFrame({"n_labels": [10, 20, 40], "m": [0.5, 0.6, 0.8]})
    better = pd.DataFrame({"n_labels": [10, 20, 40], "m": [0.5, 0.9, 0.95]})  # 0.8 reached at 10 + 10 * 0.3/0.4
    assert label_share(better, random_curve, "m") == pytest.approx(17.5 / 40)
    assert label_share(random_curve, random_curve, "m") == pytest.approx(1.0)
    worse = pd.DataFrame({"n_labels": [10, 20, 40], "m": [0.5, 0.55, 0.7]})
    assert label_share(worse, random_curve, "m") is None


@pytest.mark.slow
def test_uid_stage_trains_scores_and_asks_for_unlabeled_images(tmp_path):
    """The UID adapter of the benchmark, plumbing only (2 iterations): a round trains on exactly the labeled images,
    scores the rest with maskAL certainty and asks for unlabeled ones."""
    import torch

    from stickypi_assets.active.uid_simulation import SIM_UID_CONFIG, UidDeployments, UidStage, uid_mixes

    torch.set_num_threads(1)
    config = SIM_UID_CONFIG.replace(max_iter=2, warmup_iters=1, steps=[1, 2], tile_size=352, crop_size=128)
    stage = UidStage(tmp_path, deployments=UidDeployments(pool_devices=1, width=320, height=240), config=config,
                     passes=2)  # fmt: skip
    assert len(stage.pool) >= 20 and len(stage.test) >= 20 and stage.pool["n_true"].sum() > 0
    results = run_strategy(stage, "mix", uid_mixes()["mix"], seed=0, n_initial=2, batch_size=2, n_rounds=1)
    assert [r.n_labels for r in results] == [2, 4]
    assert set(results[0].metrics) == {"f1", "precision", "recall"} and 0 <= results[1].metrics["f1"] <= 1
    assert sum(results[1].picked_by.values()) == 4 and results[1].picked_by["initial random"] == 2
