"""ITC training data: tuboid folders + annotation databases → labelled items → (shots, sizes, label) samples.

Steps (reference 5.5-5.6), and where we differ from the original:

1. **Annotations.** Every ``*.db`` file under the data folder(s) is read (an ITC bundle's ``data/`` holds
   ``database.db``; several annotation campaigns can simply add theirs). Rows of all databases are pooled;
   submission times are UNIX seconds in every file, so "latest" means the same thing across files, and equal
   times go to the database read later (sorted paths), then to the row inserted later.
2. **One label per tuboid** (:func:`select_annotations`), rule ``ANNOTATION_RULE``:

   * ``latest`` (default, the original's): the latest submission wins, whoever made it
     (:func:`~stickypi_assets.formats.itc_database.latest_per_tuboid`); a later row is a correction.
   * ``majority``: each annotator's latest submission is one vote for a *class* (after label mapping, so
     ``Muscidae..`` and ``Muscidae.Musca.`` agree when one pattern covers both; ``Ambiguous`` and
     "matches no label" are votes too). The most voted class wins; a tie goes to the class whose latest vote
     is the most recent (so with one vote each, ``majority`` equals ``latest``).

   Either way, tuboids whose annotators disagree (their latest votes name different classes) are listed in
   :attr:`DatasetReport.disagreements`, so they can be sent back for review.
3. **Dropped, reported, never fatal** (the original crashed on most of these, defect 23): a winning
   ``Ambiguous`` verdict; a taxon that matches no label pattern; an annotated tuboid with no folder; a
   ``metadata.txt`` or ``tuboid.jpg`` that is missing or unreadable (two of the nine real test tuboids
   lack ``tuboid.jpg``). Each becomes a ``(tuboid_id, reason)`` in :attr:`DatasetReport.skipped`.
4. **Split** (:func:`split_by_label`): per label, tuboids sorted by md5 of ``metadata.txt``; the first
   ``floor(n * 191 / 255)`` go to training, at least ``MIN_TRAIN_PER_LABEL`` (default 1; 0 = the original,
   which put single-example labels entirely in validation, defect 24). The split is computed over every
   labelled tuboid whose ``metadata.txt`` is readable *before* tuboids with a bad ``tuboid.jpg`` are dropped,
   so a missing image never moves other tuboids between subsets, and with ``MIN_TRAIN_PER_LABEL = 0`` the
   subsets are exactly the original's. ``VALIDATION_SPLIT: device`` (:func:`split_by_device`) validates on
   whole held-out devices instead, a figure that predicts transfer to a new deployment.
5. **Samples** (:class:`ShotDataset`): shots, sizes and label as in :mod:`stickypi_assets.ml.itc.inputs`;
   deterministic evenly spaced shots for validation, random shots + augmentation for training, the
   augmentation drawn from a per-sample seed so a run (and a resumed run) is reproducible with any number of
   loader workers. Decoded tuboids are kept in a small LRU (:class:`TileCache`), already resized.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.itc_database import (
    AMBIGUOUS_TYPE,
    TuboidAnnotation,
    latest_per_tuboid,
    read_annotations,
)
from stickypi_assets.formats.labels import LabelError, LabelMap
from stickypi_assets.formats.split import SPLIT_CUT, Split, md5_bytes, md5_file
from stickypi_assets.formats.tuboids import METADATA_FILENAME, TuboidId, iter_tuboid_dirs, read_tuboid
from stickypi_assets.ml.bundles import DATA_RELPATH
from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.itc.inputs import (
    augment_tile,
    inference_shot_indices,
    normalise,
    prepare_tiles,
    size_feature,
    training_shot_indices,
)

log = logging.getLogger(__name__)

#: ``int('bf', 16)`` / ``int('ff', 16)``: the share of each label that goes to training (reference 5.6).
TRAIN_NUMERATOR = int(SPLIT_CUT, 16)
TRAIN_DENOMINATOR = 0xFF
#: Vote keys that are not classes (see :func:`select_annotations`).
AMBIGUOUS = "ambiguous"
UNMATCHED = "unmatched"


# ------------------------------------------------------------------------------------------------ annotations


@dataclass(frozen=True)
class Selection:
    """The verdict for one tuboid: the row that decided it, its class (``None`` = dropped, with ``reason``)."""

    tuboid_id: str
    annotation: TuboidAnnotation
    label: int | None
    reason: str | None
    n_rows: int
    n_annotators: int
    disagreement: bool


def _vote_key(row: TuboidAnnotation, label_map: LabelMap) -> int | str:
    if row.type == AMBIGUOUS_TYPE:
        return AMBIGUOUS
    try:
        return label_map.label_for(row.taxon)
    except LabelError:
        return f"{UNMATCHED}:{row.taxon}"


def select_annotations(
    rows: Sequence[TuboidAnnotation], label_map: LabelMap, rule: str = "latest"
) -> dict[str, Selection]:
    """One :class:`Selection` per annotated tuboid (keys sorted), by ``rule`` (see the module docstring).

    ``rows`` are in reading order (databases in order, rows in table order): that order breaks ties between
    equal submission times, as in :func:`latest_per_tuboid`.
    """
    if rule not in ("latest", "majority"):
        raise ValueError(f"annotation rule {rule!r} not in ('latest', 'majority')")
    order = {id(row): i for i, row in enumerate(rows)}
    by_tuboid: dict[str, list[TuboidAnnotation]] = {}
    for row in rows:
        by_tuboid.setdefault(row.tuboid_id, []).append(row)
    out: dict[str, Selection] = {}
    for tuboid_id in sorted(by_tuboid):
        tuboid_rows = by_tuboid[tuboid_id]
        by_user: dict[str, list[TuboidAnnotation]] = {}
        for row in tuboid_rows:
            by_user.setdefault(row.user, []).append(row)
        # each annotator's latest row (same ordering rule as latest_per_tuboid)
        votes = [latest_per_tuboid(user_rows)[tuboid_id] for user_rows in by_user.values()]
        keys = {id(v): _vote_key(v, label_map) for v in votes}
        disagreement = len(set(keys.values())) > 1
        if rule == "latest":
            winner = latest_per_tuboid(tuboid_rows)[tuboid_id]
            key = _vote_key(winner, label_map)
        else:
            counts: dict[int | str, int] = {}
            recent: dict[int | str, tuple[float, int, TuboidAnnotation]] = {}
            for v in votes:
                k = keys[id(v)]
                counts[k] = counts.get(k, 0) + 1
                rank = (v.datetime, order[id(v)], v)
                if k not in recent or rank[:2] >= recent[k][:2]:
                    recent[k] = rank
            best = max(counts.values())
            key = max((k for k in counts if counts[k] == best), key=lambda k: recent[k][:2])
            winner = recent[key][2]
        if key == AMBIGUOUS:
            label, reason = None, f"annotated {AMBIGUOUS_TYPE} (by {winner.user or '?'})"
        elif isinstance(key, str):
            label, reason = None, f"taxon {winner.taxon!r} matches no label pattern"
        else:
            label, reason = key, None
        out[tuboid_id] = Selection(
            tuboid_id=tuboid_id,
            annotation=winner,
            label=label,
            reason=reason,
            n_rows=len(tuboid_rows),
            n_annotators=len(by_user),
            disagreement=disagreement,
        )
    return out


# ------------------------------------------------------------------------------------------------ split


def n_train_for(n: int, min_train_per_label: int = 1) -> int:
    """Tuboids of an ``n``-tuboid label that go to training: ``floor(n * 191 / 255)``, at least
    ``min(min_train_per_label, n)``."""
    return max(n * TRAIN_NUMERATOR // TRAIN_DENOMINATOR, min(min_train_per_label, n))


def split_by_label(items: Sequence[tuple[str, int, str]], min_train_per_label: int = 1) -> dict[str, Split]:
    """``{tuboid_id: split}`` for ``(tuboid_id, label, md5 of metadata.txt)`` items (reference 5.6).

    Within a label, items are ordered by md5 (then id, for identical files) and the first
    :func:`n_train_for` go to training.
    """
    by_label: dict[int, list[tuple[str, str]]] = {}
    for tuboid_id, label, md5 in items:
        by_label.setdefault(label, []).append((md5, tuboid_id))
    out: dict[str, Split] = {}
    for label in sorted(by_label):
        ordered = sorted(by_label[label])
        n_train = n_train_for(len(ordered), min_train_per_label)
        for k, (_, tuboid_id) in enumerate(ordered):
            out[tuboid_id] = "train" if k < n_train else "validation"
    return out


def tuboid_device(tuboid_id: str) -> str | None:
    """The device of a tuboid id (``<device>.<start>.<end>.<version>.<NNNN>``), None when it is not one."""
    try:
        return TuboidId.parse(tuboid_id).device
    except ValueError:
        return None


def split_by_device(
    items: Sequence[tuple[str, int, str]], min_train_per_label: int = 1, held_share: float = 0.25
) -> tuple[dict[str, Split], list[str]]:
    """``({tuboid_id: split}, warnings)``: validation = the tuboids of held-out devices (see ``VALIDATION_SPLIT``).

    Devices are ordered by the md5 of their id and held out, in that order, until they hold ``held_share`` of the
    items, keeping at least one device for training. Labels with no item left on a training device, and items
    whose id names no device, get :func:`split_by_label`'s split.
    """
    device_of = {t: tuboid_device(t) for t, _, _ in items}
    counts: dict[str, int] = {}
    for d in device_of.values():
        if d is not None:
            counts[d] = counts.get(d, 0) + 1
    if len(counts) < 2:
        return split_by_label(items, min_train_per_label), [
            f"VALIDATION_SPLIT device needs tuboids of two devices or more, found {len(counts)}: md5 split used"
        ]
    held: set[str] = set()
    for device in sorted(counts, key=lambda d: md5_bytes(d.encode()))[:-1]:
        if sum(counts[h] for h in held) >= held_share * len(items):
            break
        held.add(device)
    trained_labels = {label for t, label, _ in items if device_of[t] is not None and device_of[t] not in held}
    by_device = [(t, label, md5) for t, label, md5 in items if device_of[t] is not None and label in trained_labels]
    out = {t: ("validation" if device_of[t] in held else "train") for t, _, _ in by_device}
    rest = [item for item in items if item[0] not in out]
    out.update(split_by_label(rest, min_train_per_label))
    warnings = [f"validation devices {sorted(held)} (of {len(counts)})"]
    if rest:
        warnings.append(f"{len(rest)} tuboid(s) of labels seen on no training device (or of no device): md5 split")
    return out, warnings


# ------------------------------------------------------------------------------------------------ items


@dataclass(frozen=True)
class ItcItem:
    """One labelled, readable tuboid."""

    tuboid_id: str
    directory: Path
    label: int
    taxon: str
    md5: str
    split: Split
    n_tiles: int


@dataclass
class DatasetReport:
    """What was read, and every tuboid left out with the reason (nothing here stops training)."""

    databases: list[str] = field(default_factory=list)
    n_rows: int = 0
    n_annotated: int = 0
    n_folders: int = 0
    #: ``(tuboid_id, reason)``, sorted: Ambiguous, unmatched taxon, no folder, unreadable files.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Tuboids whose annotators' latest votes name different classes.
    disagreements: list[str] = field(default_factory=list)
    #: Tuboid folders without any annotation (not an error: not annotated yet).
    unannotated: list[str] = field(default_factory=list)
    #: Split of every labelled tuboid with a readable ``metadata.txt``, skipped ones included.
    split: dict[str, Split] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        counts = {name: getattr(self, name) for name in ("databases", "n_rows", "n_annotated", "n_folders")}
        return counts | {
            "skipped": [{"tuboid_id": t, "reason": r} for t, r in self.skipped],
            "disagreements": self.disagreements,
            "unannotated": len(self.unannotated),
            "warnings": self.warnings,
        }


class TileCache:
    """LRU of decoded tuboids as ``(RGB tiles resized to input_size, size features)``; ``capacity`` 0 = off."""

    def __init__(self, input_size: int, capacity: int = 128) -> None:
        self.input_size = input_size
        self.capacity = capacity
        self._data: OrderedDict[Path, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.n_loads = 0

    def get(self, directory: str | Path) -> tuple[np.ndarray, np.ndarray]:
        directory = Path(directory)
        hit = self._data.get(directory)
        if hit is not None:
            self._data.move_to_end(directory)
            return hit
        tuboid = read_tuboid(directory)
        self.n_loads += 1
        value = (
            prepare_tiles(tuboid.tiles, self.input_size),
            size_feature([f.scale for f in tuboid.tile_frames]),
        )
        if self.capacity:
            self._data[directory] = value
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)
        return value


@dataclass
class ItcData:
    """Training and validation items (both sorted by md5), the label map and the report."""

    train: list[ItcItem]
    validation: list[ItcItem]
    label_map: LabelMap
    report: DatasetReport
    cache: TileCache

    def manifest(self) -> dict[str, Any]:
        """JSON-ready description of the data a model was trained on (``output/dataset.json``)."""
        return {
            "train": [{"tuboid_id": i.tuboid_id, "label": i.label, "md5": i.md5} for i in self.train],
            "validation": [{"tuboid_id": i.tuboid_id, "label": i.label, "md5": i.md5} for i in self.validation],
            "report": self.report.to_dict(),
        }


def find_databases(data_dir: str | Path) -> list[Path]:
    """Every ``*.db`` file under ``data_dir`` (recursive, sorted)."""
    return sorted(p for p in Path(data_dir).rglob("*.db") if p.is_file())


def load_itc_data(
    data_dirs: str | Path | Sequence[str | Path],
    config: ItcConfig,
    *,
    databases: Sequence[str | Path] | None = None,
    cache: TileCache | None = None,
) -> ItcData:
    """Labelled tuboids of ``data_dirs`` (folders searched recursively for tuboids and, unless ``databases``
    is given, for ``*.db`` annotation files), split and checked; see the module docstring.

    Every kept tuboid is read once here (so a bad ``tuboid.jpg`` is reported now, not mid-training) through
    ``cache``, which then holds the most recently read ones (up to its capacity) for the training loop.
    Raises ``FileNotFoundError`` when there is no data folder or no database at all; everything else is
    reported in ``report``.
    """
    dirs = [Path(data_dirs)] if isinstance(data_dirs, str | Path) else [Path(d) for d in data_dirs]
    for d in dirs:
        if not d.is_dir():
            raise FileNotFoundError(f"ITC data folder {d} does not exist")
    db_paths = [Path(p) for p in databases] if databases is not None else [p for d in dirs for p in find_databases(d)]
    if not db_paths:
        raise FileNotFoundError(f"no annotation database (*.db) under {', '.join(map(str, dirs))}")
    label_map = config.label_map
    cache = cache or TileCache(config.input_size, config.cache_tuboids)
    report = DatasetReport(databases=[str(p) for p in db_paths])

    rows: list[TuboidAnnotation] = []
    for path in db_paths:
        rows.extend(read_annotations(path))
    report.n_rows = len(rows)
    selections = select_annotations(rows, label_map, config.annotation_rule)
    report.n_annotated = len(selections)
    report.disagreements = [t for t, s in selections.items() if s.disagreement]

    folders: dict[str, Path] = {}
    for d in dirs:
        for directory in iter_tuboid_dirs(d):
            if directory.name in folders:
                report.warnings.append(f"tuboid {directory.name} found twice: {folders[directory.name]} used, "
                                       f"{directory} ignored")  # fmt: skip
                continue
            folders[directory.name] = directory
    report.n_folders = len(folders)
    report.unannotated = sorted(set(folders) - set(selections))

    skipped: list[tuple[str, str]] = []
    candidates: list[tuple[Selection, Path, str]] = []
    for tuboid_id, sel in selections.items():
        if sel.label is None:
            skipped.append((tuboid_id, sel.reason or "no label"))
            continue
        directory = folders.get(tuboid_id)
        if directory is None:
            skipped.append((tuboid_id, "annotated but no tuboid folder found (expected <series>/<tuboid>/)"))
            continue
        try:
            md5 = md5_file(directory / METADATA_FILENAME)
        except OSError as exc:
            skipped.append((tuboid_id, f"{METADATA_FILENAME} unreadable: {exc}"))
            continue
        candidates.append((sel, directory, md5))
    keyed = [(s.tuboid_id, int(s.label), md5) for s, _, md5 in candidates]  # type: ignore[arg-type]
    if config.validation_split == "device":
        report.split, notes = split_by_device(keyed, config.min_train_per_label)
        report.warnings += notes
    else:
        report.split = split_by_label(keyed, config.min_train_per_label)

    train: list[ItcItem] = []
    validation: list[ItcItem] = []
    for sel, directory, md5 in candidates:
        try:
            tiles, _ = cache.get(directory)
        except (FormatError, OSError) as exc:
            skipped.append((sel.tuboid_id, str(exc)))
            continue
        item = ItcItem(
            tuboid_id=sel.tuboid_id,
            directory=directory,
            label=int(sel.label),  # type: ignore[arg-type]
            taxon=sel.annotation.taxon,
            md5=md5,
            split=report.split[sel.tuboid_id],
            n_tiles=len(tiles),
        )
        (train if item.split == "train" else validation).append(item)
    train.sort(key=lambda i: (i.md5, i.tuboid_id))
    validation.sort(key=lambda i: (i.md5, i.tuboid_id))
    report.skipped = sorted(skipped)

    if report.skipped:
        report.warnings.append(f"{len(report.skipped)} annotated tuboid(s) skipped")
    if report.disagreements:
        report.warnings.append(
            f"{len(report.disagreements)} tuboid(s) whose annotators disagree (rule {config.annotation_rule!r} decided)"
        )
    for tuboid_id, reason in report.skipped:
        log.warning("ITC data: skipped %s: %s", tuboid_id, reason)
    log.info("ITC data: %d training / %d validation tuboids, %d skipped, %d rows from %d database(s)",
             len(train), len(validation), len(report.skipped), report.n_rows, len(db_paths))  # fmt: skip
    return ItcData(train=train, validation=validation, label_map=label_map, report=report, cache=cache)


def bundle_data(bundle_dir: str | Path, config: ItcConfig, cache: TileCache | None = None) -> ItcData:
    """:func:`load_itc_data` on ``<bundle>/data`` (tuboid folders and ``database.db`` files)."""
    return load_itc_data(Path(bundle_dir) / DATA_RELPATH, config, cache=cache)


def write_manifest(data: ItcData, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data.manifest(), indent=1), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ samples


def class_weights(labels: Sequence[int], n_classes: int, power: float) -> np.ndarray:
    """Per-class weight ``n_c ** -power``, normalised so the mean weight over the items is 1 (0 if absent)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    present = counts > 0
    weights[present] = counts[present] ** -power
    total = float((weights * counts).sum())
    if total > 0:
        weights *= counts.sum() / total
    return weights


