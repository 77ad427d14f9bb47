"""What active-learning scoring of a device-day costs, against that day's UID inference, in one run on the same frames.

    python benchmarks/al_scoring_cost.py                    # 4 full-size frames, small backbone, 10 passes
    python benchmarks/al_scoring_cost.py --backbones small resnet50_fpn --n 2 --score-threshold 0

Per frame (full-size 2592 x 1944, the real raw JPEGs of ``../shared/data/stickypi/raw`` cycled, else a synthetic
card; random weights, as ``benchmarks/uid_inference.py``: compute depends on how many detections survive, not on
the weights' values), measured side by side:

* ``inference``: :func:`~stickypi_assets.ml.uid.predict.predict_image`, what ``uid_segmentations`` pays;
* ``boxes``: the box-only scoring pass (backbone and RPN once per tile, ``T`` box-head passes), paid by every image;
* ``masks``: the scoring pass with masks (also ``T`` mask-head passes), paid by the ``--mask-share`` least certain;
* ``day ratio`` = (boxes + mask share × masks) / inference: what scoring a day costs on top of segmenting it.
  The issue's bar is 2.

``--score-threshold 0`` keeps every detection the model emits (up to ``DETECTIONS_PER_IMAGE`` per tile): an upper
bound of the mask work. maskAL's measurement on R50-FPN at 1024 px (2 threads) for comparison: backbone + RPN 5.3 s,
box-only pass 0.91 s, box + mask pass 2.35 s, full forward 11.6 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from uid_inference import BACKBONES, distinct_frames  # noqa: E402


def measure(name: str, n: int, passes: int, mask_share: float, score_threshold: float | None) -> dict:
    import torch

    from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
    from stickypi_assets.ml.uid.config import UidConfig
    from stickypi_assets.ml.uid.model import MaskRCNNDetector
    from stickypi_assets.ml.uid.predict import decode_jpeg, predict_image

    overrides = dict(BACKBONES[name])
    if score_threshold is not None:
        overrides["SCORE_THRESHOLD"] = score_threshold
    config = UidConfig.from_dict(overrides, strict=True)
    torch.manual_seed(0)
    detector = MaskRCNNDetector(config)
    sampler = McDropoutMaskRCNN(detector, config, passes=passes)
    totals = {"inference": 0.0, "boxes": 0.0, "masks": 0.0, "instances": 0, "observations": 0}
    images = [decode_jpeg(data) for data in distinct_frames(n)]
    predict_image(detector, images[0][:512, :512], config)  # warm-up (allocator, kernels)
    for k, image in enumerate(images):
        t0 = time.perf_counter()
        totals["instances"] += len(predict_image(detector, image, config))
        t1 = time.perf_counter()
        boxes = sampler.image_passes(image, key=str(k), with_masks=False)
        t2 = time.perf_counter()
        masks = sampler.image_passes(image, key=str(k), with_masks=True)
        t3 = time.perf_counter()
        totals["observations"] += len(masks.certainty().observations)
        totals["inference"] += t1 - t0
        totals["boxes"] += t2 - t1
        totals["masks"] += t3 - t2
        del boxes, masks
    per = {key: value / n for key, value in totals.items()}
    per["day_ratio"] = (per["boxes"] + mask_share * per["masks"]) / per["inference"]
    per["threads"] = torch.get_num_threads()
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["small"], choices=sorted(BACKBONES), help="models")
    parser.add_argument("--n", type=int, default=4, help="frames (default 4)")
    parser.add_argument("--passes", type=int, default=10, help="MC-dropout passes (default 10)")
    parser.add_argument("--mask-share", type=float, default=0.2, help="share of a day scored with masks (0.2)")
    parser.add_argument("--score-threshold", type=float, default=None, help="override SCORE_THRESHOLD")
    args = parser.parse_args()
    print(f"{args.n} full-size frames, {args.passes} MC-dropout passes, masks for {args.mask_share:.0%} of a day")
    print(f"{'backbone':>13} {'inference s':>12} {'boxes s':>8} {'masks s':>8} {'boxes/inf':>9} {'masks/inf':>9} "
          f"{'day ratio':>9} {'inst/img':>8} {'obs/img':>8}")  # fmt: skip
    for name in args.backbones:
        r = measure(name, args.n, args.passes, args.mask_share, args.score_threshold)
        print(f"{name:>13} {r['inference']:12.2f} {r['boxes']:8.2f} {r['masks']:8.2f} "
              f"{r['boxes'] / r['inference']:9.2f} {r['masks'] / r['inference']:9.2f} {r['day_ratio']:9.2f} "
              f"{r['instances']:8.1f} {r['observations']:8.1f}   ({r['threads']} threads)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
