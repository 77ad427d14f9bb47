"""A snapshot of the code location's wiring, so that any change to it is a visible diff in review.

Assets (group, kinds, dependencies and their partition mappings, partitions, backfill policy, automation),
asset checks, jobs, schedules, sensors and resources are written as JSON and compared with the committed
``definitions_snapshot.json``. After an intended change, regenerate it with
``UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest stickypi_assets_tests/orchestration/test_definitions_snapshot.py``
and commit the diff with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from dagster import Definitions, MultiPartitionsDefinition

SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def _partitions(partitions_def) -> Any:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, MultiPartitionsDefinition):
        return {d.name: _partitions(d.partitions_def) for d in partitions_def.partitions_defs}
    described = {"type": type(partitions_def).__name__}
    for attr in ("name", "cron_schedule", "timezone", "fmt"):
        value = getattr(partitions_def, attr, None)
        if value is not None:
            described[attr] = value
    start = getattr(partitions_def, "start", None)
    if start is not None:
        described["start"] = start.isoformat()
    return described


def snapshot(defs: Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets = {}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        node = graph.get(spec.key)
        assets[spec.key.to_user_string()] = {
            "group": spec.group_name,
            "kinds": sorted(spec.kinds),
            "deps": {d.asset_key.to_user_string(): type(d.partition_mapping).__name__ if d.partition_mapping else None
                     for d in spec.deps},
            "partitions": _partitions(spec.partitions_def),
            "backfill_policy": str(node.backfill_policy) if node.backfill_policy else None,
            "automation": spec.automation_condition.get_label() if spec.automation_condition else None,
        }  # fmt: skip
    checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys)
    jobs = {
        j.name: sorted(k.to_user_string() for k in j.asset_layer.selected_asset_keys)
        for j in defs.resolve_all_job_defs()
        if not j.name.startswith("__")
    }
    schedules = {
        s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name,
                 "default_status": s.default_status.value}
        for s in (defs.resolve_schedule_def(u.name) for u in defs.schedules or [])
    }  # fmt: skip
    sensors = {
        s.name: {"type": type(s).__name__, "default_status": s.default_status.value,
                 "minimum_interval_seconds": s.minimum_interval_seconds}
        for s in defs.sensors or []
    }  # fmt: skip
    resources = {key: type(value).__name__ for key, value in sorted((defs.resources or {}).items())}
    return {"assets": assets, "asset_checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors,
            "resources": resources}  # fmt: skip


def test_definitions_match_the_snapshot():
    from stickypi_assets.definitions import defs
    from stickypi_assets.settings import Settings

    settings, default = Settings.from_env(), Settings.from_env({})
    if (settings.start_date, settings.auto_refresh_days) != (default.start_date, default.auto_refresh_days):
        pytest.skip("the snapshot is of the default settings; STICKYPI_START_DATE/STICKYPI_AUTO_REFRESH_DAYS are set")

    current = json.dumps(snapshot(defs), indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with UPDATE_SNAPSHOTS=1 to write {SNAPSHOT.name}"
    assert current == SNAPSHOT.read_text(encoding="utf-8"), (
        "the Dagster definitions changed; if intended, regenerate the snapshot (see this module's docstring)"
    )
