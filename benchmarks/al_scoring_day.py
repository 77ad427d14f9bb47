"""What scoring a device-day for annotation costs against that day's UID inference, with the platform's own models.

    make demo && .venv/bin/python benchmarks/al_scoring_day.py [--device D] [--date YYYY-MM-DD] [--n 12]

On the current UID of the registry (after ``make demo``: the demo's trained model, real detections on the demo's
synthetic cards, where a day's frames fill up with insects), on ``--n`` frames spread over one device-day, side by
side in one run: the UID inference of each frame (what ``uid_segmentations`` pays), the whole scoring of those
frames as the ``image_scores`` asset runs it (box-only MC-dropout pass for every frame, with masks for the least
certain fifth, ``STICKYPI_AL_PASSES`` passes), then the inference again (so drift of a busy machine shows). Prints
seconds per frame and the **day ratio** = scoring / inference (the issue's bar: 2). ``benchmarks/al_scoring_cost.py``
measures the same on full-size 2592 x 1944 frames with random weights.
"""

from __future__ import annotations

import argparse
import time

from stickypi_assets.active.scoring import DEFAULT_MASK_SHARE, PoolImage, score_images
from stickypi_assets.active.uid_mc import McDropoutMaskRCNN
from stickypi_assets.formats.names import parse_stem
from stickypi_assets.ml.uid.predict import decode_jpeg, predict_image
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.storage.keys import raw_images_prefix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", help="device (default: the first with images)")
    parser.add_argument("--date", help="UTC day (default: the device's last)")
    parser.add_argument("--n", type=int, default=12, help="frames spread over the day (default 12)")
    args = parser.parse_args()
    storage = StickyPiStorage()
    store, settings = storage.object_store(), storage.settings()
    keys = sorted(i.key for i in store.list(raw_images_prefix(args.device)) if i.key.endswith(".jpg"))
    if not keys:
        parser.error("no raw images in the store: run `make demo` first")
    device = args.device or keys[0].split("/")[1]
    day = args.date or max(k.rsplit("/", 1)[-1].split(".")[1][:10] for k in keys if f"/{device}/" in k)
    frames = {}
    for key in keys:
        stem = key.rsplit("/", 1)[-1].removesuffix(".jpg")
        if f"/{device}/" in key and stem.split(".")[1].startswith(day):
            try:
                frames[stem] = decode_jpeg(store.get_bytes(key))
            except ValueError:
                continue  # a corrupt frame: uid_segmentations skips it too
    step = max(1, len(frames) // args.n)
    chosen = dict(list(frames.items())[::step][: args.n])
    detector, config, version = ModelResource(stage="uid").load()
    print(f"UID {version[:8]} on {len(chosen)} frames of {device} {day}; {settings.al_passes} MC-dropout passes")

    def inference() -> float:
        t0 = time.perf_counter()
        for image in chosen.values():
            predict_image(detector, image, config)
        return (time.perf_counter() - t0) / len(chosen)

    before = inference()
    sampler = McDropoutMaskRCNN(detector, config, passes=settings.al_passes)
    pool = [PoolImage(stem, device, parse_stem(stem, check_epoch=False).datetime, lambda im=im: im)
            for stem, im in chosen.items()]  # fmt: skip
    t0 = time.perf_counter()
    score_images(sampler, pool, mask_share=DEFAULT_MASK_SHARE)
    scoring = (time.perf_counter() - t0) / len(chosen)
    after = inference()
    print(f"inference {before:.3f} s/frame (again after: {after:.3f}); scoring {scoring:.3f} s/frame; "
          f"day ratio {scoring / ((before + after) / 2):.2f}")


if __name__ == "__main__":
    main()
