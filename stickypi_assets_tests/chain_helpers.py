"""Shared set-up for tests of the chain's later stages without running the UID.

:func:`ground_truth_segmentations` fills table ``segmented_images`` with rows pointing at the generator's
ground-truth SVGs (what a perfect UID would have written); :class:`IouSimModel` is the SIM resource with a
deterministic bbox-IoU matcher. Tests of tracking *accuracy* use a trained network instead
(``ml/sim/test_tracking_accuracy.py``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from stickypi_assets.formats.uid_svg import read_uid_svg
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.uid_segmentations import instance_rows
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import INSTANCES, SEGMENTED_IMAGES
from stickypi_assets.storage.warehouse import PartitionKey
from stickypi_assets_tests.ml.sim.helpers import IouMatcher


class IouSimModel(ModelResource):
    """The SIM resource with a bbox-IoU matcher: deterministic, no training needed.

    ``gating_radius_px`` defaults to the SIM's (200 px, meant for 2592 px frames); scale it down for small
    synthetic frames, or every pair of a crowded frame is scored.
    """

    stage: str = "sim"
    gating_radius_px: float = 200.0

    def load(self) -> tuple[Any, Any, str]:
        config = SimConfig(min_tuboid_frames=3, crop_size=105, gating_radius_px=self.gating_radius_px)
        return IouMatcher(), config, "v-iou"


def ground_truth_segmentations(store: LocalObjectStore, storage: StickyPiStorage, device: str, days: list[date]):
    """Write ``segmented_images`` and ``instances`` partitions from the ground truth's SVGs; returns the former."""
    images = pd.read_parquet(store.local_path("ground_truth/images.parquet"))
    wh = storage.warehouse()
    out = {}
    with wh.deferred_publish():  # one copy of the warehouse for all the days, not one per day
        for day in days:
            rows = images[(images.device == device) & (images.date == day) & (images.status == "ok")]
            seg = pd.DataFrame({
                "datetime": rows.datetime, "image_key": rows.key, "svg_key": rows.svg_key, "status": "ok",
                "n_instances": rows.n_instances.astype(int), "model_version": "ground-truth",
            })  # fmt: skip
            wh.write_partition(SEGMENTED_IMAGES.name, PartitionKey(device, day), seg, publish=False)
            instances = []
            for r in rows.itertuples():
                doc = read_uid_svg(store.get_bytes(r.svg_key))
                instances += instance_rows(doc.instances, device=device, day=day, when=r.datetime, image_key=r.key,
                                           stem=r.stem, version="ground-truth", run_id=None)  # fmt: skip
            wh.write_partition(INSTANCES.name, PartitionKey(device, day), pd.DataFrame(instances))
            out[day] = seg
    return out