class ShotDataset(torch.utils.data.Dataset):
    """Samples ``(shots (S, 3, H, W) float32, sizes (S,) float32, label int)`` of :class:`ItcItem` objects.

    ``dataset[i]`` gives item ``i`` with deterministic (inference) shots and no augmentation;
    ``dataset[(i, seed)]`` gives random training shots and augmentation drawn from ``seed``.
    """

    def __init__(self, items: Sequence[ItcItem], config: ItcConfig, cache: TileCache | None = None) -> None:
        self.items = list(items)
        self.config = config
        self.cache = cache or TileCache(config.input_size, config.cache_tuboids)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        index, seed = (key, None) if isinstance(key, int | np.integer) else key
        item = self.items[int(index)]
        tiles, sizes = self.cache.get(item.directory)
        c = self.config
        if seed is None:
            chosen = inference_shot_indices(len(tiles), c.n_shots)
            shots = tiles[chosen]
        else:
            rng = np.random.default_rng(int(seed))
            chosen = training_shot_indices(len(tiles), c.n_shots, rng)
            shots = np.stack([
                augment_tile(tiles[k], rng, brightness=c.brightness, contrast=c.contrast,
                             saturation=c.saturation, flip=c.flip, rotate=c.rotate)
                for k in chosen
            ])  # fmt: skip
        return torch.from_numpy(normalise(shots)), torch.from_numpy(sizes[chosen]), item.label


