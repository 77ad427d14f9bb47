"""How fast UID inference is on full-size 2592 x 1944 frames: per image and for a streamed device-day.

    python benchmarks/uid_inference.py                  # 72 frames (a device-day at one per 20 min)
    python benchmarks/uid_inference.py --n 3            # quick run
    python benchmarks/uid_inference.py --backbones resnet18_fpn --score-threshold 0

For each backbone (random weights: compute does not depend on the weights' values, only on how many
detections survive, see below) a fresh subprocess loads the model, predicts one image, then streams ``N``
images the way an asset does (read JPEG bytes → decode once → :func:`predict_image`) and prints:

* seconds per image split into ``decode``, ``model`` (forward passes) and ``post`` (mask → polygon,
  filters, cross-tile merge), their sum ``e2e``, and ``e2e/model``;
* tiles and final instances per image;
* peak resident memory of the process (``ru_maxrss``: torch allocates outside Python's heap, so
  tracemalloc would miss most of it).

Frames are the real raw JPEGs in ``../shared/data/stickypi/raw`` (cycled), else a synthetic card.
With random weights almost no detection reaches the default score threshold 0.85, so post-processing
looks free; ``--score-threshold 0`` keeps every detection the model emits (up to
``DETECTIONS_PER_IMAGE`` per tile), an upper bound on post-processing cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
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


def worker(name: str, n: int, score_threshold: float | None, batch: int) -> dict:
    import torch

    from stickypi_assets.ml.uid.config import UidConfig
    from stickypi_assets.ml.uid.model import MaskRCNNDetector
    from stickypi_assets.ml.uid.predict import PredictTimings, decode_jpeg, predict_image

    overrides = dict(BACKBONES[name], TILE_BATCH_SIZE=batch)
    if score_threshold is not None:
        overrides["SCORE_THRESHOLD"] = score_threshold
    config = UidConfig.from_dict(overrides, strict=True)
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    torch.manual_seed(0)
    detector = MaskRCNNDetector(config)
    load_s = time.perf_counter() - t0
    data = frames()
    results = {"backbone": name, "load_s": load_s, "threads": torch.get_num_threads(), "rss_base_mb": rss_before}
    for label, count in (("1 image", 1), (f"{n} images", n)):
        timings = PredictTimings()
        instances = 0
        start = time.perf_counter()
        for k in range(count):
            jpeg = data[k % len(data)]
            t = time.perf_counter()
            image = decode_jpeg(jpeg)
            timings.decode += time.perf_counter() - t
            instances += len(predict_image(detector, image, config, timings=timings))
        wall = time.perf_counter() - start
        results[label] = {
            "images": count,
            "decode": timings.decode / count,
            "model": timings.model / count,
            "post": timings.postprocess / count,
            "wall": wall / count,
            "tiles": timings.tiles / count,
            "instances": instances / count,
            "peak_rss_mb": peak_rss_mb(),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=72, help="images in the streamed device-day (default 72)")
    parser.add_argument("--backbones", nargs="+", default=["resnet50_fpn", "small"], choices=sorted(BACKBONES))
    parser.add_argument("--score-threshold", type=float, default=None, help="override SCORE_THRESHOLD (0.85)")
    parser.add_argument("--tile-batch", type=int, default=1, help="tiles per forward pass (default 1)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.score_threshold, args.tile_batch)))
        return

    source = f"{len(list(RAW_DIR.glob('*/*.jpg')))} raw JPEGs" if RAW_DIR.is_dir() else "a synthetic card"
    print(
        f"UID inference: 2592 x 1944 frames from {source}, {os.cpu_count()} CPU(s), random weights, "
        f"score threshold {args.score_threshold if args.score_threshold is not None else 'config (0.85)'}"
    )
    header = f"{'backbone':<13} {'run':<10} {'decode':>7} {'model':>7} {'post':>7} {'e2e':>7} {'e2e/model':>9} "
    header += f"{'tiles':>5} {'inst':>5} {'peak RSS':>9}"
    print(header + "   (seconds per image)")
    for name in args.backbones:
        cmd = [sys.executable, __file__, "--worker", name, "--n", str(args.n), "--tile-batch", str(args.tile_batch)]
        if args.score_threshold is not None:
            cmd += ["--score-threshold", str(args.score_threshold)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        res = json.loads(out)
        for label in ("1 image", f"{args.n} images"):
            r = res[label]
            e2e = r["decode"] + r["model"] + r["post"]
            print(
                f"{name:<13} {label:<10} {r['decode']:7.3f} {r['model']:7.2f} {r['post']:7.3f} {e2e:7.2f} "
                f"{e2e / r['model']:9.3f} {r['tiles']:5.0f} {r['instances']:5.1f} {r['peak_rss_mb']:7.0f} MB"
            )
        print(
            f"{'':<13} model load {res['load_s']:.1f} s, {res['threads']} torch threads, "
            f"RSS before the model {res['rss_base_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
