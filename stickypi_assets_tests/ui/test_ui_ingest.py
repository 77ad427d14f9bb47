"""After the demo's ingestion chain on a tiny sample, Dagster's UI shows its runs where a new user looks for them.

A real webserver and a real headless Chromium: the job page lists the runs (they carry the code location's
origin), the overview timeline has them, the asset's partitions page lists exactly the sample's days (the
Makefile's demo dates), the community window does not cover the page, and the job page does not claim that
automation is off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stickypi_assets_tests.ui.browser import DEMO_DATES, Browser, dagster_home, require_browser, webserver


def test_the_ui_shows_the_demo_runs(tmp_path: Path):
    require_browser()
    home = dagster_home(tmp_path / "home")
    env = {**DEMO_DATES, "STICKYPI_DATA_ROOT": str(home / "stickypi-data"), "DAGSTER_HOME": str(home)}
    code = "from stickypi_assets.demo.run import run_demo; run_demo(devices=1, days=2, models=False, size=(640, 480))"
    done = subprocess.run([sys.executable, "-c", code], cwd=home, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    device = next(line for line in done.stdout.splitlines() if "|2020-06-20:" in line).split("|")[0].strip()

    with webserver(home, env) as base:
        browser = Browser(base, tmp_path)
        try:
            browser.page("/assets", "raw_images", "uid_segmentations", "tuboids", "classifications",
                         screenshot="ui-asset-catalog.png")  # fmt: skip
            runs = browser.page("/locations/stickypi_assets/jobs/ingest_job/runs", "partition: 2020-06-20",
                                "partition: 2020-06-21", "Success", screenshot="ui-ingest-job-runs.png")  # fmt: skip
            assert runs.count("Success") >= 2 and device in runs
            job = browser.page("/locations/stickypi_assets/jobs/pipeline_job", "pipeline_job", "Auto-materialize")
            assert "Auto-materialize on" in job, "the job page says automation is off"
            timeline = browser.page("/overview/activity/timeline", "ingest_job", screenshot="ui-timeline.png")
            assert "No runs or scheduled ticks" not in timeline
            parts = browser.page("/assets/raw_images?view=partitions", "Materialized (2)", "Missing (0)",
                                 screenshot="ui-raw-images-partitions.png")
            assert "2020-06-22" not in parts and "2020-06-19" not in parts  # only the sample's days
            for text in (runs, job, timeline, parts):
                assert "Join the Dagster community" not in text
        finally:
            browser.close()
