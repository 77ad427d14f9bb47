"""Every faster UID path against today's, on the same frames and the same trained model, side by side in one run.

    python benchmarks/uid_speedups.py                       # trains the demo's UID first (~6 min on 2 cores)
    python benchmarks/uid_speedups.py --bundle BUNDLE_DIR   # a trained UID bundle (e.g. the demo's, from its
                                                            # ml-cache), no training
    python benchmarks/uid_speedups.py --frames 24 --tiles 1408/128 --paths today combined

The paths (:data:`PATHS`): ``today`` (float32 backbone, contiguous layout, every tile of every frame),
``channels-last`` (the backbone in NHWC), ``bf16`` (the backbone under bf16 autocast; the RPN and heads stay
float32), ``cheaper pass`` (both, = the defaults ``CHANNELS_LAST: true``, ``INFERENCE_PRECISION: auto`` on a CPU
with native bf16), ``change-aware`` (float32, only changed tiles re-run, :mod:`stickypi_assets.ml.uid.change`)
and ``combined`` (the cheaper pass and change-aware: the defaults).

A synthetic device-day (the demo's generator and frame size, one frame per 20 min, ground truth for every insect)
goes through :class:`~stickypi_assets.ml.uid.change.ChangeAwarePredictor` once per path and tile grid. Printed:
seconds per frame (decode excluded: every path decodes once), the ratio to today's path, the share of tiles carried
over, and precision / recall / F1 against the ground truth (the UID validation's one-to-one matcher at
``MATCH_IOU``). Then the real raw frames in ``../shared/data/stickypi/raw`` (2592 x 1944, 15 tiles of 1024 px, each
device's frames in time order): seconds per full-resolution frame per path, and the share of today's instances each
path returns too (IoU >= 0.5). Without a GPU every figure is CPU, one process, ``--threads`` torch threads.
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


#: name -> (INFERENCE_PRECISION, CHANNELS_LAST, CHANGE_AWARE)
PATHS = {
    "today": ("fp32", False, False),
    "channels-last": ("fp32", True, False),
    "bf16": ("bf16", False, False),
    "cheaper pass": ("auto", True, False),
    "change-aware": ("fp32", False, True),
    "combined": ("auto", True, True),
}


def run(detector, config, frames, path: str) -> tuple[float, list, int, int]:
    """``(seconds per frame, predictions, tiles run, tiles carried)`` of one pass of ``path`` over decoded frames."""
    from stickypi_assets.ml.uid.change import ChangeAwarePredictor
    from stickypi_assets.ml.uid.predict import PredictTimings

    precision, channels_last, change_aware = PATHS[path]
    detector.configure_inference(precision, channels_last)
    config = config.replace(change_aware=change_aware)
    predictor, timings, out = ChangeAwarePredictor(detector, config), PredictTimings(), []
    predictor.predict(frames[0], "warm-up")  # first-call costs (oneDNN kernels for the layout) are not the path's
    predictor.reset()
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
    """``(instances of today's path, of the other path, matched one to one at IoU >= 0.5)``."""
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
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS),
                        help="paths compared (default: all; 'today' always runs first, the ratios' reference)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--real-only", action="store_true", help="only the real raw frames")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = ["today"] + [p for p in args.paths if p != "today"]

    from stickypi_assets.ml.uid.model import backbone_dtype, native_bf16_cpu
    from stickypi_assets.ml.uid.predict import decode_jpeg, load_detector

    with tempfile.TemporaryDirectory(prefix="uid-speedups-") as tmp:
        bundle = args.bundle or train_demo_uid(Path(tmp), args.seed)
        detector, config, version = load_detector(bundle)
        docs = [] if args.real_only else synthetic_day(Path(tmp), args.seed, args.frames)
    auto = backbone_dtype("auto", detector.device)
    print(f"UID {version[:8]} on {detector.device}, {args.threads} torch threads, native bf16 CPU: {native_bf16_cpu()} "
          f"(INFERENCE_PRECISION auto = {auto or 'float32'}); change-aware: downscale {config.change_downscale}, "
          f"pixel threshold {config.change_pixel_threshold}, {config.change_min_pixels} pixels, full pass every "
          f"{config.change_full_every} frames")  # fmt: skip
    if docs:
        frames = [decode_jpeg(d.jpeg_bytes) for d in docs]
        height, width = frames[0].shape[:2]
        print(f"synthetic device-day: {len(frames)} frames ({width} x {height}, seed {args.seed})")
        print(f"{'tiles':<10} {'path':<14} {'s/frame':>8} {'ratio':>6} {'carried':>8} {'P':>6} {'R':>6} {'F1':>6}")
    for grid in args.tiles if docs else []:
        size, overlap = (int(v) for v in grid.split("/"))
        grid_config = config.replace(tile_size=size, tile_overlap=overlap)
        today_s = None
        for path in paths:
            seconds, predictions, n_run, n_carried = run(detector, grid_config, frames, path)
            today_s = today_s or seconds
            p, r, f1 = scores(grid_config, docs, predictions)
            carried = n_carried / (n_run + n_carried)
            print(f"{grid:<10} {path:<14} {seconds:8.3f} {today_s / seconds:6.2f} {carried:8.0%} "
                  f"{p:6.3f} {r:6.3f} {f1:6.3f}", flush=True)  # fmt: skip
    devices = sorted(d for d in RAW_DIR.iterdir() if d.is_dir()) if RAW_DIR.is_dir() else []
    if not devices:
        print(f"no real raw frames at {RAW_DIR}: full-resolution figures not measured")
        return
    real = config.replace(tile_size=1024, tile_overlap=500)
    days = [[decode_jpeg(p.read_bytes()) for p in sorted(device.glob("*.jpg"))] for device in devices]
    n_frames = sum(len(d) for d in days)
    print(f"real raw frames: {n_frames} frames of {len(devices)} devices, 2592 x 1944, 15 tiles of 1024 px "
          "(overlap 500)")
    print(f"{'path':<14} {'s/frame':>8} {'ratio':>6} {'instances':>9} {'as today':>8}")
    today: list[list] = []
    today_total = 0.0
    for path in paths:
        total, counts, found = 0.0, np.zeros(3, int), []
        for images in days:
            seconds, predictions, _, _ = run(detector, real, images, path)
            total += seconds * len(images)
            found.append(predictions)
        if path == "today":
            today, today_total = found, total
        for reference, predictions in zip(today, found, strict=True):
            counts += agreement(reference, predictions)
        n_today, n_path, matched = (int(c) for c in counts)
        share = matched / max(n_today, 1)
        print(f"{path:<14} {total / n_frames:8.2f} {today_total / total:6.2f} {n_path:9d} {share:8.1%}", flush=True)


if __name__ == "__main__":
    main()
