"""How fast the synthetic generator is: seconds per frame and per device-day (full size by default).

    python benchmarks/synth_speed.py                 # 2592 x 1944, default rates
    python benchmarks/synth_speed.py --width 1296 --height 972 --day 6

Three figures per run:

* ``render``: frames rendered in memory only (card, sprites, lighting, noise), nothing encoded;
* ``day``: a full device-day through :func:`generate_device_day` (render + JPEG + SVG + local writes);
* ``day N alone``: the N-th day of a card from a fresh renderer (a Dagster-partition-like cold start that
  re-samples the earlier days' arrivals and draws their sprites), the busiest case within a card.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import DeviceRenderer, SynthConfig, generate_device_day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=2592)
    parser.add_argument("--height", type=int, default=1944)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--day", type=int, default=6, help="day index of the cold-start figure (default 6)")
    args = parser.parse_args()
    config = SynthConfig(devices=1, days=args.day + 1, seed=args.seed, width=args.width, height=args.height)
    print(f"synth speed: {args.width} x {args.height}, {os.cpu_count()} CPU(s), seed {args.seed}")

    t0 = time.perf_counter()
    n = sum(1 for f in DeviceRenderer(config, 0).frames(0) if f.image is not None)
    render = time.perf_counter() - t0
    print(f"  render only   : {n} frames in {render:6.1f} s = {render / n:.3f} s/frame")

    with tempfile.TemporaryDirectory() as tmp:
        store = LocalObjectStore(tmp)
        _, images, summary = generate_device_day(config, store, 0, 0)
        n_img = max(1, summary.images)
        print(
            f"  device-day 0  : {summary.images} images in {summary.seconds:6.1f} s = "
            f"{summary.seconds / n_img:.3f} s/frame ({summary.instances} instances, "
            f"{summary.insects_on_card} insects; mean JPEG "
            f"{sum(r['size_bytes'] or 0 for r in images) / n_img / 1e6:.2f} MB)"
        )
        _, _, late = generate_device_day(config, store, 0, args.day)
        n_late = max(1, late.images)
        print(
            f"  day {args.day} alone   : {late.images} images in {late.seconds:6.1f} s = "
            f"{late.seconds / n_late:.3f} s/frame ({late.instances} instances, {late.insects_on_card} insects)"
        )


if __name__ == "__main__":
    main()
