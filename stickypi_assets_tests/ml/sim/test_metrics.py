"""ROC AUC by the rank formula, checked against hand-computed cases and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stickypi_assets.ml.sim.train import binary_metrics, roc_auc


@pytest.mark.parametrize(
    ("scores", "labels", "auc"),
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),
        ([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0),
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),  # all tied
        # positives {0.35, 0.8} vs negatives {0.1, 0.4}: 0.35>0.1, 0.35<0.4, 0.8>both → 3/4
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
        # positives {0.5, 0.9} vs negatives {0.5, 0.2}: tie 1/2 + 1 + 1 + 1 → 3.5/4
        ([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1], 0.875),
        # one positive 0.3 vs negatives {0.1, 0.3, 0.3, 0.7}: 1 + 1/2 + 1/2 + 0 → 2/4
        ([0.1, 0.3, 0.3, 0.3, 0.7], [0, 1, 0, 0, 0], 0.5),
    ],
)
def test_auc_by_hand(scores, labels, auc):
    assert roc_auc(scores, labels) == pytest.approx(auc)


def test_auc_matches_brute_force():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 20, size=300) / 20.0  # many ties
    labels = rng.random(300) < 0.3
    pos, neg = scores[labels], scores[~labels]
    brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
    assert roc_auc(scores, labels) == pytest.approx(brute)


def test_auc_one_class_is_nan():
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))


def test_binary_metrics():
    m = binary_metrics(np.array([0.9, 0.6, 0.4, 0.1]), np.array([1, 0, 1, 0]))
    assert m["accuracy"] == 0.5 and m["recall"] == 0.5 and m["specificity"] == 0.5
    assert m["n_pos"] == 2 and m["n_neg"] == 2 and m["auc"] == pytest.approx(0.75)
