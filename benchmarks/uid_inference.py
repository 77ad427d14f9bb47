"""How fast UID inference is on full-size 2592 x 1944 frames: per image and for a streamed device-day.

    python benchmarks/uid_inference.py                  # 72 frames (a device-day at one per 20 min)
    python benchmarks/uid_inference.py --n 3            # quick run
    python benchmarks/uid_inference.py --backbones small --score-threshold 0
    python benchmarks/uid_inference.py --precision fp32 --no-channels-last   # the path before cheaper passes

Every faster path side by side on a *trained* model, with accuracy: ``benchmarks/uid_speedups.py``.

For each backbone (random weights: compute does not depend on the weights' values, only on how many
detections survive, see below) a fresh subprocess loads the model and measures two runs:

* ``1 image``: read JPEG bytes → decode once → :func:`predict_image`, in memory;
* ``N images``: the device-day exactly as the ``uid_segmentations`` asset runs it: ``N`` distinct JPEGs in a
  local object store, indexed by :func:`~stickypi_assets.pipeline.raw_images.index_device_day`, then
  :func:`~stickypi_assets.pipeline.uid_segmentations.segment_device_day` fetches each image, decodes it once, predicts,
  writes its annotation SVG (embedding the JPEG) and builds the table rows.

Printed per run, in seconds per image: ``decode``, ``model`` (forward passes), ``post`` (mask → polygon,
filters, cross-tile merge), ``e2e`` = the measured wall time (everything, including fetching, SVG writing and
rows), ``e2e/model``; tiles and final instances per image; peak resident memory of the process
(``ru_maxrss``: torch allocates outside Python's heap, so tracemalloc would miss most of it). A streamed
day's peak memory does not grow with ``N`` when each image is dropped after use.

Frames are the real raw JPEGs in ``../shared/data/stickypi/raw`` (cycled, each copy made distinct by one
16 x 16 block so the index does not treat it as a duplicate upload), else a synthetic card. With random weights
almost no detection reaches the default score threshold 0.85, so post-processing looks free;
``--score-threshold 0`` keeps every detection the model emits (up to ``DETECTIONS_PER_IMAGE`` per tile), an
upper bound on post-processing and SVG-writing cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

RAW_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stickypi" / "raw"
# "small" = the test/CPU model: ResNet-18 with a narrow FPN and heads (see stickypi_assets.ml.uid.config)
BACKBONES = {
    "resnet50_fpn": {"BACKBONE": "resnet50_fpn"},
    "resnet18_fpn": {"BACKBONE": "resnet18_fpn"},
    "small": {"BACKBONE": "resnet18_fpn", "FPN_CHANNELS": 64, "BOX_HEAD_DIM": 256, "MASK_HEAD_CHANNELS": 64},
}


def frames() -> list[bytes]:
    paths = sorted(RAW_DIR.glob("*/*.jpg")) if RAW_DIR.is_dir() else []
    if paths:
        return [p.read_bytes() for p in paths]
    rng = np.random.default_rng(0)
    card = np.empty((1944, 2592, 3), np.uint8)
    card[:] = (40, 220, 230)
    for _ in range(150):
        x, y = int(rng.integers(0, 2592)), int(rng.integers(0, 1944))
        cv2.ellipse(
            card,
            (x, y),
            (int(rng.integers(8, 40)), int(rng.integers(5, 20))),
            float(rng.uniform(0, 180)),
            0,
            360,
            (30, 40, 60),
            -1,
        )
    return [cv2.imencode(".jpg", card, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def distinct_frames(n: int) -> Iterator[bytes]:
    """``n`` different JPEGs cycled from :func:`frames` (a corner block changed per copy, re-encoded at quality 95).

    A generator, one frame at a time, so that the benchmark itself does not hold the day in memory."""
    sources = frames()
    for k in range(n):
        image = cv2.imdecode(np.frombuffer(sources[k % len(sources)], np.uint8), cv2.IMREAD_COLOR)
        image[:16, :16] = (k * 3 % 256, k * 7 % 256, k * 11 % 256)  # a block: JPEG keeps it distinct
        yield cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def device_day(n: int, detector, config) -> dict:
    """``n`` images of one device-day through the asset's core on a temporary local object store."""
    import tempfile
    from datetime import UTC, date, datetime, timedelta

    from stickypi_assets.formats.names import format_datetime
    from stickypi_assets.pipeline.raw_images import index_device_day
    from stickypi_assets.pipeline.uid_segmentations import segment_device_day
    from stickypi_assets.storage.keys import raw_image_key
    from stickypi_assets.storage.object_store import LocalObjectStore

    device, day = "0a5bb6f4", date(2020, 6, 20)
    with tempfile.TemporaryDirectory(prefix="uid-bench-") as tmp:
        store = LocalObjectStore(tmp)
        for k, data in enumerate(distinct_frames(n)):
            when = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=20 * k)
            store.put_bytes(raw_image_key(device, f"{device}.{format_datetime(when)}"), data)
            del data
        images = index_device_day(store, device, day).rows
        assert (images.status == "ok").sum() == n, images.status.value_counts()
        start = time.perf_counter()
        result = segment_device_day(store, images, detector, config, "bench", device=device, day=day)
        wall = time.perf_counter() - start
        svg_mb = sum(i.size for i in store.list("uid_annotations/")) / n / 1e6
    t = result.timings
    return {
        "images": n, "decode": t.decode / n, "model": t.model / n, "post": t.postprocess / n, "wall": wall / n,
        "tiles": t.tiles / n, "instances": len(result.instances) / n, "peak_rss_mb": peak_rss_mb(),
        "svg_mb": svg_mb, "errors": result.count("error"),
    }  # fmt: skip


