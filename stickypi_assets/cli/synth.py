"""``stickypi synth``: write a synthetic deployment (images + ground truth) into a folder or a bucket.

The main ``stickypi`` parser calls :func:`add_parser`; this module never builds a top-level parser itself
so the command keeps the main CLI's conventions (exit codes, ``-v``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from datetime import date

from stickypi_assets.synth.config import SynthConfig


def _probability_or_count(text: str) -> float:
    value = float(text)
    if value < 0 or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError("expected a count (integer >= 1) or a probability in [0, 1)")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``synth`` on the main CLI's sub-parsers; returns the new parser."""
    p = subparsers.add_parser(
        "synth",
        help="generate a synthetic sticky-card time-lapse with ground truth (images, SVGs, tracks, labels)",
        description=(
            "Generate synthetic Sticky Pi images (raw_images/<device>/<device>.<datetime>.jpg) and their "
            "ground truth (ground_truth/: UID SVGs, tracks.parquet, frames.parquet, images.parquet, "
            "itc/database.db, manifest.json). The same seed gives byte-identical output."
        ),
    )
    p.add_argument("--devices", type=int, default=1, help="number of devices (default 1)")
    p.add_argument("--days", type=int, default=1, help="number of UTC days per device (default 1)")
    p.add_argument("--out", required=True, help="output: a folder, file:///abs/path or s3://bucket/prefix")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--sprites",
        metavar="DIR",
        default=None,
        help="folder of UID SVGs: use their annotated insects as sprites and their images as card backgrounds",
    )
    p.add_argument("--start", type=date.fromisoformat, default=date(2020, 6, 20), help="first day, YYYY-MM-DD")
    p.add_argument("--width", type=int, default=2592, help="image width in pixels (default 2592)")
    p.add_argument("--height", type=int, default=1944, help="image height in pixels (default 1944)")
    p.add_argument(
        "--corrupt-frames",
        type=_probability_or_count,
        default=0,
        metavar="K",
        help="corrupt JPEGs to write: a count over the whole run, or a per-frame probability if < 1",
    )
    p.add_argument(
        "--quality", type=int, default=95, help="JPEG quality (default 95; the cameras write ~100, 2 MB files)"
    )
    p.add_argument("--rate-day", type=float, default=3.0, help="insects landing per hour in daylight (default 3)")
    p.add_argument("--rate-night", type=float, default=0.6, help="insects landing per hour at night (default 0.6)")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(func=run)
    return p


#: The options not spelled like the :class:`SynthConfig` field they set; every other option is its field's name.
FIELD_OF_OPTION = {
    "start": "start_date",
    "quality": "jpeg_quality",
    "sprites": "sprites_dir",
    "rate_day": "arrival_rate_day",
    "rate_night": "arrival_rate_night",
}


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    """The :class:`SynthConfig` of the command line; the fields no option sets keep their defaults."""
    given = {FIELD_OF_OPTION.get(option, option): value for option, value in vars(args).items()}
    return SynthConfig(**{f.name: given[f.name] for f in fields(SynthConfig) if f.name in given})


def run(args: argparse.Namespace) -> int:
    """Handler of ``stickypi synth``; errors propagate to :func:`~stickypi_assets.cli.common.run_command` (a bad
    option, which :class:`SynthConfig` refuses: exit 2; a missing ``--sprites`` folder or a store failure: 1)."""
    from stickypi_assets.settings import Settings
    from stickypi_assets.storage.connect import open_object_store
    from stickypi_assets.storage.keys import ground_truth_key
    from stickypi_assets.synth.generator import generate

    config = config_from_args(args)
    # Through the settings like every other store: --out s3://... reaches STICKYPI_S3_ENDPOINT_URL (not AWS)
    # with the same region, timeouts and attempts.
    store = open_object_store(Settings.from_env(), args.out)
    t0 = time.perf_counter()
    summary = generate(config, store, progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    print(
        f"wrote {summary['images']} images ({summary['corrupt_images']} corrupt, {summary['missing_frames']} "
        f"missing frames) of {config.n_devices} device(s) x {config.days} day(s) in {seconds:.1f} s "
        f"to {store.describe()}"
    )
    print(
        f"ground truth: {summary['insects']} insects, {summary['instances']} instances; "
        f"manifest {ground_truth_key('manifest.json')}"
    )
    print(json.dumps(summary["taxa"], indent=2), file=sys.stdout)
    return 0