class BalancedBatchSampler(torch.utils.data.Sampler):
    """Training batches for rounds ``start .. n_rounds - 1``: lists of ``(index, sample seed)``.

    Round ``r`` draws from ``default_rng([seed, r])`` alone, so a run resumed at round ``r`` sees exactly
    the batches the uninterrupted run would have. Items are drawn with replacement, with probability
    ∝ their class weight when ``class_balance == 'sampler'``, else uniformly.
    """

    def __init__(self, labels: Sequence[int], config: ItcConfig, start: int, n_rounds: int) -> None:
        self.n = len(labels)
        self.batch_size = config.ims_per_batch
        self.seed = config.seed
        self.start, self.n_rounds = start, n_rounds
        if config.class_balance == "sampler" and self.n:
            w = class_weights(labels, max(labels) + 1, config.class_balance_power)[np.asarray(labels)]
            self.p: np.ndarray | None = w / w.sum()
        else:
            self.p = None

    def __len__(self) -> int:
        return max(0, self.n_rounds - self.start)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for r in range(self.start, self.n_rounds):
            rng = np.random.default_rng([self.seed, r])
            index = rng.choice(self.n, size=self.batch_size, replace=True, p=self.p)
            seeds = rng.integers(0, 2**62, size=self.batch_size)
            yield [(int(i), int(s)) for i, s in zip(index, seeds, strict=True)]
