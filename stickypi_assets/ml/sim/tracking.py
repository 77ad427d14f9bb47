"""Tracking: instances of a time-lapse → tuboids (one insect over time), reference 4.7 with its defects fixed.

Three passes over the frames of one device (sorted by time), all scoring pairs with a :class:`Matcher`:

1. **Consecutive frames**, every pair ``(i, i + 1)`` *including the last one* (the original skipped it,
   defect 14): score the gated pairs, greedy one-to-one assignment (repeatedly take the best remaining pair
   with score >= ``MATCH_THRESHOLD``), edges chain instances into tuboids; unmatched instances start their own.
2. **Stitching** tuboid tails to later heads with ``0 < dt <= MAX_DELTA_T_TO_MATCH`` in *time* order (the
   original only tried pairs in list order), greedy one-to-one at ``STITCH_THRESHOLD``; chains allowed.
3. **Conjoint merge**: two tuboids are conjoint when their combined length is >= 3, one's head lies strictly
   inside the other's (head, tail) interval and they share no timestamp. Score = mean over the shorter
   one's instances of ``match(earlier, later)`` with its nearest neighbours strictly before and after in the
   longer one (its last instance included; ordering by each instance's own time, which the original got
   wrong with a stale timestamp), 0 below ``CONJOINT_THRESHOLD``. The best pair is merged, the scores of
   pairs involving it are recomputed, and so on (a heap with lazy invalidation, not O(n²) per merge).

Then tuboids with fewer than ``MIN_TUBOID_FRAMES`` frames are dropped and the rest numbered by head time.

**Spatial gating.** A pair whose centroids are further apart than ``GATING_RADIUS_PX`` scores 0 without
being shown to the network. Candidate pairs come from ``scipy.spatial.cKDTree`` radius queries, so the
number of scored pairs grows linearly with the number of instances at a given insect density, and all
gated pairs of a frame pair go to the matcher in one call (crops and embeddings are shared between pairs,
see :mod:`stickypi_assets.ml.sim.features`). Conjoint candidates are tuboid pairs with any of their head,
tail or mean centroids within the radius of each other.

**Days and stable ids.** Partitions are device × UTC day, and an insect stays on the card for days. A
:class:`TrackState` carries, from day D-1 to day D, every *open* track (tail within ``MAX_DELTA_T_TO_MATCH``
of the end of D-1): its id, its head, its frame count and its tail instance with the tail's ``x0`` crop
(so day D never needs D-1's images). On day D the carried tails take part in pass 2 as tails only (they
can be stitched to a head of day D, nothing can be stitched onto them, two carried tracks are never merged),
and a tuboid that continues a carried track keeps its id. Track ids are **deterministic strings** derived
from the track's first instance ever, ``<device>.<head datetime>.<round(cx)>_<round(cy)>`` (a ``~k`` suffix
separates the rare heads with the same rounded centroid in one frame), never counters: re-running day D
with the same inputs and the same state gives the same ids, and day D's ids do not depend on how many
tuboids earlier days had. Each day emits the *segment* of a track seen that day
(:class:`TrackedTuboid`); a segment is kept when the whole track so far (earlier days included) has at
least ``MIN_TUBOID_FRAMES`` frames. Frames of a track that was still too short when its day ended are
therefore not emitted by that day (the partition cannot know the future); its later segments are.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cv2
import numpy as np
from scipy.spatial import cKDTree

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.names import format_datetime
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.features import (
    CropSpec,
    CropStore,
    Frame,
    Matcher,
    PairBatch,
    frame_pair_batch,
    self_crop_key,
)

log = logging.getLogger(__name__)

#: Key prefix of the pseudo-frames holding tails carried over from the previous day (never a real image key).
CARRIED_PREFIX = "carried:"
STATE_FORMAT = "stickypi-sim-track-state/1"

Node = tuple[int, int]  # (frame index in the tracker's frame list, instance index)


# ----------------------------------------------------------------------------------------------- state


@dataclass
class OpenTrack:
    """A track that may continue on the next day: identity, head, length so far and its last instance."""

    track_id: str
    head_datetime: datetime
    head_centroid: tuple[float, float]
    n_frames: int
    tail_key: str
    tail_datetime: datetime
    tail_polygon: np.ndarray = field(repr=False)
    #: ``x0`` crop of the tail (grey uint8, ``crop_size`` square), cut from the tail's own frame.
    tail_crop: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        ok, png = cv2.imencode(".png", self.tail_crop)
        if not ok:
            raise ValueError("could not encode a tail crop")
        return {
            "track_id": self.track_id,
            "head_datetime": self.head_datetime.isoformat(),
            "head_centroid": [float(v) for v in self.head_centroid],
            "n_frames": self.n_frames,
            "tail_key": self.tail_key,
            "tail_datetime": self.tail_datetime.isoformat(),
            "tail_polygon": np.asarray(self.tail_polygon).tolist(),
            "tail_crop_png": base64.b64encode(png.tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OpenTrack:
        png = np.frombuffer(base64.b64decode(d["tail_crop_png"]), dtype=np.uint8)
        crop = cv2.imdecode(png, cv2.IMREAD_GRAYSCALE)
        if crop is None:
            raise ValueError(f"track {d.get('track_id')!r}: unreadable tail crop")
        return cls(
            track_id=d["track_id"],
            head_datetime=datetime.fromisoformat(d["head_datetime"]),
            head_centroid=(float(d["head_centroid"][0]), float(d["head_centroid"][1])),
            n_frames=int(d["n_frames"]),
            tail_key=d["tail_key"],
            tail_datetime=datetime.fromisoformat(d["tail_datetime"]),
            tail_polygon=np.asarray(d["tail_polygon"], dtype=np.int32),
            tail_crop=crop,
        )


@dataclass
class TrackState:
    """Open tracks of one device at the end of a processed window (a day), to continue the next one.

    ``end`` is the end of the window the state was computed for; ``crop_size`` must match the model that
    continues it. JSON round trip: :meth:`to_json` / :meth:`from_json` (tail crops as base64 PNG, ~3 kB each).
    """

    device: str
    end: datetime | None = None
    crop_size: int = 105
    tracks: list[OpenTrack] = field(default_factory=list)
    model_version: str | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "device": self.device,
                "end": self.end.isoformat() if self.end else None,
                "crop_size": self.crop_size,
                "model_version": self.model_version,
                "tracks": [t.to_dict() for t in self.tracks],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> TrackState:
        d = json.loads(text)
        if d.get("format") != STATE_FORMAT:
            raise ValueError(f"not a SIM track state (format {d.get('format')!r})")
        return cls(
            device=d["device"],
            end=datetime.fromisoformat(d["end"]) if d.get("end") else None,
            crop_size=int(d["crop_size"]),
            model_version=d.get("model_version"),
            tracks=[OpenTrack.from_dict(t) for t in d["tracks"]],
        )


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Observation:
    """One instance of a tuboid: the frame it is in, its index there, and the link that reached it.

    ``score`` is the matcher score of the link from the tuboid's previous observation to this one (pass 1,
    2 or 3, whichever joined them; for a day's first observation of a continued track, the stitch from the
    carried tail). ``None`` for a track's head, and for links a conjoint merge implied without scoring them.
    """

    frame: Frame
    index: int
    score: float | None = None

    @property
    def instance(self) -> Instance:
        return self.frame.instances[self.index]

    @property
    def datetime(self) -> datetime:
        return self.frame.datetime


@dataclass
class TrackedTuboid:
    """The part of a track seen in the processed frames (a day), chronological.

    ``index`` numbers the emitted tuboids of the run by (first observation time, track id): the ``NNNN`` of
    the on-disk tuboid id. ``previous_frames`` counts the track's frames on earlier days (0 for a new
    track); ``open`` says the track may continue after the processed window.
    """

    track_id: str
    index: int
    observations: list[Observation]
    head_datetime: datetime
    head_centroid: tuple[float, float]
    previous_frames: int = 0
    open: bool = False

    @property
    def continued(self) -> bool:
        return self.previous_frames > 0

    @property
    def n_frames_total(self) -> int:
        return self.previous_frames + len(self.observations)

    def __len__(self) -> int:
        return len(self.observations)


@dataclass
class TrackingResult:
    tuboids: list[TrackedTuboid]
    state: TrackState
    #: Counters: pairs scored and matcher calls per pass, merges, time per pass (s).
    stats: dict[str, float] = field(default_factory=dict)


def make_track_id(device: str, head_datetime: datetime, centroid: tuple[float, float]) -> str:
    """``<device>.<head datetime>.<round(cx)>_<round(cy)>``: stable, readable, independent of other tracks."""
    return f"{device}.{format_datetime(head_datetime)}.{int(round(centroid[0]))}_{int(round(centroid[1]))}"


# ---------------------------------------------------------------------------------------------- helpers


def gated_pairs(c0: np.ndarray, c1: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(i, j)`` of every pair with ``|c0[i] - c1[j]| <= radius``, sorted by ``(i, j)``."""
    if len(c0) == 0 or len(c1) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    hits = cKDTree(c0).query_ball_tree(cKDTree(c1), r=radius)
    rows = np.fromiter(itertools.chain.from_iterable([i] * len(h) for i, h in enumerate(hits)), dtype=np.int64)
    cols = np.fromiter(itertools.chain.from_iterable(sorted(h) for h in hits), dtype=np.int64)
    return rows, cols


