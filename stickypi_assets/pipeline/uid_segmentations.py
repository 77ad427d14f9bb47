"""Run the UID on one device-day of indexed images (no Dagster: used by the asset and usable from notebooks).

Inputs are the day's rows of table ``images`` (only ``status='ok'`` images are segmented; the others get a
``skipped`` row so every image of the day is accounted for). Each JPEG is fetched and decoded once, segmented
by :func:`stickypi_assets.ml.uid.predict.predict_image`, and written as a UID annotation SVG at
``uid_annotations/<device>/<device>.<datetime>.svg`` — the original tools' format, embedding the exact JPEG
bytes, so annotators can open and correct it in Inkscape. One failing image is recorded (``status='error'``)
and the day goes on. When *every* usable image of a day (two or more) fails, the cause is not the images but
the model or the machine (a bad bundle, out of memory): :class:`DayFailed` is raised instead, before anything
is written, so the partition fails visibly and its previous SVGs and rows stay as they were.

Re-running a day replaces its SVGs: new ones are written first, then SVGs of that day that the new run did
not produce (images since deleted) are removed, so there is never a moment with the day's annotations gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from shapely.geometry import Polygon

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.names import format_datetime
from stickypi_assets.formats.uid_svg import UidSvg, write_uid_svg
from stickypi_assets.ml.uid.change import ChangeAwarePredictor
from stickypi_assets.ml.uid.config import BUNDLE_NAME, UidConfig
from stickypi_assets.ml.uid.detector import Detector
from stickypi_assets.ml.uid.predict import PredictTimings, decode_jpeg
from stickypi_assets.storage.keys import uid_annotation_day_prefix, uid_annotation_key
from stickypi_assets.storage.object_store import ObjectStore

log = logging.getLogger(__name__)

def polygon_wkt(polygon: np.ndarray) -> str:
    return Polygon(polygon.astype(float)).wkt


class DayFailed(RuntimeError):
    """Every usable image of the day failed: a systemic error, not bad images (see the module docstring)."""


@dataclass
class DaySegmentation:
    """Rows of tables ``instances`` and ``segmented_images`` for one device-day, plus timings."""

    instances: pd.DataFrame
    images: pd.DataFrame
    timings: PredictTimings
    errors: list[tuple[str, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return int((self.images["status"] == status).sum()) if len(self.images) else 0


def instance_rows(
    instances: list[Instance], *, device: str, day: date, when, image_key: str, stem: str, version: str, run_id,
    carried_from: list[str | None] | None = None,
) -> list[dict]:  # fmt: skip
    rows = []
    carried_from = carried_from if carried_from is not None else [None] * len(instances)
    for i, (inst, source) in enumerate(zip(instances, carried_from, strict=True)):
        x, y, w, h = inst.bbox
        cx, cy = inst.centroid
        rows.append(
            {
                "device": device,
                "date": day,
                "datetime": when,
                "image_key": image_key,
                "instance_id": f"{stem}.{i:04d}",
                "class_name": inst.name,
                "polygon_wkt": polygon_wkt(inst.polygon),
                "bbox_x": x,
                "bbox_y": y,
                "bbox_w": w,
                "bbox_h": h,
                "area": float(inst.area),
                "centroid_x": float(cx),
                "centroid_y": float(cy),
                "score": None if inst.score is None else float(inst.score),
                "carried_from": source,
                "model_version": version,
                "run_id": run_id,
            }
        )
    return rows


def segment_device_day(
    store: ObjectStore,
    images: pd.DataFrame,
    detector: Detector,
    config: UidConfig,
    model_version: str,
    *,
    device: str,
    day: date,
    run_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DaySegmentation:
    """Segment every usable image of ``images`` (rows of table ``images`` for one device-day), in time order,
    re-running the detector only on the tiles that changed (:mod:`stickypi_assets.ml.uid.change`)."""
    timings = PredictTimings()
    predictor = ChangeAwarePredictor(detector, config)
    found_rows: list[dict] = []
    image_rows: list[dict] = []
    errors: list[tuple[str, str]] = []
    written: set[str] = set()
    images = images.sort_values("object_key") if len(images) else images
    for n, row in enumerate(images.itertuples(index=False), start=1):
        base = {
            "device": device,
            "date": day,
            "datetime": row.datetime,
            "image_key": row.object_key,
            "svg_key": None,
            "status": "ok",
            "error": None,
            "n_instances": None,
            "n_tiles": None,
            "tiles_run": None,
            "full_pass": None,
            "seconds": None,
            "model_version": model_version,
            "run_id": run_id,
        }
        if row.status != "ok":
            image_rows.append(base | {"status": "skipped", "error": f"image status {row.status}: {row.error}"})
            continue
        t0 = time.perf_counter()
        try:
            data = store.get_bytes(row.object_key)
            t_dec = time.perf_counter()
            image = decode_jpeg(data)
            timings.decode += time.perf_counter() - t_dec
            frame = predictor.predict(image, row.object_key, timings=timings)
            found = frame.instances
            dt_text = format_datetime(row.datetime.to_pydatetime())  # UTC, whatever the timestamp's zone
            stem = f"{device}.{dt_text}"
            doc = UidSvg(
                jpeg_bytes=data,
                width=image.shape[1],
                height=image.shape[0],
                metadata={
                    "device": device,
                    "datetime": dt_text,
                    "md5": row.md5,
                    "algo_name": BUNDLE_NAME,
                    "algo_version": model_version,
                },
                instances=found,
            )
            key = uid_annotation_key(device, stem)
            store.put_bytes(key, write_uid_svg(doc), content_type="image/svg+xml")
            written.add(key)
            found_rows += instance_rows(found, device=device, day=day, when=row.datetime, image_key=row.object_key,
                                        stem=stem, version=model_version, run_id=run_id,
                                        carried_from=frame.carried_from)  # fmt: skip
            image_rows.append(base | {
                "svg_key": key, "n_instances": len(found), "n_tiles": frame.n_tiles, "tiles_run": len(frame.tiles_run),
                "full_pass": frame.full_pass, "seconds": time.perf_counter() - t0,
            })  # fmt: skip
        except Exception as exc:  # one bad image never kills the day: record it, go on
            message = f"{type(exc).__name__}: {exc}"
            log.warning("UID failed on %s: %s", row.object_key, message)
            errors.append((row.object_key, message))
            image_rows.append(base | {"status": "error", "error": message, "seconds": time.perf_counter() - t0})
        if progress is not None:
            progress(n, len(images))
    n_usable = int((images["status"] == "ok").sum()) if len(images) else 0
    if n_usable >= 2 and len(errors) == n_usable:
        for key in written:  # nothing was written, but keep the invariant if that ever changes
            store.delete(key)
        raise DayFailed(
            f"the UID failed on all {n_usable} usable images of {device} {day}, so the model or the machine is at "
            f"fault, not the images; first error ({errors[0][0]}): {errors[0][1]}"
        )
    for info in store.list(uid_annotation_day_prefix(device, day)):
        if info.key not in written:
            store.delete(info.key)
    return DaySegmentation(
        instances=pd.DataFrame(found_rows),
        images=pd.DataFrame(image_rows),
        timings=timings,
        errors=errors,
    )
