"""Partitions: dynamic ``device`` × daily UTC ``date``.

Multi-partition key strings order dimensions alphabetically (``"2024-01-02|0a5bb6f4"``), so code reads
dimensions by name and never splits strings (DAGSTER_NOTES.md).
"""

from __future__ import annotations

from datetime import date, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetExecutionContext,
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from stickypi_assets.settings import Settings
from stickypi_assets.storage.warehouse import PartitionKey

DEVICES = DynamicPartitionsDefinition(name="devices")


def device_day_partitions(start_date: date, end_date: date | None = None) -> MultiPartitionsDefinition:
    """Devices × UTC days from ``start_date`` to ``end_date`` included (unset: to yesterday, growing daily)."""
    end = (end_date + timedelta(days=1)).isoformat() if end_date else None  # Dagster's end is exclusive
    return MultiPartitionsDefinition(
        {
            "device": DEVICES,
            "date": DailyPartitionsDefinition(start_date=start_date.isoformat(), end_date=end, timezone="UTC"),
        }
    )


_SETTINGS = Settings.from_env()
DEVICE_DAY = device_day_partitions(_SETTINGS.start_date, _SETTINGS.end_date)


def to_partition_key(key: MultiPartitionKey | str) -> PartitionKey:
    if not isinstance(key, MultiPartitionKey):
        raise TypeError(f"expected a device×date MultiPartitionKey, got {key!r}")
    dims = key.keys_by_dimension
    return PartitionKey(device=dims["device"], date=date.fromisoformat(dims["date"]))


def multi_partition_key(device: str, day: date) -> MultiPartitionKey:
    return MultiPartitionKey({"device": device, "date": day.isoformat()})


def context_partitions(context: AssetExecutionContext | AssetCheckExecutionContext) -> list[PartitionKey]:
    """All device-days of this run (asset or check): one for a normal run, several for a single-run range."""
    return sorted(to_partition_key(k) for k in context.partition_keys)
