"""The README's demo runs on a fresh data root and ingests synthetic frames, recording corrupt ones."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from stickypi_assets.demo import recipes
from stickypi_assets.demo.run import run_demo
from stickypi_assets.orchestration.assets.raw_images import raw_images
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.settings import Settings
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets_tests.ui.browser import DEMO_DATES, Browser, dagster_home, require_browser, webserver


def test_synth_corrupt_frames_are_recorded_by_the_ingest_asset(tmp_path: Path):
    storage = StickyPiStorage(
        store_url=str(tmp_path / "store"),
        warehouse_path=str(tmp_path / "wh.duckdb"),
        published_path=str(tmp_path / "pub.duckdb"),
    )
    store = storage.object_store()
    config = SynthConfig(devices=1, days=1, seed=3, width=320, height=240, corrupt_frames=4)
    generate(config, store)
    truth = pd.read_parquet(store.local_path("ground_truth/images.parquet"))
    corrupt_keys = set(truth.loc[truth.status == "corrupt", "key"])
    assert len(corrupt_keys) == 4
    device = config.device_ids[0]
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [device])
    key = multi_partition_key(device, config.start_date)
    assert materialize([raw_images], partition_key=key, instance=instance, resources={"storage": storage}).success
    rows = storage.warehouse().query("SELECT object_key, status FROM images", published=True)
    assert set(rows.loc[rows.status == "error", "object_key"]) == corrupt_keys
    assert (rows.status == "ok").sum() == (truth.status == "ok").sum()


def test_demo_runs_on_a_fresh_data_root(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("STICKYPI_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("STICKYPI_STORE_URL", raising=False)
    assert run_demo(devices=1, days=1, seed=2, models=False) == 0
    out = capsys.readouterr().out
    assert "[4/6] materialized 1 device-days" in out
    published = Settings.from_env().published_path
    assert published.exists()
    df = StickyPiStorage().warehouse().query("SELECT count(*) n, min(\"date\") d FROM images", published=True)
    assert df["n"][0] >= 60 and pd.Timestamp(df["d"][0]).date() == date(2020, 6, 20)


@pytest.mark.slow
def test_demo_runs_the_whole_chain(tmp_path: Path, monkeypatch, capsys):
    """The README demo end to end (small frames, briefly trained models): every stage writes, accuracy is reported.

    The recipes are cut to about a third of the demo's (the demo's own models are measured by the README and the
    stages' learning tests): this test is about the platform running the chain, not about what the models learn.
    It runs in a Dagster home with the repository's ``dagster.yaml`` (as ``make demo`` does), and a real webserver
    and headless Chromium then check that the UI shows the chain's runs: the pipeline job's and the model training
    job's runs, and the classifications' partitions.
    """
    require_browser()
    home = dagster_home(tmp_path / "home")
    env = {**DEMO_DATES, "STICKYPI_DATA_ROOT": str(tmp_path / "data"), "DAGSTER_HOME": str(home)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(home)  # dagster.yaml's relative storage paths land in the test's home, not the repository
    monkeypatch.delenv("STICKYPI_STORE_URL", raising=False)
    monkeypatch.setattr(recipes, "DEMO_SIM_CONFIG", recipes.DEMO_SIM_CONFIG.replace(siam_rounds=40, dist_ar_rounds=20,
                                                                                    final_rounds=5))  # fmt: skip
    itc_config = recipes.demo_itc_config().replace(n_rounds=50)
    monkeypatch.setattr(recipes, "demo_itc_config", lambda: itc_config)
    assert run_demo(devices=1, days=2, seed=4, uid_iters=100, size=(640, 480)) == 0
    out = capsys.readouterr().out
    assert "[4/6] materialized 2 device-days" in out
    for stage in ("detection (UID)", "tracking (UID + SIM", "capture time", "taxonomy (UID + SIM + ITC)",
                  "macro recall", "per taxon (recall", "confusion (rows: true taxon"):  # fmt: skip
        assert stage in out, stage
    # it ends with the first annotation batch, each item with its reason and a pre-annotation in the store
    assert "[6/6] active learning" in out and "[maskal]" in out and "[margin]" in out
    queue = StickyPiStorage().warehouse().query("SELECT * FROM annotation_queue")
    assert set(queue.kind) == {"image", "tuboid"} and set(queue.status) == {"queued"}
    store = StickyPiStorage().object_store()
    assert all(store.exists(k) for k in queue.loc[queue.kind == "image", "pre_annotation_key"])
    wh = StickyPiStorage().warehouse()
    counts = wh.query(
        "SELECT (SELECT count(*) FROM images WHERE status = 'ok') AS images, "
        "(SELECT count(*) FROM segmented_images WHERE status = 'ok') AS segmented, "
        "(SELECT count(*) FROM tuboids) AS tuboids, (SELECT count(*) FROM classifications) AS classified, "
        "(SELECT count(*) FROM captures) AS captures, (SELECT sum(n_captures) FROM daily_taxon_counts) AS counted, "
        "(SELECT count(*) FROM tuboid_frames f ANTI JOIN instances i USING (instance_id)) AS dangling",
        published=True,
    ).iloc[0]
    assert counts.images == counts.segmented > 100
    assert counts.tuboids == counts.classified > 0 and counts.captures == counts.counted > 0
    assert counts.dangling == 0  # every tracked instance is a row of table instances
    _ui_shows_the_chain(home, env, tmp_path)
    # the trained models are reused by a second run (no retraining), and the re-run replaces, never duplicates
    assert run_demo(devices=1, days=2, seed=4, size=(640, 480)) == 0
    assert "trained models found" in capsys.readouterr().out
    again = wh.query("SELECT count(*) AS n FROM captures", published=True).n[0]
    assert again == counts.captures


def _ui_shows_the_chain(home: Path, env: dict[str, str], shots: Path) -> None:
    with webserver(home, env) as base:
        browser = Browser(base, shots)
        try:
            runs = browser.page("/locations/stickypi_assets/jobs/pipeline_job/runs", "partition: 2020-06-20",
                                "partition: 2020-06-21", "Success", screenshot="ui-pipeline-job-runs.png")
            assert "Failure" not in runs
            trainings = browser.page("/locations/stickypi_assets/jobs/model_training_job/runs", "Success",
                                     screenshot="ui-model-training-runs.png")
            assert trainings.count("Success") >= 3 and "__ephemeral_asset_job__" not in trainings
            # the global lineage opens with each asset group as one box
            browser.page("/asset-groups", "Global asset lineage", "ingest", "uid", "sim", "itc", "models",
                         "active_learning", screenshot="ui-asset-lineage.png")  # fmt: skip
            browser.page("/assets/classifications?view=partitions", "Materialized (2)", "Missing (0)",
                         screenshot="ui-classifications-partitions.png")
        finally:
            browser.close()
