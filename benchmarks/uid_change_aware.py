"""Change-aware UID inference against the full pass, on the same frames and the same trained model, side by side.

    python benchmarks/uid_change_aware.py                       # trains the demo's UID first (~6 min on 2 cores)
    python benchmarks/uid_change_aware.py --bundle BUNDLE_DIR   # a trained UID bundle (e.g. the demo's, from its
                                                                # ml-cache), no training
    python benchmarks/uid_change_aware.py --frames 24 --tiles 1408/128

A synthetic device-day (the demo's generator and frame size, one frame per 20 min, ground truth for every
insect) goes through :class:`~stickypi_assets.ml.uid.change.ChangeAwarePredictor` twice per tile grid: with
``CHANGE_AWARE: false`` (today's path: every tile of every frame) and with the bundle's change-aware settings.
Printed per grid: seconds per frame (decode excluded: both paths decode once), the ratio to the full pass, the
share of tiles carried over, and precision / recall / F1 against the ground truth (the UID validation's one-to-one
matcher at ``MATCH_IOU``). Then the real raw frames in ``../shared/data/stickypi/raw`` (2592 x 1944, each device's
frames in time order) at the default 1024 px grid: the share of the full pass's instances that change-aware
inference returns too (IoU >= 0.5), and its seconds per frame. Without a GPU every figure is CPU, one process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

RAW_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stickypi" / "raw"


def train_demo_uid(workdir: Path, seed: int) -> Path:
    """The demo's UID recipe on the demo's training deployment (its 12 busiest ground-truth SVGs)."""
    from stickypi_assets.demo.recipes import DEMO_UID_CONFIG, ground_truth_uid_svgs
    from stickypi_assets.demo.run import TRAINING_START, generate_sample
    from stickypi_assets.ml.uid.config import save_config
    from stickypi_assets.ml.uid.train import train
    from stickypi_assets.storage.object_store import LocalObjectStore

    training = LocalObjectStore(workdir / "training")
    generate_sample(training, devices=1, days=2, seed=seed + 1000, start=TRAINING_START, corrupt=0)
    bundle = workdir / "uid-bundle"
    for key in ground_truth_uid_svgs(training, 12):
        (bundle / "data").mkdir(parents=True, exist_ok=True)
        (bundle / "data" / key.rsplit("/", 1)[-1]).write_bytes(training.get_bytes(key))
    save_config(DEMO_UID_CONFIG, bundle / "config" / "config.yaml")
    started = time.perf_counter()
    train(bundle, restart=True, progress=False)
    print(f"trained the demo's UID in {time.perf_counter() - started:.0f} s", flush=True)
    return bundle


def synthetic_day(workdir: Path, seed: int, n: int) -> list:
    """``n`` frames of one synthetic device-day with their ground-truth instances, in time order."""
    from stickypi_assets.demo.run import generate_sample
    from stickypi_assets.formats.uid_svg import read_uid_svg
    from stickypi_assets.storage.object_store import LocalObjectStore

    store = LocalObjectStore(workdir / "scored")
    generate_sample(store, devices=1, days=1, seed=seed, corrupt=0)
    keys = sorted(i.key for i in store.list("ground_truth/uid/"))[:n]
    return [read_uid_svg(store.get_bytes(k)) for k in keys]


def run(detector, config, frames) -> tuple[float, list, int, int]:
    """``(seconds per frame, predictions, tiles run, tiles carried)`` of one pass over ``frames`` (decoded)."""
    from stickypi_assets.ml.uid.change import ChangeAwarePredictor
    from stickypi_assets.ml.uid.predict import PredictTimings

    predictor, timings, out = ChangeAwarePredictor(detector, config), PredictTimings(), []
    started = time.perf_counter()
    for k, image in enumerate(frames):
        out.append(predictor.predict(image, str(k), timings=timings).instances)
    return (time.perf_counter() - started) / len(frames), out, timings.tiles, timings.tiles_carried


def scores(config, docs, predictions) -> tuple[float, float, float]:
    from stickypi_assets.ml.uid.validate import EvaluatedImage, evaluate, f1_score

    images = [EvaluatedImage(str(k), d.width, d.height, list(d.instances), p)
              for k, (d, p) in enumerate(zip(docs, predictions, strict=True))]  # fmt: skip
    overall = evaluate(images, config)[1]["overall"]
    p, r = overall["precision"] or 0.0, overall["recall"] or 0.0
    return p, r, f1_score(p, r) or 0.0


def agreement(full: list, change: list) -> tuple[int, int, int]:
    """``(instances of the full pass, of change-aware inference, matched one to one at IoU >= 0.5)``."""
    from stickypi_assets.ml.uid.validate import iou_match_pairs, iou_matrix

    n_full = n_change = matched = 0
    for a, b in zip(full, change, strict=True):
        n_full, n_change = n_full + len(a), n_change + len(b)
        if a and b:
            pairs = iou_match_pairs(iou_matrix([i.polygon for i in a], [i.polygon for i in b]), 0.5)
            matched += sum(g is not None and p is not None for g, p in pairs)
    return n_full, n_change, matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="trained UID bundle (default: train the demo's recipe first)")
    parser.add_argument("--frames", type=int, default=72, help="frames of the synthetic device-day (default 72)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed of the scored deployment (default 1)")
    parser.add_argument("--tiles", nargs="+", default=["1408/128", "512/128"],
                        help="tile grids SIZE/OVERLAP compared (default: the demo's one tile, and a 12-tile grid)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--real-only", action="store_true", help="only the real raw frames' agreement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from stickypi_assets.ml.uid.predict import decode_jpeg, load_detector

    with tempfile.TemporaryDirectory(prefix="uid-change-") as tmp:
        bundle = args.bundle or train_demo_uid(Path(tmp), args.seed)
        detector, config, version = load_detector(bundle)
        docs = synthetic_day(Path(tmp), args.seed, args.frames)
    frames = [decode_jpeg(d.jpeg_bytes) for d in docs]
    height, width = frames[0].shape[:2]
    print(f"UID {version[:8]}: synthetic device-day of {len(frames)} frames ({width} x {height}, seed {args.seed}), "
          f"{args.threads} torch threads; change-aware: downscale {config.change_downscale}, pixel threshold "
          f"{config.change_pixel_threshold}, {config.change_min_pixels} pixels, full pass every "
          f"{config.change_full_every} frames")  # fmt: skip
    print(f"{'tiles':<10} {'path':<13} {'s/frame':>8} {'ratio':>6} {'carried':>8} {'P':>6} {'R':>6} {'F1':>6}")
    for grid in [] if args.real_only else args.tiles:
        size, overlap = (int(v) for v in grid.split("/"))
        grid_config = config.replace(tile_size=size, tile_overlap=overlap)
        full_s, full, _, _ = run(detector, grid_config.replace(change_aware=False), frames)
        change_s, change, n_run, n_carried = run(detector, grid_config.replace(change_aware=True), frames)
        share = n_carried / (n_run + n_carried)
        for name, seconds, predictions, carried in (("full pass", full_s, full, 0.0),
                                                    ("change-aware", change_s, change, share)):  # fmt: skip
            p, r, f1 = scores(grid_config, docs, predictions)
            print(f"{grid:<10} {name:<13} {seconds:8.3f} {full_s / seconds:6.2f} {carried:8.0%} {p:6.3f} {r:6.3f} "
                  f"{f1:6.3f}", flush=True)  # fmt: skip
    devices = sorted(d for d in RAW_DIR.iterdir() if d.is_dir()) if RAW_DIR.is_dir() else []
    if not devices:
        print(f"no real raw frames at {RAW_DIR}: agreement not measured")
        return
    real = config.replace(tile_size=1024, tile_overlap=500)
    n_frames, counts, full_total, change_total = 0, np.zeros(3, int), 0.0, 0.0
    for device in devices:
        images = [decode_jpeg(p.read_bytes()) for p in sorted(device.glob("*.jpg"))]
        full_s, full, _, _ = run(detector, real.replace(change_aware=False), images)
        change_s, change, _, _ = run(detector, real, images)
        counts += agreement(full, change)
        n_frames += len(images)
        full_total, change_total = full_total + full_s * len(images), change_total + change_s * len(images)
    n_full, n_change, matched = (int(c) for c in counts)
    print(f"real raw frames: {n_frames} frames of {len(devices)} devices at 1024/500: full pass "
          f"{full_total / n_frames:.2f} s/frame, change-aware {change_total / n_frames:.2f} s/frame (ratio "
          f"{full_total / change_total:.2f}); full pass {n_full} instances, change-aware {n_change}, {matched} the "
          f"same (IoU >= 0.5)")  # fmt: skip


if __name__ == "__main__":
    main()
