"""Synthetic Sticky Pi time-lapses with known ground truth (demo, tests, accuracy benchmarks).

No public time-lapse comes with ground-truth tracks, and the demo must run without downloads or weights, so
this package fakes a deployment: cameras photographing yellow sticky cards every ~20 min, insects landing,
struggling, drifting, escaping, decaying and being briefly hidden, under day light, clouds, vegetation
shadows and night flash, with camera shake, missing and corrupt frames. Every pixel placed is recorded:
UID SVGs per image, per-insect tracks, an ITC label database and a manifest (see
:mod:`stickypi_assets.synth.generator` for the object layout).

Entry points::

    from stickypi_assets.synth import SynthConfig, generate
    summary = generate(SynthConfig(devices=2, days=3, seed=1), store)

The README picture: ``python -m stickypi_assets.synth.preview docs/images/synth_frame.jpg``.
Speed: ``python benchmarks/synth_speed.py``. No Dagster and no torch imports here.
"""

from stickypi_assets.synth.config import SynthConfig
from stickypi_assets.synth.generator import (
    DeviceRenderer,
    RenderedFrame,
    generate,
    generate_device_day,
)
from stickypi_assets.synth.render import render_ground_truth_preview
from stickypi_assets.synth.taxa import DEFAULT_TAXA, TAXA

__all__ = [
    "DEFAULT_TAXA",
    "TAXA",
    "DeviceRenderer",
    "RenderedFrame",
    "SynthConfig",
    "generate",
    "generate_device_day",
    "render_ground_truth_preview",
]
