"""The README picture: one synthetic frame with its ground-truth outlines coloured by taxon.

    python -m stickypi_assets.synth.preview docs/images/synth_frame.jpg

Renders an afternoon frame of the second day of a card at full resolution (so outlines are computed
exactly as in a real run), draws the outlines, adds a legend and writes a half-size JPEG small enough for
a repository (< 300 KB).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from stickypi_assets.synth.config import SynthConfig
from stickypi_assets.synth.generator import DeviceRenderer
from stickypi_assets.synth.render import render_ground_truth_preview
from stickypi_assets.synth.taxa import TAXA

#: Outline colour per taxon (BGR), chosen to stand out on a yellow card.
TAXON_COLOURS: dict[str, tuple[int, int, int]] = {
    "sciaridae": (255, 0, 0),
    "muscidae": (255, 0, 255),
    "cicadellidae": (0, 110, 0),
    "coccinellidae": (0, 0, 150),
    "culicidae": (160, 80, 0),
    "drosophila_suzukii": (0, 90, 255),
}


def preview_frame(config: SynthConfig | None = None, day_index: int = 1, hour_utc: int = 22) -> np.ndarray:
    """A full-resolution frame (BGR) with taxon-coloured ground-truth outlines and a legend."""
    config = config or SynthConfig(devices=1, days=day_index + 1, seed=4)
    renderer = DeviceRenderer(config, 0)
    frame = next(f for f in renderer.frames(day_index) if f.image is not None and f.slot.datetime.hour >= hour_utc)
    colours = [TAXON_COLOURS.get(p.taxon_key, (255, 0, 0)) for p, _ in frame.visible]
    out = render_ground_truth_preview(frame.image, frame.instances, colours=colours, thickness=3)
    box = out[10 : 40 + 55 * len(TAXON_COLOURS), 10:560]
    box[:] = (box * 0.35 + 255 * 0.65).astype(np.uint8)  # legend background
    y = 60
    for key, colour in TAXON_COLOURS.items():
        label = TAXA[key].taxon.split(".")[2] if key != "drosophila_suzukii" else "Drosophila suzukii"
        cv2.rectangle(out, (30, y - 32), (75, y + 8), colour, -1)
        cv2.putText(out, label, (90, y), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (20, 20, 20), 3, cv2.LINE_AA)
        y += 55
    stamp = f"{frame.slot.stem}  ({frame.lighting}, {len(frame.visible)} insects)"
    cv2.putText(out, stamp, (30, out.shape[0] - 30), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (20, 20, 20), 3, cv2.LINE_AA)
    return out


def write_preview(path: str | Path, *, width: int = 1296, quality: int = 85) -> Path:
    """Write :func:`preview_frame` downscaled to ``width`` as a JPEG; returns the path."""
    image = preview_frame()
    h, w = image.shape[:2]
    small = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    path.write_bytes(buf.tobytes())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="write the README picture of a synthetic frame")
    parser.add_argument("path", nargs="?", default="docs/images/synth_frame.jpg")
    args = parser.parse_args()
    path = write_preview(args.path)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