def greedy_one_to_one(
    rows: np.ndarray, cols: np.ndarray, scores: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """Greedy assignment: repeatedly keep the best-scoring pair whose row and column are both free.

    Same result as the original's "take the global maximum, zero its row and column" on a dense matrix;
    pairs below ``threshold`` (or not above 0) never match. Ties go to the smaller ``(row, col)``.
    """
    keep = (scores >= threshold) & (scores > 0)
    rows, cols, scores = rows[keep], cols[keep], scores[keep]
    order = np.lexsort((cols, rows, -scores))
    used_r: set[int] = set()
    used_c: set[int] = set()
    out = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        out.append((r, c, float(scores[k])))
    return out


# ---------------------------------------------------------------------------------------------- tracker


class Tracker:
    """Runs the three passes with a :class:`Matcher`; one instance can track many days of one device.

    ``store`` caches crops across calls (a day and the next share nothing, so a fresh one per day is fine).
    ``stats`` of each result count the pairs shown to the matcher, which tests use to check gating.
    """

    def __init__(self, matcher: Matcher, config: SimConfig | None = None, store: CropStore | None = None) -> None:
        self.matcher = matcher
        self.config = config or SimConfig()
        self.store = store or CropStore(crop_size=self.config.crop_size)
        if self.store.crop_size != self.config.crop_size:
            raise ValueError("the crop store and the config disagree on the crop size")

    # -- scoring ------------------------------------------------------------------------------------

    def _score(self, batch: PairBatch, stats: dict[str, float], stage: str) -> np.ndarray:
        if len(batch) == 0:
            return np.zeros(0, dtype=np.float64)
        scores = np.asarray(self.matcher.score_pairs(batch), dtype=np.float64).reshape(-1)
        if scores.shape != (len(batch),):
            raise ValueError(f"matcher returned {scores.shape[0]} scores for {len(batch)} pairs")
        stats[f"{stage}_pairs"] = stats.get(f"{stage}_pairs", 0) + len(batch)
        stats[f"{stage}_calls"] = stats.get(f"{stage}_calls", 0) + 1
        return np.nan_to_num(scores, nan=0.0)

    def _score_nodes(
        self, frames: list[Frame], pairs: Sequence[tuple[Node, Node]], stats: dict[str, float], stage: str
    ) -> np.ndarray:
        """Scores of arbitrary ``(earlier node, later node)`` pairs, rule-checked, in one matcher call.

        Pairs with ``dt`` outside ``(0, MAX_DELTA_T]`` or further apart than the gating radius score 0
        without reaching the matcher.
        """
        cfg = self.config
        out = np.zeros(len(pairs), dtype=np.float64)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for k, ((f0, i0), (f1, i1)) in enumerate(pairs):
            dt = (frames[f1].datetime - frames[f0].datetime).total_seconds()
            if not 0 < dt <= cfg.max_delta_t_to_match:
                continue
            d = frames[f1].centroids[i1] - frames[f0].centroids[i0]
            if float(np.hypot(d[0], d[1])) > cfg.gating_radius_px:
                continue
            groups[(f0, f1)].append(k)
        if not groups:
            return out
        batches, positions = [], []
        for (f0, f1), ks in groups.items():
            batches.append(
                frame_pair_batch(frames[f0], [pairs[k][0][1] for k in ks], frames[f1], [pairs[k][1][1] for k in ks],
                                 self.store)
            )
            positions.extend(ks)
        out[np.asarray(positions)] = self._score(PairBatch.concat(batches), stats, stage)
        return out

    # -- main entry point -----------------------------------------------------------------------------

    def track(
        self,
        frames: Sequence[Frame],
        device: str,
        state: TrackState | None = None,
        end: datetime | None = None,
    ) -> TrackingResult:
        """Track ``frames`` (one device; any order, distinct keys and times), continuing ``state``'s tracks.

        ``end`` is the end of the processed window (for a day partition: the next midnight, UTC); tracks
        whose tail is within ``MAX_DELTA_T_TO_MATCH`` of it are returned as open in the new state.
        Defaults to the last frame's time.
        """
        cfg = self.config
        stats: dict[str, float] = {}
        self._link_scores: dict[tuple[Node, Node], float] = {}
        t_start = time.perf_counter()
        day = sorted(frames, key=lambda f: (f.datetime, f.key))
        if len({f.key for f in day}) != len(day):
            raise ValueError("frame keys must be unique (they identify images in the crop cache)")
        if any(a.datetime == b.datetime for a, b in itertools.pairwise(day)):
            raise ValueError("two frames have the same datetime; a device takes one image at a time")
        if state is not None:
            if state.device != device:
                raise ValueError(f"state is for device {state.device!r}, not {device!r}")
            if state.crop_size != cfg.crop_size:
                raise ValueError(f"state crops are {state.crop_size} px, the model uses {cfg.crop_size} px")
        carried_tracks = list(state.tracks) if state else []
        if end is None:
            end = day[-1].datetime if day else (state.end if state and state.end else None)

        # Frame list = carried pseudo-frames (tails of open tracks, crops pinned) + the day's frames.
        all_frames: list[Frame] = []
        carried_of_node: dict[Node, OpenTrack] = {}
        # One pseudo-frame per carried track, keyed by track id *and* tail image: crop keys must name one
        # crop forever, because the matcher may cache embeddings under them across days.
        for track in sorted(carried_tracks, key=lambda t: (t.tail_datetime, t.track_id)):
            pseudo = Frame(
                key=f"{CARRIED_PREFIX}{track.track_id}@{track.tail_key}",
                datetime=track.tail_datetime,
                instances=[Instance(polygon=track.tail_polygon)],
                image=None,
            )
            fi = len(all_frames)
            all_frames.append(pseudo)
            self.store.pin(self_crop_key(pseudo, 0), track.tail_crop)
            carried_of_node[(fi, 0)] = track
        first_day = len(all_frames)
        all_frames.extend(day)

        chains = self._consecutive(all_frames, first_day, stats)
        stats["time_consecutive_s"] = time.perf_counter() - t_start
        t1 = time.perf_counter()
        carried_chains = [[node] for node in carried_of_node]
        chains = self._stitch(all_frames, carried_chains, chains, stats)
        stats["time_stitch_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        chains = self._conjoint(all_frames, chains, set(carried_of_node), stats)
        stats["time_conjoint_s"] = time.perf_counter() - t2

        tuboids, open_tracks = self._finish(all_frames, chains, carried_of_node, device, end)
        stats["n_tuboids"] = len(tuboids)
        stats["n_open"] = len(open_tracks)
        stats["time_total_s"] = time.perf_counter() - t_start
        new_state = TrackState(device=device, end=end, crop_size=cfg.crop_size, tracks=open_tracks,
                               model_version=state.model_version if state else None)
        return TrackingResult(tuboids=tuboids, state=new_state, stats=stats)

    # -- pass 1 -----------------------------------------------------------------------------------------

    def _consecutive(self, frames: list[Frame], first_day: int, stats: dict[str, float]) -> list[list[Node]]:
        cfg = self.config
        successor: dict[Node, Node] = {}
        has_pred: set[Node] = set()
        for fa in range(first_day, len(frames) - 1):  # every consecutive pair, the last one included
            fb = fa + 1
            f0, f1 = frames[fa], frames[fb]
            dt = (f1.datetime - f0.datetime).total_seconds()
            if not 0 < dt <= cfg.max_delta_t_to_match:
                continue
            rows, cols = gated_pairs(f0.centroids, f1.centroids, cfg.gating_radius_px)
            if len(rows) == 0:
                continue
            scores = self._score(frame_pair_batch(f0, rows, f1, cols, self.store), stats, "consecutive")
            for r, c, s in greedy_one_to_one(rows, cols, scores, cfg.match_threshold):
                successor[(fa, r)] = (fb, c)
                has_pred.add((fb, c))
                self._link_scores[((fa, r), (fb, c))] = s
        chains = []
        for fi in range(first_day, len(frames)):
            for ii in range(len(frames[fi].instances)):
                node = (fi, ii)
                if node in has_pred:
                    continue
                chain = [node]
                while chain[-1] in successor:
                    chain.append(successor[chain[-1]])
                chains.append(chain)
        return chains

    # -- pass 2 -----------------------------------------------------------------------------------------

    def _stitch(
        self, frames: list[Frame], carried: list[list[Node]], chains: list[list[Node]], stats: dict[str, float]
    ) -> list[list[Node]]:
        """Stitch tails (carried tracks and day tuboids) to later heads of day tuboids, greedy one-to-one."""
        cfg = self.config
        tails = carried + chains  # index t < len(carried): a carried track
        if not chains or not tails:
            return carried + chains
        head_xy = np.array([frames[c[0][0]].centroids[c[0][1]] for c in chains])
        tail_xy = np.array([frames[c[-1][0]].centroids[c[-1][1]] for c in tails])
        head_t = np.array([frames[c[0][0]].datetime.timestamp() for c in chains])
        tail_t = np.array([frames[c[-1][0]].datetime.timestamp() for c in tails])
        hits = cKDTree(tail_xy).query_ball_tree(cKDTree(head_xy), r=cfg.gating_radius_px)
        cand_t, cand_h = [], []
        for t, heads in enumerate(hits):
            for h in sorted(heads):
                dt = head_t[h] - tail_t[t]
                if 0 < dt <= cfg.max_delta_t_to_match and t != len(carried) + h:
                    cand_t.append(t)
                    cand_h.append(h)
        if not cand_t:
            return carried + chains
        pairs = [(tails[t][-1], chains[h][0]) for t, h in zip(cand_t, cand_h, strict=True)]
        scores = self._score_nodes(frames, pairs, stats, "stitch")
        edges = greedy_one_to_one(np.asarray(cand_t), np.asarray(cand_h), scores, cfg.stitch_threshold)
        stats["stitched"] = len(edges)
        for t, h, s in edges:
            self._link_scores[(tails[t][-1], chains[h][0])] = s
        # Tail t → head h. Tuboid h (as a tail, index len(carried) + h) may itself be stitched onward: chains.
        nxt = {t: h for t, h, _ in edges}
        absorbed = {len(carried) + h for _, h, _ in edges}
        out = []
        for t in range(len(tails)):
            if t in absorbed:
                continue
            merged = list(tails[t])
            cur = t
            while cur in nxt:
                h = nxt[cur]
                merged.extend(chains[h])
                cur = len(carried) + h
            out.append(merged)
        return out

    # -- pass 3 -----------------------------------------------------------------------------------------

    def _conjoint(
        self, frames: list[Frame], chains: list[list[Node]], carried_nodes: set[Node], stats: dict[str, float]
    ) -> list[list[Node]]:
        cfg = self.config
        alive: dict[int, list[Node]] = dict(enumerate(chains))
        next_id = itertools.count(len(chains))
        ts = {id_: [frames[f].datetime.timestamp() for f, _ in nodes] for id_, nodes in alive.items()}
        has_carried = {id_: any(n in carried_nodes for n in nodes) for id_, nodes in alive.items()}
        score_cache: dict[tuple[Node, Node], float] = {}

        # Candidate partners: head, tail or mean centroid within the gating radius of one another.
        ids, points = [], []
        for id_, nodes in alive.items():
            xy = np.array([frames[f].centroids[i] for f, i in nodes])
            for p in (xy[0], xy[-1], xy.mean(axis=0)):
                ids.append(id_)
                points.append(p)
        partners: dict[int, set[int]] = defaultdict(set)
        if len(points) > 1:
            for a, b in cKDTree(np.array(points)).query_pairs(r=cfg.gating_radius_px, output_type="ndarray"):
                u, v = ids[a], ids[b]
                if u != v:
                    partners[u].add(v)
                    partners[v].add(u)

        def conjoint(u: int, v: int) -> bool:
            tu, tv = ts[u], ts[v]
            if len(tu) + len(tv) < 3 or (has_carried[u] and has_carried[v]):
                return False
            if not (tu[0] < tv[0] < tu[-1] or tv[0] < tu[0] < tv[-1]):
                return False
            return not set(tu).intersection(tv)

        def neighbour_pairs(u: int, v: int) -> list[tuple[Node, Node]]:
            a, b = (u, v) if (len(ts[u]), u) <= (len(ts[v]), v) else (v, u)  # a = the shorter
            tb = np.asarray(ts[b])
            pairs = []
            for node, t in zip(alive[a], ts[a], strict=True):
                k = int(np.searchsorted(tb, t))  # tb[k - 1] < t < tb[k] (no shared timestamps)
                if k > 0:
                    pairs.append((alive[b][k - 1], node))
                if k < len(tb):
                    pairs.append((node, alive[b][k]))
            return pairs

        def score_pairs_of(cands: list[tuple[int, int]]) -> list[tuple[float, int, int]]:
            cands = [(u, v) for u, v in cands if conjoint(u, v)]
            per = {c: neighbour_pairs(*c) for c in cands}
            todo = sorted({p for ps in per.values() for p in ps if p not in score_cache})
            if todo:
                raw = self._score_nodes(frames, todo, stats, "conjoint")
                for p, s in zip(todo, raw, strict=True):
                    score_cache[p] = s if s >= cfg.match_threshold else 0.0
            out = []
            for (u, v), ps in per.items():
                if not ps:
                    continue
                mean = float(np.mean([score_cache[p] for p in ps]))
                if mean >= cfg.conjoint_threshold and mean > 0:
                    out.append((mean, u, v))
            return out

        heap: list[tuple[float, int, int]] = []
        initial = sorted({(min(u, v), max(u, v)) for u in partners for v in partners[u]})
        for s, u, v in score_pairs_of(initial):
            heapq.heappush(heap, (-s, u, v))
        merges = 0
        while heap:
            neg, u, v = heapq.heappop(heap)
            if u not in alive or v not in alive:
                continue  # stale: one side was merged since
            w = next(next_id)
            nodes = sorted(alive.pop(u) + alive.pop(v), key=lambda n: (frames[n[0]].datetime, n))
            alive[w] = nodes
            ts[w] = [frames[f].datetime.timestamp() for f, _ in nodes]
            has_carried[w] = has_carried[u] or has_carried[v]
            partners[w] = (partners.pop(u, set()) | partners.pop(v, set())) - {u, v}
            for p in partners[w]:
                partners[p].discard(u)
                partners[p].discard(v)
                partners[p].add(w)
            merges += 1
            for s, a, b in score_pairs_of([(min(w, p), max(w, p)) for p in sorted(partners[w]) if p in alive]):
                heapq.heappush(heap, (-s, a, b))
        stats["conjoint_merges"] = merges
        if merges:
            self._link_scores.update({p: s for p, s in score_cache.items() if s > 0})
        return list(alive.values())

    # -- ids, filter, state -------------------------------------------------------------------------------

    def _finish(
        self,
        frames: list[Frame],
        chains: list[list[Node]],
        carried_of_node: dict[Node, OpenTrack],
        device: str,
        end: datetime | None,
    ) -> tuple[list[TrackedTuboid], list[OpenTrack]]:
        cfg = self.config
        max_dt = timedelta(seconds=cfg.max_delta_t_to_match)
        records = []
        carried_node: dict[int, Node | None] = {}  # record → its carried pseudo-node (the link into own[0])
        for nodes in chains:
            carried = [carried_of_node[n] for n in nodes if n in carried_of_node]
            own = [n for n in nodes if n not in carried_of_node]
            if len(carried) > 1:  # cannot happen (carried tails are never heads); keep the first, say so
                log.warning("tuboid joins %d carried tracks; keeping %s", len(carried), carried[0].track_id)
            records.append((carried[0] if carried else None, own))
            carried_node[len(records) - 1] = next((n for n in nodes if n in carried_of_node), None)
        # New track ids from their head; '~k' separates equal rounded heads in one frame.
        new_ids: dict[int, str] = {}
        seen: dict[str, int] = defaultdict(int)
        order = sorted(
            (k for k, (c, own) in enumerate(records) if c is None and own),
            key=lambda k: (frames[records[k][1][0][0]].datetime, records[k][1][0]),
        )
        for k in order:
            f, i = records[k][1][0]
            base = make_track_id(device, frames[f].datetime, tuple(frames[f].centroids[i]))
            n = seen[base]
            seen[base] += 1
            new_ids[k] = base if n == 0 else f"{base}~{n}"

        kept: list[TrackedTuboid] = []
        open_tracks: list[OpenTrack] = []
        tail_specs: list[tuple[TrackedTuboid, CropSpec]] = []
        for k, (carried, own) in enumerate(records):
            if carried is not None:
                track_id, head_dt, head_c, previous = (
                    carried.track_id, carried.head_datetime, carried.head_centroid, carried.n_frames
                )
            elif own:
                f, i = own[0]
                track_id, head_dt, previous = new_ids[k], frames[f].datetime, 0
                head_c = (float(frames[f].centroids[i][0]), float(frames[f].centroids[i][1]))
            else:
                continue
            links = self._link_scores
            obs = [Observation(frames[f], i, links.get((prev, (f, i))) if prev is not None else None)
                   for prev, (f, i) in zip([carried_node[k], *own], own, strict=False)]
            tail_dt = obs[-1].datetime if obs else carried.tail_datetime  # type: ignore[union-attr]
            is_open = end is not None and end - tail_dt <= max_dt
            tub = TrackedTuboid(track_id=track_id, index=-1, observations=obs, head_datetime=head_dt,
                                head_centroid=head_c, previous_frames=previous, open=is_open)
            if obs and tub.n_frames_total >= cfg.min_tuboid_frames:
                kept.append(tub)
            if is_open:
                if obs:
                    last = obs[-1]
                    spec = CropSpec(self_crop_key(last.frame, last.index), last.frame, last.instance.polygon)
                    tail_specs.append((tub, spec))
                else:  # carried, not continued, still open (short window): pass it on unchanged
                    open_tracks.append(carried)  # type: ignore[arg-type]
        if tail_specs:
            # Frames without pixels (geometric matchers, tests) give black crops: nothing better exists.
            with_pixels = [s for _, s in tail_specs if s.frame.image is not None or s.key in self.store]
            cut = iter(self.store.get_many(with_pixels)) if with_pixels else iter(())
            blank = np.zeros((cfg.crop_size, cfg.crop_size), dtype=np.uint8)
            crops = [next(cut) if (s.frame.image is not None or s.key in self.store) else blank
                     for _, s in tail_specs]
            for (tub, _), crop in zip(tail_specs, crops, strict=True):
                last = tub.observations[-1]
                open_tracks.append(
                    OpenTrack(track_id=tub.track_id, head_datetime=tub.head_datetime, head_centroid=tub.head_centroid,
                              n_frames=tub.n_frames_total, tail_key=last.frame.key, tail_datetime=last.datetime,
                              tail_polygon=last.instance.polygon.copy(), tail_crop=crop.copy())
                )
        kept.sort(key=lambda t: (t.observations[0].datetime, t.track_id))
        for n, tub in enumerate(kept):
            tub.index = n
        open_tracks.sort(key=lambda t: (t.tail_datetime, t.track_id))
        return kept, open_tracks


def track_frames(
    frames: Sequence[Frame],
    matcher: Matcher,
    device: str,
    config: SimConfig | None = None,
    state: TrackState | None = None,
    end: datetime | None = None,
) -> TrackingResult:
    """One-call form of :meth:`Tracker.track` (a fresh crop cache per call)."""
    return Tracker(matcher, config).track(frames, device=device, state=state, end=end)
