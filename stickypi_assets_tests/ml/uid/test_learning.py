"""THE learning test: a randomly initialised small Mask R-CNN learns real insects on one real card.

The short recipe of :mod:`stickypi_assets_tests.ml.uid.learning` (500 iterations of 192 px crops of one real
512 px region with 21 insects; ``benchmarks/uid_learning.py`` runs the full one). The model must find at least
80 % of the annotated insects at IoU 0.5, with precision at least 0.5 (a lower threshold must not buy recall with
noise).
"""

from __future__ import annotations

import json

import pytest

from stickypi_assets_tests.ml.uid.learning import N_INSECTS, SHORT_RECIPE, train_and_score

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _two_torch_threads():
    """The figures of this test were measured with 2 torch threads: fixed, so that the machine's core count does not
    change the floating-point path of training (and so the model it trains)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_training_from_random_init_finds_the_insects_of_one_real_card(tmp_path, record_property):
    summary = train_and_score(SHORT_RECIPE, tmp_path)
    print("UID learning test:", json.dumps(summary))
    for key, value in summary.items():
        record_property(key, value)
    assert summary["n_gt"] == N_INSECTS
    assert summary["recall"] >= 0.8, summary
    assert summary["precision"] >= 0.5, summary
