"""A code location for backfill tests and ``benchmarks/backfill.py``: the real device-day assets, test models.

``raw_images``, ``tuboids`` and ``classifications`` as the platform defines them; the SIM is the deterministic
bbox-IoU matcher and the ITC the bundle named by ``STICKYPI_ITC_BUNDLE``; storage comes from the environment
(``STICKYPI_DATA_ROOT``), set before the code server starts. ``STICKYPI_BACKFILL_POLICY=per-partition`` replaces
the assets' single-run backfill policy with one run per partition (what the benchmark compares against).
"""

import os

from dagster import BackfillPolicy, Definitions

from stickypi_assets.orchestration.assets.classifications import classifications
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets_tests.chain_helpers import IouSimModel

assets = [raw_images, tuboids, classifications]
if os.environ.get("STICKYPI_BACKFILL_POLICY", "single") == "per-partition":
    assets = [a.with_attributes(backfill_policy=BackfillPolicy.multi_run(1)) for a in assets]

defs = Definitions(
    assets=assets,
    resources={
        "storage": StickyPiStorage(),
        # 320 px frames: the SIM's 200 px radius at 2592 px is 25 px here (40 leaves room for drift)
        "sim_model": IouSimModel(gating_radius_px=40.0),
        "itc_model": ModelResource(stage="itc"),
    },
)
