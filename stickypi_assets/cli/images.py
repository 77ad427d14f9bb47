"""``stickypi images``: index a device-day into table ``images`` and audit the raw images, without Dagster."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime

from stickypi_assets.cli.common import add_command_group, exit_status, object_store, warehouse
from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.names import is_canonical_device, validate_device


def device_id(text: str) -> str:
    """``--device``: a device id as stored (8 lower-case hex digits), else a usage error saying what is expected."""
    try:
        validate_device(text)
    except FormatError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not is_canonical_device(text):
        raise argparse.ArgumentTypeError(f"invalid device id {text!r}: device ids are lower-case, {text.lower()!r}")
    return text


def past_utc_day(text: str) -> date:
    """``--date``: a calendar day ``YYYY-MM-DD`` not after today (UTC); a later one has no images yet."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day YYYY-MM-DD (e.g. 2020-06-20)") from None
    today = datetime.now(UTC).date()
    if day > today:
        raise argparse.ArgumentTypeError(f"{day} is in the future (today is {today} UTC): no image can exist yet")
    return day


def _cmd_index(args: argparse.Namespace) -> int:
    from stickypi_assets.pipeline.raw_images import index_device_day
    from stickypi_assets.storage.keys import PartitionKey, raw_day_prefix
    from stickypi_assets.storage.tables import IMAGES

    wh = warehouse()
    day = args.date
    index = index_device_day(wh.store, args.device, day)
    result = wh.write_partition(IMAGES.name, PartitionKey(args.device, day), index.rows)
    print(
        f"{args.device} {day}: {index.n_images} images ({index.count('ok')} ok, {index.count('error')} errors, "
        f"{index.count('duplicate')} duplicates) -> {result.parquet_key}"
    )
    if not index.n_images:
        print(f"no images found under {raw_day_prefix(args.device, day)}* in {wh.store.describe()}: "
              "the day's partition is written empty, as for a day the device took no picture")  # fmt: skip
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
    index.add_argument("--device", required=True, type=device_id, help="device id (8 lower-case hex digits)")
    index.add_argument("--date", required=True, type=past_utc_day, help="UTC day, YYYY-MM-DD (today or earlier)")
    index.set_defaults(func=_cmd_index)
    audit = images_sub.add_parser("audit", help="list raw image objects that no partition will index, and why")
    audit.set_defaults(func=_cmd_audit)
    return images
