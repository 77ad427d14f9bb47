"""maskAL's certainty against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stickypi_assets.active.certainty import (
    LocalMask,
    PassDetection,
    box_iou,
    cluster_observations,
    image_certainty,
    mask_iou,
    mean_mask,
    semantic_certainty,
)


def rows(n_rows: int, width: int = 10, height: int = 10) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[:n_rows] = True
    return mask


def det(box, fg, mask=None, x0=0, y0=0) -> PassDetection:
    return PassDetection(box, [1 - fg, fg], 0, None if mask is None else LocalMask(mask, x0, y0))


def test_overlaps_by_hand():
    assert box_iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(50 / 150)
    assert box_iou(np.array([0, 0, 10, 10]), np.array([20, 20, 30, 30])) == 0.0
    # the same 10x10 square seen through windows placed differently
    a = LocalMask(np.ones((10, 10), bool), 0, 0)
    b = LocalMask(np.ones((10, 10), bool), 5, 0)
    assert mask_iou(a, b) == pytest.approx(50 / 150)
    assert mask_iou(a, LocalMask(np.ones((3, 3), bool), 40, 40)) == 0.0


def test_mean_mask_keeps_pixels_covered_by_a_quarter_of_the_members():
    a, b = LocalMask(rows(6), 0, 0), LocalMask(rows(10), 0, 0)
    c, d = LocalMask(rows(2), 0, 0), LocalMask(rows(2), 0, 0)
    assert mean_mask([a, b]).area == 100  # rows 6-9 covered by 1 of 2 = 0.5 >= 0.25
    assert mean_mask([c, d, d, b, d]).area == 20  # rows 2-9 by 1 of 5 = 0.2 < 0.25


def test_semantic_term_is_the_score_for_one_class_and_normalised_entropy_otherwise():
    assert semantic_certainty(np.array([0.3, 0.7])) == pytest.approx(0.7)
    h = -(0.1 * math.log(0.1) + 0.6 * math.log(0.6) + 0.3 * math.log(0.3))  # 0.8979
    assert semantic_certainty(np.array([0.1, 0.6, 0.3])) == pytest.approx(1 - h / math.log(3))
    assert semantic_certainty(np.array([0.1, 0.6, 0.3])) == pytest.approx(0.1827, abs=1e-4)
    assert semantic_certainty(np.array([0.0, 1.0, 0.0])) == pytest.approx(1.0)


def test_two_passes_by_hand():
    """Pass 1: insect A (full 10x10 mask, score 0.8). Pass 2: A again with only its top 6 rows (score 0.6), and
    B elsewhere (score 0.5). A: u_sem 0.7, mean mask = all 100 px so mask IoUs 1.0 and 0.6 (mean 0.8), same boxes
    (box term 1), u_n = 2/2: u_h = 0.56. B: u_sem 0.5, u_spl 1, u_n 1/2: u_h 0.25."""
    passes = [
        [det([0, 0, 10, 10], 0.8, rows(10))],
        [det([0, 0, 10, 10], 0.6, rows(6)), det([20, 20, 30, 30], 0.5, np.ones((10, 10), bool), 20, 20)],
    ]
    result = image_certainty(passes)
    a, b = result.observations
    assert len(a.members) == 2 and len(b.members) == 1
    assert (a.u_sem, a.u_spl, a.u_n) == pytest.approx((0.7, 0.8, 1.0))
    assert a.u_h == pytest.approx(0.56) and b.u_h == pytest.approx(0.25)
    assert result.certainty == pytest.approx((0.56 + 0.25) / 2)
    assert image_certainty(passes, aggregate="min").certainty == pytest.approx(0.25)
    assert result.uncertainty == pytest.approx(1 - 0.405)


def test_box_only_spatial_term_by_hand():
    """(0,0,10,10) and (0,0,10,12): mean box (0,0,10,11), IoUs 100/110 and 110/120."""
    result = image_certainty([[det([0, 0, 10, 10], 1.0)], [det([0, 0, 10, 12], 1.0)]])
    (obs,) = result.observations
    assert obs.u_spl == pytest.approx((100 / 110 + 110 / 120) / 2)


def test_a_detection_joins_the_first_observation_whose_first_member_it_overlaps():
    """maskAL's greedy rule: compared with each observation's *first* member only, in order."""
    first = det([0, 0, 10, 10], 0.9)
    second = det([6, 0, 16, 10], 0.9)  # IoU with first = 40/160 = 0.25: a new observation
    third = det([3, 0, 13, 10], 0.9)  # IoU 70/130 = 0.54 with first, 70/130 with second: joins the first
    groups = cluster_observations([[first, second], [third]])
    assert [len(g) for g in groups] == [2, 1] and groups[0][1] is third
    # at exactly the threshold it does not join (maskAL: IoU > 0.5)
    assert len(cluster_observations([[det([0, 0, 10, 10], 1)], [det([0, 0, 10, 5], 1)]])) == 2


def test_images_without_detections_get_the_configured_certainty():
    result = image_certainty([[], [], []])
    assert result.empty and result.certainty == 0.5 and result.n_passes == 3
    assert image_certainty([[]], empty_certainty=0.0).uncertainty == 1.0


def test_occurrence_is_capped_at_one_when_overlapping_tiles_repeat_an_insect():
    twice = [det([0, 0, 10, 10], 1.0, rows(10)), det([0, 0, 10, 10], 1.0, rows(10))]
    (obs,) = image_certainty([twice]).observations
    assert obs.u_n == 1.0 and obs.u_h == pytest.approx(1.0)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        image_certainty([])
    with pytest.raises(ValueError):
        image_certainty([[det([0, 0, 1, 1], 1)]], aggregate="median")
    with pytest.raises(ValueError):
        PassDetection([0, 0, 1, 1], [1.0])
    with pytest.raises(ValueError):
        LocalMask(np.ones(3, bool), 0, 0)
