"""Contradictions, Cohen's kappa and the stalled rule against hand-computed cases."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from stickypi_assets.active.halting import cohen_kappa, contradictions, kappa_converged, stalled


def test_contradictions_by_hand():
    assert contradictions([0, 0, 1, 1], [0, 1, 1, 1]) == 0.25
    assert contradictions(["a", "b"], ["a", "b"]) == 0.0
    assert contradictions([], []) == 0.0
    with pytest.raises(ValueError):
        contradictions([1], [1, 2])


def test_kappa_by_hand_and_against_scikit_learn():
    # p_o = 3/4, p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2: kappa = (0.75 - 0.5) / 0.5
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    assert cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0
    a = ["fly", "gnat", "fly", "beetle", "gnat", "fly", "beetle", "fly"]
    b = ["fly", "fly", "fly", "beetle", "gnat", "gnat", "beetle", "beetle"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))


def test_stalled_needs_three_values_each_within_tolerance_of_the_last():
    assert not stalled([0.5, 0.505])
    assert stalled([0.1, 0.5, 0.505, 0.509])
    assert not stalled([0.5, 0.505, 0.52])
    assert not stalled([0.5, 0.5, 0.5], tolerance=0.0)
    assert stalled([0.5, float("nan"), 0.501, 0.502])


def test_kappa_converged_over_a_window():
    assert kappa_converged([0.5, 0.99, 0.995, 1.0])
    assert not kappa_converged([0.99, 0.98, 1.0])
    assert not kappa_converged([1.0, 1.0])
