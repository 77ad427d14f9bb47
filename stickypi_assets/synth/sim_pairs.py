"""SIM training pairs and tracking ground truth from a synthetic deployment.

No public grouped two-frame SIM SVGs exist, so the matcher trains on pairs the generator can annotate
exactly: two consecutive readable frames of one device, their ground-truth UID SVGs (embedding the exact
JPEG bytes) and, as groups, every insect visible in both (same ``insect_id`` in ``frames.parquet``).
The pairs are :class:`~stickypi_assets.formats.sim_svg.SimPair` objects, so they are written in the original
SiamSVG format (:func:`write_pair_svgs`) and go through the same reader as annotators' files.

:func:`ground_truth_tracks` gives the per-frame truth (insect id and box per visible instance) that tracking
metrics compare tuboids with (:mod:`stickypi_assets.ml.sim.evaluate`).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from stickypi_assets.formats.sim_svg import SimPair, sim_name, write_sim_svg
from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.storage.keys import ground_truth_key
from stickypi_assets.storage.object_store import ObjectStore


def _read_table(store: ObjectStore, name: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.get_bytes(ground_truth_key(f"{name}.parquet"))))


def ground_truth_tracks(store: ObjectStore, devices: list[str] | None = None) -> pd.DataFrame:
    """Visible ground-truth instances: ``device, datetime, image_stem, instance_index, insect_id``, bbox, polygon.

    Only instances drawn in a readable image (``status == 'visible'``) are truth a tracker can see;
    occluded insects, missing and corrupt frames are left out.
    """
    frames = _read_table(store, "frames")
    frames = frames[frames.status == "visible"]
    if devices is not None:
        frames = frames[frames.device.isin(devices)]
    cols = ["device", "datetime", "image_stem", "instance_index", "insect_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h",
            "polygon"]
    out = frames[cols].copy()
    out["instance_index"] = out["instance_index"].astype(int)
    return out.sort_values(["device", "datetime", "instance_index"]).reset_index(drop=True)


def ground_truth_pairs(
    store: ObjectStore, *, devices: list[str] | None = None, every: int = 1, limit: int | None = None
) -> Iterator[SimPair]:
    """Consecutive readable frames of each device as grouped pairs (every ``every``-th pair, at most ``limit``).

    Frame ``k`` and ``k + 1`` are consecutive in the device's readable images (a missing or corrupt image in
    between makes a longer gap, as the tracker sees it).
    """
    if every < 1:
        raise ValueError("every must be >= 1")
    images = _read_table(store, "images")
    images = images[images.status == "ok"]
    if devices is not None:
        images = images[images.device.isin(devices)]
    truth = ground_truth_tracks(store, devices)
    ids = {stem: dict(zip(g.instance_index, g.insect_id, strict=True)) for stem, g in truth.groupby("image_stem")}
    produced = 0
    for _, dev_images in images.sort_values(["device", "datetime"]).groupby("device", sort=True):
        rows = list(dev_images.itertuples(index=False))
        for k, (a, b) in enumerate(itertools.pairwise(rows)):
            if k % every:
                continue
            if limit is not None and produced >= limit:
                return
            doc0 = read_uid_svg(store.get_bytes(a.svg_key), name=f"{a.stem}.svg")
            doc1 = read_uid_svg(store.get_bytes(b.svg_key), name=f"{b.stem}.svg")
            later = {insect: i for i, insect in ids.get(b.stem, {}).items()}
            groups = sorted((i, later[insect]) for i, insect in ids.get(a.stem, {}).items() if insect in later)
            yield SimPair(
                frame0=doc0,
                frame1=doc1,
                groups=groups,
                device=a.device,
                datetime0=a.datetime.to_pydatetime(),
                datetime1=b.datetime.to_pydatetime(),
            )
            produced += 1


def write_pair_svgs(pairs: Iterator[SimPair] | list[SimPair], folder: str | Path) -> list[Path]:
    """Write each pair as ``<folder>/<device>.<dt0>.<dt1>.svg`` (a SIM bundle's ``data/``); returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for pair in pairs:
        path = folder / sim_name(pair.device, pair.datetime0, pair.datetime1)  # type: ignore[arg-type]
        write_sim_svg(pair, path)
        paths.append(path)
    return paths
