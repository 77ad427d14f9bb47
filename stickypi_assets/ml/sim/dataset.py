"""SIM training pairs from SiamSVGs (reference 4.3), with the negatives the original left out.

* Each ``<bundle>/data/<device>.<dt0>.<dt1>.svg`` is one :class:`PairSource`; the md5 of the **SVG file**
  decides its split (reference 2.8: validation iff md5 > ``'bf'``), so all pairs of one file share a split.
* **Positives**: one per group ``(i0, i1)``. **Negatives**: every other combination ``(i0, i1)`` of a
  frame-0 and a frame-1 instance, *including ungrouped instances*. The original used grouped instances only
  and only the ``i > j`` triangle (defect 15), which dropped the most informative negatives: an insect that
  escaped (no match in frame 1) next to a newly arrived one.
* Training batches come from :class:`BalancedSampler`: each pair is a uniformly random positive with
  probability 0.5, else a uniformly random negative (as the original). Validation pairs are every pair in a
  fixed order (shuffled once with ``random.seed(1)``), never augmented.
* Augmentation (training only, each crop independently): brightness and contrast factors U[0.75, 1.25],
  horizontal and vertical flips (p 0.5), rotation by a random multiple of 90°; distance and time gap are
  replaced, before their logarithms, by exponential draws whose mean is the true value.
* Crops are cut once per instance through a :class:`~stickypi_assets.ml.sim.features.CropStore`
  (:meth:`PairDataset.warm` decodes each frame once and cuts every crop; 11 kB per 105 px crop, so ~3
  crops per instance of the data set are held in memory) instead of the original's on-disk joblib cache.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stickypi_assets.formats.sim_svg import SimPair, parse_sim_name, read_sim_svg
from stickypi_assets.formats.split import Split, md5_bytes, split_for_md5
from stickypi_assets.ml.sim.features import (
    CropSpec,
    CropStore,
    Frame,
    PairBatch,
    delayed_crop_key,
    frame_pair_batch,
    self_crop_key,
)

log = logging.getLogger(__name__)

#: Seed of the one-off shuffle of validation pairs (the original's ``random.seed(1)``).
VALIDATION_SHUFFLE_SEED = 1


@dataclass
class PairSource:
    """One SiamSVG: its two frames (as tracker :class:`Frame`), groups, md5 and split."""

    name: str
    md5: str
    split: Split
    frame0: Frame
    frame1: Frame
    groups: list[tuple[int, int]] = field(default_factory=list)

    @classmethod
    def from_pair(cls, pair: SimPair, name: str, md5: str, split: Split | None = None) -> PairSource:
        """``split`` defaults to the md5 rule; frame keys are ``<name>#0``/``#1`` (unique per source)."""
        if pair.datetime0 is None or pair.datetime1 is None:
            raise ValueError(f"{name}: the pair has no datetimes (name it <device>.<dt0>.<dt1>.svg)")
        if not pair.datetime1 > pair.datetime0:
            raise ValueError(f"{name}: datetime1 must be later than datetime0")
        f0 = Frame(key=f"{name}#0", datetime=pair.datetime0, instances=list(pair.frame0.instances),
                   image=pair.frame0.decode_image)
        f1 = Frame(key=f"{name}#1", datetime=pair.datetime1, instances=list(pair.frame1.instances),
                   image=pair.frame1.decode_image)
        return cls(name=name, md5=md5, split=split or split_for_md5(md5), frame0=f0, frame1=f1,
                   groups=[(int(a), int(b)) for a, b in pair.groups])


def load_sources(data_dir: str | Path) -> list[PairSource]:
    """Every ``<device>.<dt0>.<dt1>.svg`` in ``data_dir`` (sorted, non-recursive); unreadable files are
    skipped with a warning so one bad upload does not stop training."""
    sources = []
    for path in sorted(Path(data_dir).glob("*.svg")):
        try:
            if parse_sim_name(path.name) is None:
                continue
            data = path.read_bytes()
            pair = read_sim_svg(data, name=path.name)
            if pair.datetime0 is None:  # read from bytes: take identity from the file name
                _, pair.datetime0, pair.datetime1 = parse_sim_name(path.name)  # type: ignore[misc]
            sources.append(PairSource.from_pair(pair, path.name, md5_bytes(data)))
        except Exception as exc:  # noqa: BLE001 - report and go on
            log.warning("skipping %s: %s", path, exc)
    return sources


@dataclass(frozen=True)
class PairRecord:
    """Pair ``(sources[source].frame0.instances[i0], ....frame1.instances[i1])`` with label 1 = same insect."""

    source: int
    i0: int
    i1: int
    label: int


def pair_records(source_index: int, source: PairSource) -> tuple[list[PairRecord], list[PairRecord]]:
    """``(positives, negatives)`` of one source: all groups, and all other frame-0 × frame-1 combinations."""
    groups = set(source.groups)
    positives = [PairRecord(source_index, i0, i1, 1) for i0, i1 in source.groups]
    negatives = [
        PairRecord(source_index, i0, i1, 0)
        for i0 in range(len(source.frame0.instances))
        for i1 in range(len(source.frame1.instances))
        if (i0, i1) not in groups
    ]
    return positives, negatives


