"""``stickypi images``: index a device-day into table ``images`` and audit the raw images, without Dagster."""

from __future__ import annotations

import argparse
from datetime import date

from stickypi_assets.cli.common import add_command_group, exit_status, object_store, warehouse


def _cmd_index(args: argparse.Namespace) -> int:
    from stickypi_assets.pipeline.raw_images import index_device_day
    from stickypi_assets.storage.keys import PartitionKey
    from stickypi_assets.storage.tables import IMAGES

    wh = warehouse()
    day = date.fromisoformat(args.date)
    index = index_device_day(wh.store, args.device, day)
    result = wh.write_partition(IMAGES.name, PartitionKey(args.device, day), index.rows)
    print(
        f"{args.device} {day}: {index.n_images} images ({index.count('ok')} ok, {index.count('error')} errors, "
        f"{index.count('duplicate')} duplicates) -> {result.parquet_key}"
    )
    return exit_status(index.errors, "error")


def _cmd_audit(args: argparse.Namespace) -> int:
    from stickypi_assets.pipeline.raw_images import audit_raw_images

    problems = audit_raw_images(object_store())
    for key, reason in problems:
        print(f"{key}: {reason}")
    print(f"{len(problems)} object(s) under raw_images/ that no device-day partition will index")
    return 1 if problems else 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``images`` (``index``, ``audit``) on the main CLI's sub-parsers."""
    images, images_sub = add_command_group(subparsers, "images", "raw image ingestion without Dagster")
    index = images_sub.add_parser("index", help="index one device-day into table 'images'")
    index.add_argument("--device", required=True, help="device id (8 hex digits)")
    index.add_argument("--date", required=True, help="UTC day, YYYY-MM-DD")
    index.set_defaults(func=_cmd_index)
    audit = images_sub.add_parser("audit", help="list raw image objects that no partition will index, and why")
    audit.set_defaults(func=_cmd_audit)
    return images
