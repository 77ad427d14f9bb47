"""Tracker passes on hand-made instance sequences with deterministic fake matchers."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest

from stickypi_assets.ml.sim.tracking import (
    TrackState,
    gated_pairs,
    greedy_one_to_one,
    make_track_id,
    track_frames,
)
from stickypi_assets_tests.ml.sim.helpers import (
    DEVICE,
    STEP_S,
    T0,
    IouMatcher,
    TableMatcher,
    config,
    frame,
    labelled_frame,
)


def frames_of(tracks: dict[str, list[tuple[int, float, float]]], n_frames: int):
    """Frames 0..n-1; ``tracks`` maps a name to its (frame, x, y) detections."""
    per_frame: list[list[tuple[float, float]]] = [[] for _ in range(n_frames)]
    for dets in tracks.values():
        for k, x, y in dets:
            per_frame[k].append((x, y))
    return [frame(k, per_frame[k]) for k in range(n_frames)]


def lengths(result) -> list[int]:
    return sorted(len(t) for t in result.tuboids)


def test_greedy_one_to_one_takes_best_first_and_respects_threshold():
    rows = np.array([0, 0, 1, 1, 2])
    cols = np.array([0, 1, 0, 1, 2])
    scores = np.array([0.9, 0.8, 0.95, 0.1, 0.4])
    # (1,0) best; then row 0 can only take col 1; (2,2) is below threshold.
    assert greedy_one_to_one(rows, cols, scores, 0.5) == [(1, 0, 0.95), (0, 1, 0.8)]


def test_gated_pairs_radius():
    c0 = np.array([[0.0, 0.0], [100.0, 0.0]])
    c1 = np.array([[3.0, 4.0], [100.0, 30.0], [500.0, 500.0]])
    rows, cols = gated_pairs(c0, c1, 5.0)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0)]
    rows, cols = gated_pairs(c0, c1, 30.0)
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 0), (1, 1)]


def test_consecutive_matching_and_ids_by_head_time():
    frames = frames_of(
        {
            "still": [(k, 100, 100) for k in range(6)],
            "walker": [(k, 300 + 2 * k, 300) for k in range(6)],
            "late": [(k, 600, 600) for k in range(2, 6)],
        },
        6,
    )
    matcher = IouMatcher()
    result = track_frames(frames, matcher, DEVICE)
    assert lengths(result) == [4, 6, 6]
    # one matcher call per consecutive frame pair, all 5 pairs (the last one included)
    assert matcher.calls == 5
    by_index = sorted(result.tuboids, key=lambda t: t.index)
    assert [t.observations[0].datetime for t in by_index] == sorted(t.observations[0].datetime for t in by_index)
    assert by_index[-1].track_id == make_track_id(DEVICE, T0 + timedelta(seconds=2 * STEP_S), (600.0, 600.0))
    assert by_index[-1].track_id == f"{DEVICE}.2020-06-20_00-40-00.600_600"
    for t in result.tuboids:  # each tuboid is one insect: centroids never jump
        xs = [o.instance.centroid[0] for o in t.observations]
        assert max(xs) - min(xs) <= 10


def test_last_frame_is_kept():
    # Seen on the last 4 frames only: the original (which skipped the last frame pair) saw 3 and dropped it.
    frames = frames_of({"a": [(k, 100, 100) for k in range(2, 6)]}, 6)
    result = track_frames(frames, IouMatcher(), DEVICE)
    assert lengths(result) == [4]
    assert result.tuboids[0].observations[-1].frame is frames[-1]


def test_min_length_filter():
    frames = frames_of({"three": [(k, 100, 100) for k in range(3)], "four": [(k, 400, 400) for k in range(4)]}, 4)
    assert lengths(track_frames(frames, IouMatcher(), DEVICE)) == [4]
    assert lengths(track_frames(frames, IouMatcher(), DEVICE, config=config(min_tuboid_frames=3))) == [3, 4]


def test_gap_bridged_by_stitching():
    # Missed on frames 3 and 4 (an occlusion): pass 1 gives 3 + 4 frames, stitching joins them.
    dets = [(k, 100, 100) for k in (0, 1, 2, 5, 6, 7, 8)]
    frames = frames_of({"a": dets, "b": [(k, 800, 800) for k in range(9)]}, 9)
    result = track_frames(frames, IouMatcher(), DEVICE)
    assert lengths(result) == [7, 9]
    assert result.stats["stitched"] == 1
    # ... but not when the gap (frame 2 to 5: 60 min) is longer than MAX_DELTA_T_TO_MATCH (50 min)
    result = track_frames(frames, IouMatcher(), DEVICE, config=config(max_delta_t_to_match=3000))
    assert lengths(result) == [4, 9]  # the 3-frame part is dropped by the length filter


def test_stitching_chains_and_time_order():
    # Three pieces of one track, given in shuffled order: stitched into one in time order.
    dets = [(k, 100, 100) for k in (0, 1, 3, 4, 6, 7)]
    frames = frames_of({"a": dets}, 8)
    shuffled = frames[:]
    random.Random(3).shuffle(shuffled)
    for fs in (frames, shuffled):
        result = track_frames(fs, IouMatcher(), DEVICE)
        assert lengths(result) == [6]
        times = [o.datetime for o in result.tuboids[0].observations]
        assert times == sorted(times)


def conjoint_case():
    """A seen on frames 0,1,2,5,6; the same insect detected as 'B' on frames 3,4 (e.g. half occluded).

    Consecutive A2→B3 and B4→A5 score below the match threshold, so pass 1 and stitching leave B apart;
    the lag-2 pairs B3→A5 and A2→B4 score well. The table is directional: a pair scored in the wrong
    time order (the original's stale-timestamp defect) gets 0.
    """
    labels = {0: "A0", 1: "A1", 2: "A2", 3: "B3", 4: "B4", 5: "A5", 6: "A6"}
    frames = [labelled_frame(k, [labels[k]]) for k in range(7)]
    table = {
        ("A0", "A1"): 0.9, ("A1", "A2"): 0.9, ("B3", "B4"): 0.9, ("A5", "A6"): 0.9, ("A2", "A5"): 0.9,
        ("A2", "B3"): 0.2, ("B4", "A5"): 0.2, ("B3", "A5"): 0.8, ("A2", "B4"): 0.8,
    }  # fmt: skip
    return frames, table


def test_conjoint_merge():
    frames, table = conjoint_case()
    matcher = TableMatcher(table)
    result = track_frames(frames, matcher, DEVICE)
    # neighbour scores: A2→B3 0 (below 0.5), B3→A5 0.8, A2→B4 0.8, B4→A5 0 → mean 0.4 >= 0.25: merged
    assert lengths(result) == [7]
    assert result.stats["conjoint_merges"] == 1
    assert ("A5", "B3") not in matcher.asked and ("B4", "A2") not in matcher.asked  # always (earlier, later)
    assert [o.instance.name for o in result.tuboids[0].observations] == ["A0", "A1", "A2", "B3", "B4", "A5", "A6"]


def test_conjoint_threshold():
    frames, table = conjoint_case()
    result = track_frames(frames, TableMatcher(table), DEVICE, config=config(conjoint_threshold=0.45))
    assert lengths(result) == [5]  # A alone; B (2 frames) is filtered out
    assert result.stats["conjoint_merges"] == 0


def test_gating_limits_scored_pairs():
    # 10 x 10 grid of insects 100 px apart on 4 frames: with a 30 px radius only the 100 self-pairs of each
    # frame pair are scored (not 100 x 100), in one matcher call per frame pair.
    centres = [(50 + 100 * i, 50 + 100 * j) for i in range(10) for j in range(10)]
    frames = [frame(k, centres) for k in range(4)]
    matcher = IouMatcher()
    result = track_frames(frames, matcher, DEVICE, config=config(gating_radius_px=30))
    assert lengths(result) == [4] * 100
    assert matcher.batch_sizes[:3] == [100, 100, 100]
    assert result.stats["consecutive_pairs"] == 300
    # radius 150: each insect also meets its 4 direct neighbours (100 px) and 4 diagonals (141 px)
    matcher = IouMatcher()
    result = track_frames(frames, matcher, DEVICE, config=config(gating_radius_px=150))
    assert result.stats["consecutive_pairs"] == 3 * (100 + 4 * 90 + 4 * 81)
    assert lengths(result) == [4] * 100


def day_frames(day: int, hours: range, tracks: dict[str, tuple[float, float, int | None, int | None]]):
    """Frames every 20 min over ``hours`` of ``day``; each track is (x, y, first slot, last slot) (None = always)."""
    out = []
    slot = 0
    for h in hours:
        for m in (0, 20, 40):
            when = T0 + timedelta(days=day, hours=h, minutes=m)
            live = [(x, y) for x, y, a, b in tracks.values() if (a is None or slot >= a) and (b is None or slot <= b)]
            out.append(frame(0, live, t0=when))
            slot += 1
    return out


def test_continuation_across_days_keeps_ids_and_reruns_are_identical():
    matcher = IouMatcher()
    # Day 0: 20:00-23:40 (12 frames). "resident" all along; "newcomer" only on the last frame of day 0.
    d0 = day_frames(0, range(20, 24), {"resident": (100, 100, None, None), "newcomer": (500, 500, 11, None)})
    # Day 1: 00:00-02:40 (9 frames): both still there, plus "fresh" from 01:00.
    d1 = day_frames(1, range(0, 3), {"resident": (100, 100, None, None), "newcomer": (500, 500, None, None),
                                     "fresh": (900, 900, 3, None)})
    midnight = T0 + timedelta(days=1)
    r0 = track_frames(d0, matcher, DEVICE, end=midnight)
    assert lengths(r0) == [12]  # the newcomer has 1 frame: not emitted, but carried
    assert {t.n_frames for t in r0.state.tracks} == {12, 1}
    resident_id = r0.tuboids[0].track_id
    newcomer_id = f"{DEVICE}.2020-06-20_23-40-00.500_500"
    assert {t.track_id for t in r0.state.tracks} == {resident_id, newcomer_id}

    state = TrackState.from_json(r0.state.to_json())  # what the asset stores between days
    r1 = track_frames(d1, matcher, DEVICE, state=state, end=midnight + timedelta(days=1))
    by_id = {t.track_id: t for t in r1.tuboids}
    assert set(by_id) == {resident_id, newcomer_id, f"{DEVICE}.2020-06-21_01-00-00.900_900"}
    assert by_id[resident_id].continued and by_id[resident_id].previous_frames == 12
    assert by_id[resident_id].n_frames_total == 21 and len(by_id[resident_id]) == 9
    assert by_id[newcomer_id].previous_frames == 1
    assert by_id[resident_id].head_datetime == d0[0].datetime
    # Each observation keeps the score of the link that reached it: the stitch from the carried tail for the
    # day's first one, the consecutive match after; a new track's head has none.
    assert [o.score for o in r0.tuboids[0].observations] == [None] + [1.0] * 11
    assert [o.score for o in by_id[resident_id].observations] == [1.0] * 9
    assert by_id[f"{DEVICE}.2020-06-21_01-00-00.900_900"].observations[0].score is None

    # Re-running day 1 with the same inputs gives the same ids, indices and state.
    again = track_frames(d1, IouMatcher(), DEVICE, state=TrackState.from_json(r0.state.to_json()),
                         end=midnight + timedelta(days=1))
    assert [(t.index, t.track_id, len(t)) for t in again.tuboids] == [(t.index, t.track_id, len(t)) for t in r1.tuboids]
    assert again.state.to_json() == r1.state.to_json()

    # Tracking both days at once names the tracks the same way (ids depend on the head only).
    both = track_frames(d0 + d1, IouMatcher(), DEVICE)
    assert {t.track_id for t in both.tuboids} == set(by_id)


def test_closed_tracks_are_not_carried():
    d0 = day_frames(0, range(0, 2), {"early": (100, 100, None, None)})  # ends at 01:20
    r0 = track_frames(d0, IouMatcher(), DEVICE, end=T0 + timedelta(days=1))
    assert r0.state.tracks == []  # 22 h 40 min before midnight > 12 h
    r0 = track_frames(d0, IouMatcher(), DEVICE, end=T0 + timedelta(hours=12))
    assert len(r0.state.tracks) == 1


def test_state_device_mismatch():
    with pytest.raises(ValueError, match="device"):
        track_frames([frame(0, [(1, 1)])], IouMatcher(), DEVICE, state=TrackState(device="ffffffff"))


def test_empty_inputs():
    result = track_frames([], IouMatcher(), DEVICE)
    assert result.tuboids == [] and result.state.tracks == []
    result = track_frames([frame(k, []) for k in range(3)], IouMatcher(), DEVICE)
    assert result.tuboids == []
