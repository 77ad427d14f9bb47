"""The decorator of the three model-stage assets (UID, SIM, ITC): what every device-day stage declares the same way.

Each runs one device-day per partition (ranges in one run, see ``assets/tuboids.py``), depends on the stage
before it and on its model asset, and re-runs its recent partitions after its model changed or when the stage
before it re-runs (:func:`~stickypi_assets.orchestration.conditions.refresh_on_model_change`). One place for that
keeps the three from drifting apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pandas as pd
from dagster import AssetDep, AssetExecutionContext, BackfillPolicy, asset

from stickypi_assets.orchestration.conditions import refresh_on_model_change
from stickypi_assets.orchestration.partitions import DEVICE_DAY, context_partitions
from stickypi_assets.storage.tables import TableSpec
from stickypi_assets.storage.warehouse import PartitionKey, Warehouse


def stage_asset(
    *,
    model: str,
    upstream: str,
    group: str,
    description: str,
    refresh_with_upstream: bool = True,
    extra_deps: Sequence[AssetDep] = (),
) -> Callable[[Callable[..., Any]], Any]:
    """``@asset`` for a model stage reading ``upstream``'s partition with ``model`` (``extra_deps``: more inputs,
    e.g. the previous day of the same asset). ``refresh_with_upstream``: also re-run when ``upstream`` re-runs
    (not for the first stage, whose upstream is the image index)."""
    return asset(
        partitions_def=DEVICE_DAY,
        deps=[AssetDep(upstream), *extra_deps, AssetDep(model)],
        backfill_policy=BackfillPolicy.single_run(),  # range runs loop over the days (see assets/tuboids.py)
        automation_condition=refresh_on_model_change(model, upstream if refresh_with_upstream else None),
        group_name=group,
        kinds={"pytorch", "duckdb"},
        description=description,
    )


def upstream_days(
    context: AssetExecutionContext, warehouse: Warehouse, table: TableSpec
) -> Iterator[tuple[PartitionKey, pd.DataFrame]]:
    """Each device-day of the run with its rows of the stage's input ``table``, read when its turn comes."""
    for partition in context_partitions(context):
        yield partition, warehouse.read_partition_parquet(table.name, partition)
