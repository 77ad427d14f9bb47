"""A UI backfill over device × day ranges, launched through Dagster's GraphQL API and run by the daemon's logic.

The backfill of ``tuboids`` + ``classifications`` over 2 devices × 3 days becomes one run per device (the
single-run backfill policy, grouped along the dimension with fewer selected keys), each walking the days in
order so every day continues the previous day's tracks, in a handful of daemon iterations instead of one
tick per day. (Runs execute synchronously here; ``benchmarks/backfill.py`` runs the same code location under a
real daemon, with concurrent runs, and measures a 2 devices × 30 days backfill.)
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import instance_for_test
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from stickypi_assets.ml.itc.config import ItcConfig, save_config
from stickypi_assets.ml.itc.model import ItcNet, save_checkpoint
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.tuboids import SYNTH_LABELS
from stickypi_assets_tests.chain_helpers import ground_truth_segmentations
from stickypi_assets_tests.conftest import REPO_ROOT

SYNTH = SynthConfig(devices=2, days=3, seed=31, width=320, height=240, arrival_rate_day=3.0, arrival_rate_night=1.0)


@pytest.mark.slow
def test_backfill_of_two_devices_by_three_days_runs_one_run_per_device(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("STICKYPI_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("STICKYPI_STORE_URL", raising=False)
    bundle = tmp_path / "itc"
    config = ItcConfig(labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4)
    save_config(config, bundle / "config" / "config.yaml")
    save_checkpoint(ItcNet.from_config(config), bundle / "output" / "model_final.pth", config)
    monkeypatch.setenv("STICKYPI_ITC_BUNDLE", str(bundle))
    storage = StickyPiStorage()
    store = storage.object_store()
    generate(SYNTH, store)
    days = [SYNTH.start_date + timedelta(days=k) for k in range(SYNTH.days)]
    for device in SYNTH.device_ids:
        ground_truth_segmentations(store, storage, device, days)
    keys = [str(multi_partition_key(d, day)) for d in SYNTH.device_ids for day in days]

    # runs start as soon as the backfill submits them and execute in this process (no queue daemon needed)
    overrides = {
        "run_launcher": {"module": "dagster._core.launcher.sync_in_memory_run_launcher",
                         "class": "SyncInMemoryRunLauncher"},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
    }  # fmt: skip
    with instance_for_test(overrides=overrides) as instance:
        instance.add_dynamic_partitions("devices", SYNTH.device_ids)
        target = ModuleTarget(module_name="stickypi_assets_tests.backfill_defs", attribute="defs",
                              working_directory=str(REPO_ROOT), location_name="backfill_test")  # fmt: skip
        with create_test_daemon_workspace_context(target, instance) as workspace:
            result = execute_dagster_graphql(workspace.create_request_context(), LAUNCH_PARTITION_BACKFILL_MUTATION, {
                "backfillParams": {
                    "partitionNames": keys,
                    "assetSelection": [{"path": ["tuboids"]}, {"path": ["classifications"]}],
                }
            })  # fmt: skip
            launched = result.data["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            backfill_id = launched["backfillId"]
            iterations = 0
            while instance.get_backfill(backfill_id).status == BulkActionStatus.REQUESTED and iterations < 20:
                errors = [e for e in execute_backfill_iteration(workspace, logging.getLogger("backfill")) if e]
                assert not errors, errors[0].to_string()
                iterations += 1
            runs = instance.get_runs()
            assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS, [
                (r.status, r.tags.get("dagster/asset_partition_range_start")) for r in runs
            ]
        runs = instance.get_runs()
        assert len(runs) == 2, [r.tags for r in runs]  # one per device, each over the three days
        assert all(r.is_success for r in runs)
        assert iterations <= 6, iterations
        print(f"backfill of {len(keys)} device-days: {len(runs)} runs, {iterations} daemon iterations")
    wh = storage.warehouse()
    per_day = wh.query(
        'SELECT device, "date", count(*) FILTER (continued) AS cont FROM tuboids GROUP BY ALL ORDER BY ALL'
    )
    assert len(per_day) == 6
    later = per_day[[pd.Timestamp(d).date() > days[0] for d in per_day.date]]
    assert len(later) == 4 and (later.cont > 0).all()  # days 2 and 3 continue the previous day's tracks
    classified = wh.query("SELECT count(*) AS n FROM classifications").n[0]
    assert classified == wh.query("SELECT count(*) AS n FROM tuboids").n[0] > 0
