"""Tuboid uncertainties against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stickypi_assets.active.uncertainty import (
    all_scores,
    bald,
    entropy,
    frame_disagreement,
    least_confidence,
    margin,
    vote_disagreement,
)

P = np.array([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]])


def test_single_distribution_scores_by_hand():
    assert least_confidence(P) == pytest.approx([0.5, 0.0])
    assert margin(P) == pytest.approx([0.8, 0.0])
    h = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))  # 1.0297
    assert entropy(P) == pytest.approx([h / math.log(3), 0.0])
    assert entropy(P)[0] == pytest.approx(0.9372, abs=1e-4)
    assert margin(np.array([[1.0]])) == pytest.approx([1.0])


def test_bald_is_high_only_when_the_passes_disagree():
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two passes, one item, each sure of another class
    ambiguous = np.array([[[0.5, 0.5]], [[0.5, 0.5]]])  # both passes unsure in the same way
    assert bald(disagree) == pytest.approx([1.0])
    assert bald(ambiguous) == pytest.approx([0.0])
    assert entropy(ambiguous.mean(0)) == pytest.approx([1.0])  # entropy cannot tell the two apart
    # 3 passes [0.9,0.1],[0.9,0.1],[0.3,0.7]: mean [0.7,0.3]
    mc = np.array([[[0.9, 0.1]], [[0.9, 0.1]], [[0.3, 0.7]]])
    h = lambda p: -sum(x * math.log(x) for x in p)  # noqa: E731
    expected = (h([0.7, 0.3]) - (2 * h([0.9, 0.1]) + h([0.3, 0.7])) / 3) / math.log(2)
    assert bald(mc) == pytest.approx([expected])
    with pytest.raises(ValueError):
        bald(np.ones((2, 2)))


def test_frame_disagreement_is_bald_over_a_tuboids_frames():
    same = np.array([[[0.8, 0.2]] * 4])
    split = np.array([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])
    assert frame_disagreement(same) == pytest.approx([0.0])
    assert frame_disagreement(split) == pytest.approx([1.0])
    # a missing shot does not count; one valid shot cannot disagree with itself
    valid = np.array([[True, True, True, False]])
    one = np.array([[True, False, False, False]])
    h = lambda p: -sum(x * math.log(x) for x in p if x > 0)  # noqa: E731
    assert frame_disagreement(split, valid) == pytest.approx([h([2 / 3, 1 / 3]) / math.log(2)])
    assert frame_disagreement(split, one) == pytest.approx([0.0])
    assert vote_disagreement(split, np.array([[0.9, 0.1]])) == pytest.approx([0.5])


def test_all_scores_lists_every_score_in_unit_range():
    rng = np.random.default_rng(0)
    mc = rng.dirichlet(np.ones(4), size=(5, 7))
    shots = rng.dirichlet(np.ones(4), size=(7, 6))
    scores = all_scores(mc, shots)
    assert set(scores) == {"least_confidence", "margin", "entropy", "bald", "frame_disagreement"}
    for values in scores.values():
        assert values.shape == (7,) and (values >= 0).all() and (values <= 1 + 1e-12).all()
