"""SIM tracking cost per frame vs insects per frame (10, 100, 1000), with a tiny random-weight matcher.

Synthetic 2592 x 1944 grey cards with N dark 40 px insects on a jittered grid (no overlaps), each moving a
couple of pixels between frames 20 min apart. The tracker runs all three passes with the default config
(gating radius 200 px). Printed per N: seconds per frame, gated pairs scored per frame, crops cut and
embeddings computed per frame. With gating and the per-crop embedding cache, embeddings grow exactly
linearly (about 2 N per frame: x1 of one frame pair is x0 of the next, plus N x1_a0) and the pairs grow
with N times the local density, so the time per frame is close to linear in N.

Run: ``.venv/bin/python benchmarks/sim_tracking.py [--frames 4] [--threads 1] [--ungated]``
(``--ungated`` also runs N = 10 and 100 with an unlimited radius, the original's all-pairs scoring).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import torch

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.features import CropStore, Frame
from stickypi_assets.ml.sim.model import SiameseMatcher
from stickypi_assets.ml.sim.tracking import Tracker

W, H = 2592, 1944
DEVICE = "0a5bb6f4"


def make_series(n: int, n_frames: int, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    cols, rows = 40, 25  # 1000 cells of ~65 x 78 px
    cells = rng.choice(cols * rows, size=n, replace=False)
    cw, ch = W / cols, H / rows
    base = np.stack([(cells % cols + 0.5) * cw, (cells // cols + 0.5) * ch], axis=1)
    base += rng.uniform(-8, 8, size=base.shape)
    half = rng.integers(12, 20, size=n)
    t0 = datetime(2020, 6, 20, tzinfo=UTC)
    frames = []
    pos = base.copy()
    for k in range(n_frames):
        pos = pos + rng.normal(0, 1.0, size=pos.shape)
        img = np.clip(rng.normal(200, 6, size=(H, W)), 0, 255).astype(np.uint8)
        instances = []
        for (x, y), h in zip(pos, half, strict=True):
            x0, y0, x1, y1 = int(x - h), int(y - h), int(x + h), int(y + h)
            img[y0:y1, x0:x1] = 60
            instances.append(Instance(polygon=np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])))
        when = t0 + timedelta(seconds=1200 * k)
        frames.append(Frame(key=f"{DEVICE}.{when:%Y-%m-%d_%H-%M-%S}", datetime=when, instances=instances, image=img))
    return frames


def run(n: int, n_frames: int, config: SimConfig) -> dict[str, float]:
    torch.manual_seed(0)
    matcher = SiameseMatcher.from_config(config)
    store = CropStore(crop_size=config.crop_size)
    frames = make_series(n, n_frames)
    t = time.perf_counter()
    result = Tracker(matcher, config, store=store).track(frames, device=DEVICE)
    elapsed = time.perf_counter() - t
    s = result.stats
    pairs = sum(v for k, v in s.items() if k.endswith("_pairs"))
    return {
        "n": n,
        "s_per_frame": elapsed / n_frames,
        "pairs_per_frame": pairs / n_frames,
        "crops_per_frame": store.n_cut / n_frames,
        "embeddings_per_frame": matcher.n_embedded / n_frames,
        "tuboids": len(result.tuboids),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ungated", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tiny = SimConfig(channels=[8, 16, 16, 32], embedding_size=64, match_threshold=0.0, stitch_threshold=0.0)
    header = f"{'N':>6} {'s/frame':>9} {'s/frame/N (ms)':>15} {'pairs/frame':>12} {'crops/frame':>12} " \
             f"{'embeds/frame':>13} {'tuboids':>8}"
    print(f"SIM tracking, {args.frames} frames of {W}x{H}, tiny random matcher, {args.threads} torch thread(s)")
    runs = [(f"gated (radius {tiny.gating_radius_px:g} px)", tiny, (10, 100, 1000))]
    if args.ungated:
        runs.append(("ungated (all pairs)", tiny.replace(gating_radius_px=1e6), (10, 100)))
    for title, config, sizes in runs:
        print(title)
        print(header)
        for n in sizes:
            r = run(n, args.frames, config)
            per_n = 1000 * r["s_per_frame"] / n
            print(f"{n:>6} {r['s_per_frame']:>9.3f} {per_n:>15.2f} {r['pairs_per_frame']:>12.0f} "
                  f"{r['crops_per_frame']:>12.0f} {r['embeddings_per_frame']:>13.0f} {r['tuboids']:>8}")


if __name__ == "__main__":
    main()