def augment_crop(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast (about the crop mean), flips and a multiple of 90° rotation; float in [0, 1]."""
    x = crop * rng.uniform(0.75, 1.25)
    mean = float(x.mean())
    x = (x - mean) * rng.uniform(0.75, 1.25) + mean
    if rng.random() < 0.5:
        x = x[:, ::-1]
    if rng.random() < 0.5:
        x = x[::-1, :]
    x = np.rot90(x, int(rng.integers(4)))
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32)


class PairDataset:
    """Pairs of one split of a list of sources; batches as :class:`PairBatch` plus labels."""

    def __init__(self, sources: Sequence[PairSource], split: Split | None, store: CropStore | None = None,
                 crop_size: int = 105) -> None:
        self.sources = list(sources)
        self.split = split
        self.store = store or CropStore(crop_size=crop_size, max_crops=1 << 22, max_images=2)
        self.positives: list[PairRecord] = []
        self.negatives: list[PairRecord] = []
        for k, source in enumerate(self.sources):
            if split is not None and source.split != split:
                continue
            pos, neg = pair_records(k, source)
            self.positives.extend(pos)
            self.negatives.extend(neg)

    def __len__(self) -> int:
        return len(self.positives) + len(self.negatives)

    def used_sources(self) -> list[int]:
        return sorted({r.source for r in self.positives} | {r.source for r in self.negatives})

    def warm(self) -> None:
        """Cut every crop the pairs can need, one source (two decodes) at a time."""
        for k in self.used_sources():
            f0, f1 = self.sources[k].frame0, self.sources[k].frame1
            specs = [CropSpec(self_crop_key(f0, i), f0, inst.polygon) for i, inst in enumerate(f0.instances)]
            specs += [CropSpec(self_crop_key(f1, j), f1, inst.polygon) for j, inst in enumerate(f1.instances)]
            specs += [CropSpec(delayed_crop_key(f1, f0, i), f1, inst.polygon) for i, inst in enumerate(f0.instances)]
            self.store.get_many(specs)

    def validation_records(self) -> list[PairRecord]:
        """All pairs, in the fixed validation order."""
        records = self.positives + self.negatives
        random.Random(VALIDATION_SHUFFLE_SEED).shuffle(records)
        return records

    def spec_batch(self, records: Sequence[PairRecord]) -> tuple[PairBatch, np.ndarray]:
        """Un-augmented batch (crop specs through the store) and float labels; order kept."""
        batches = []
        order: dict[int, list[int]] = {}
        for pos, r in enumerate(records):
            order.setdefault(r.source, []).append(pos)
        positions = []
        for k, poss in order.items():
            s = self.sources[k]
            batches.append(frame_pair_batch(s.frame0, [records[p].i0 for p in poss], s.frame1,
                                            [records[p].i1 for p in poss], self.store))
            positions.extend(poss)
        merged = PairBatch.concat(batches)
        inverse = np.empty(len(positions), dtype=np.int64)
        inverse[np.asarray(positions, dtype=np.int64)] = np.arange(len(positions))
        batch = _take(merged, inverse)
        labels = np.array([r.label for r in records], dtype=np.float32)
        return batch, labels

    def training_batch(self, records: Sequence[PairRecord], rng: np.random.Generator) -> tuple[PairBatch, np.ndarray]:
        """Augmented batch with pixels (float32 crops) and jittered distance/time gap."""
        batch, labels = self.spec_batch(records)
        crops = [self.store.get_many(column).astype(np.float32) / 255.0 for column in batch.specs]  # type: ignore[union-attr]
        pixels = tuple(np.stack([augment_crop(c, rng) for c in column]) for column in crops)
        distance = np.array([rng.exponential(d) if d > 0 else 0.0 for d in batch.distance])
        delta_t = np.array([rng.exponential(t) if t > 0 else 0.0 for t in batch.delta_t])
        out = PairBatch(distance=distance, delta_t=delta_t, area0=batch.area0, area1=batch.area1,
                        instances0=batch.instances0, instances1=batch.instances1,
                        pixels=pixels)  # type: ignore[arg-type]
        return out, labels


def _take(batch: PairBatch, order: np.ndarray) -> PairBatch:
    specs = tuple([column[k] for k in order] for column in batch.specs) if batch.specs else None  # type: ignore[union-attr]
    return PairBatch(
        distance=batch.distance[order], delta_t=batch.delta_t[order], area0=batch.area0[order],
        area1=batch.area1[order], instances0=[batch.instances0[k] for k in order],
        instances1=[batch.instances1[k] for k in order], specs=specs, store=batch.store,  # type: ignore[arg-type]
    )


class BalancedSampler:
    """Each drawn pair is a random positive with probability 0.5, else a random negative."""

    def __init__(self, dataset: PairDataset, rng: np.random.Generator) -> None:
        if not dataset.positives or not dataset.negatives:
            raise ValueError(
                f"training needs positives and negatives, got {len(dataset.positives)} and {len(dataset.negatives)}"
            )
        self.dataset = dataset
        self.rng = rng

    def sample(self, n: int) -> list[PairRecord]:
        out = []
        for _ in range(n):
            pool = self.dataset.positives if self.rng.random() < 0.5 else self.dataset.negatives
            out.append(pool[int(self.rng.integers(len(pool)))])
        return out