def worker(name: str, n: int, score_threshold: float | None, batch: int, precision: str, channels_last: bool) -> dict:
    import torch

    from stickypi_assets.ml.uid.config import UidConfig
    from stickypi_assets.ml.uid.model import MaskRCNNDetector
    from stickypi_assets.ml.uid.predict import PredictTimings, decode_jpeg, predict_image

    overrides = dict(BACKBONES[name], TILE_BATCH_SIZE=batch, INFERENCE_PRECISION=precision,
                     CHANNELS_LAST=channels_last)  # fmt: skip
    if score_threshold is not None:
        overrides["SCORE_THRESHOLD"] = score_threshold
    config = UidConfig.from_dict(overrides, strict=True)
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    detector = MaskRCNNDetector(config)
    load_s = time.perf_counter() - t0
    results = {"backbone": name, "load_s": load_s, "threads": torch.get_num_threads(), "rss_base_mb": rss_before}
    jpeg = frames()[0]
    timings = PredictTimings()
    start = time.perf_counter()
    t = time.perf_counter()
    image = decode_jpeg(jpeg)
    timings.decode += time.perf_counter() - t
    instances = len(predict_image(detector, image, config, timings=timings))
    results["1 image"] = {
        "images": 1, "decode": timings.decode, "model": timings.model, "post": timings.postprocess,
        "wall": time.perf_counter() - start, "tiles": timings.tiles, "instances": instances,
        "peak_rss_mb": peak_rss_mb(),
    }  # fmt: skip
    del image
    results[f"{n} images"] = device_day(n, detector, config)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=72, help="images in the streamed device-day (default 72)")
    parser.add_argument("--backbones", nargs="+", default=["resnet50_fpn", "small"], choices=sorted(BACKBONES))
    parser.add_argument("--score-threshold", type=float, default=None, help="override SCORE_THRESHOLD (0.85)")
    parser.add_argument("--tile-batch", type=int, default=1, help="tiles per forward pass (default 1)")
    parser.add_argument("--precision", default="auto", help="INFERENCE_PRECISION of the backbone (default auto)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                        help="CHANNELS_LAST (default on)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.score_threshold, args.tile_batch, args.precision,
                                args.channels_last)))  # fmt: skip
        return

    source = f"{len(list(RAW_DIR.glob('*/*.jpg')))} raw JPEGs" if RAW_DIR.is_dir() else "a synthetic card"
    print(
        f"UID inference: 2592 x 1944 frames from {source}, {os.cpu_count()} CPU(s), random weights, "
        f"score threshold {args.score_threshold if args.score_threshold is not None else 'config (0.85)'}, "
        f"backbone precision {args.precision}, channels-last {args.channels_last}"
    )
    header = f"{'backbone':<13} {'run':<10} {'decode':>7} {'model':>7} {'post':>7} {'e2e':>7} {'e2e/model':>9} "
    header += f"{'tiles':>5} {'inst':>5} {'peak RSS':>9}"
    print(header + "   (seconds per image)")
    for name in args.backbones:
        cmd = [sys.executable, __file__, "--worker", name, "--n", str(args.n), "--tile-batch", str(args.tile_batch),
               "--precision", args.precision, "--channels-last" if args.channels_last else "--no-channels-last"]
        if args.score_threshold is not None:
            cmd += ["--score-threshold", str(args.score_threshold)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
        res = json.loads(out)
        for label in ("1 image", f"{args.n} images"):
            r = res[label]
            print(
                f"{name:<13} {label:<10} {r['decode']:7.3f} {r['model']:7.2f} {r['post']:7.3f} {r['wall']:7.2f} "
                f"{r['wall'] / r['model']:9.3f} {r['tiles']:5.0f} {r['instances']:5.1f} {r['peak_rss_mb']:7.0f} MB"
            )
        day = res[f"{args.n} images"]
        print(
            f"{'':<13} model load {res['load_s']:.1f} s, {res['threads']} torch threads, "
            f"RSS before the model {res['rss_base_mb']:.0f} MB; device-day through the asset's core "
            f"(store → index → segment → SVG + rows): {day['svg_mb']:.2f} MB SVG per image, {day['errors']} errors"
        )


if __name__ == "__main__":
    main()
