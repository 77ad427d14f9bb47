"""A UI backfill of devices × days through a real Dagster daemon: is it bounded by compute or by daemon ticks?

What it does, all in a temporary folder (``--workdir`` keeps it):

1. generates a synthetic deployment (``--devices`` × ``--days``, small frames) and writes the ground truth's
   segmentations as the UID's output (what a perfect UID would have written), and a random-init ITC bundle;
2. starts ``dagster-daemon run`` (the production daemon: backfill loop, run queue, sensors) on a Dagster home with
   the repository's run queue settings (QueuedRunCoordinator, 2 concurrent runs) and the code location
   ``stickypi_assets_tests.backfill_defs`` (the real ``raw_images``, ``tuboids`` and ``classifications`` assets;
   the SIM is the deterministic bbox-IoU matcher);
3. launches the backfill of every device-day of the three assets with the GraphQL mutation the UI uses, and waits;
4. prints the wall time from launch to the backfill's completion, the runs it made, their durations, and how far
   the wall time is from the compute bound ``max(longest run, sum of runs / concurrent runs)``: the part that
   daemon ticks and run start-up cost.

``--policy per-partition`` swaps the assets' ``BackfillPolicy.single_run()`` for one run per partition to show what
the single-run policy avoids: the self-dependent ``tuboids`` then advances one day per backfill tick (30 s).

Run: ``.venv/bin/python benchmarks/backfill.py [--devices 2] [--days 30] [--policy single|per-partition]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_CONCURRENT_RUNS = 2  # as the repository's dagster.yaml (2-core machines)


def prepare(work: Path, devices: int, days: int, size: tuple[int, int], seed: int) -> tuple[list[str], int]:
    """Synthetic images, ground-truth segmentations and an ITC bundle; returns (partition keys, images)."""
    from stickypi_assets.ml.itc.config import ItcConfig, save_config
    from stickypi_assets.ml.itc.model import ItcNet, save_checkpoint
    from stickypi_assets.orchestration.partitions import multi_partition_key
    from stickypi_assets.orchestration.resources import StickyPiStorage
    from stickypi_assets.synth import SynthConfig, generate
    from stickypi_assets.synth.tuboids import SYNTH_LABELS
    from stickypi_assets_tests.chain_helpers import ground_truth_segmentations

    synth = SynthConfig(devices=devices, days=days, seed=seed, width=size[0], height=size[1])
    bundle = Path(os.environ["STICKYPI_ITC_BUNDLE"])
    config = ItcConfig(labels=SYNTH_LABELS, backbone="resnet18", input_size=64, n_shots=4)
    save_config(config, bundle / "config" / "config.yaml")
    save_checkpoint(ItcNet.from_config(config), bundle / "output" / "model_final.pth", config)
    storage = StickyPiStorage()
    store = storage.object_store()
    generate(synth, store)
    day_list = [synth.start_date + timedelta(days=k) for k in range(days)]
    for device in synth.device_ids:
        ground_truth_segmentations(store, storage, device, day_list)
    n_images = sum(1 for _ in store.list("raw_images/"))
    return [str(multi_partition_key(d, day)) for d in synth.device_ids for day in day_list], n_images


def write_home(work: Path) -> Path:
    home = work / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        textwrap.dedent(
            f"""\
            run_coordinator:
              module: dagster.core.run_coordinator
              class: QueuedRunCoordinator
            concurrency:
              runs:
                max_concurrent_runs: {MAX_CONCURRENT_RUNS}
            telemetry:
              enabled: false
            """
        )
    )
    (work / "workspace.yaml").write_text(
        textwrap.dedent(
            f"""\
            load_from:
              - python_module:
                  module_name: stickypi_assets_tests.backfill_defs
                  attribute: defs
                  working_directory: {REPO}
                  location_name: backfill_bench
            """
        )
    )
    return home


def launch_backfill(workspace: Path, keys: list[str]) -> str:
    from dagster import DagsterInstance
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
    from dagster_graphql.test.utils import execute_dagster_graphql

    instance = DagsterInstance.get()
    with WorkspaceProcessContext(instance, WorkspaceFileTarget([str(workspace)])) as ctx:
        result = execute_dagster_graphql(ctx.create_request_context(), LAUNCH_PARTITION_BACKFILL_MUTATION, {
            "backfillParams": {
                "partitionNames": keys,
                "assetSelection": [{"path": ["raw_images"]}, {"path": ["tuboids"]}, {"path": ["classifications"]}],
            }
        })  # fmt: skip
    launched = result.data["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise SystemExit(f"backfill not launched: {launched}")
    return launched["backfillId"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--policy", choices=["single", "per-partition"], default="single")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temporary folder)")
    args = parser.parse_args()

    tmp = None if args.workdir else tempfile.TemporaryDirectory(prefix="stickypi-backfill-")
    work = args.workdir or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    home = write_home(work)
    os.environ.update({
        "DAGSTER_HOME": str(home), "STICKYPI_DATA_ROOT": str(work / "data"), "STICKYPI_ITC_BUNDLE": str(work / "itc"),
        "STICKYPI_BACKFILL_POLICY": args.policy,
    })  # fmt: skip
    os.environ.pop("STICKYPI_STORE_URL", None)
    os.environ.pop("STICKYPI_WAREHOUSE_PATH", None)
    os.environ.pop("STICKYPI_PUBLISHED_PATH", None)

    t0 = time.perf_counter()
    keys, n_images = prepare(work, args.devices, args.days, (args.width, args.height), args.seed)
    print(f"prepared {args.devices} devices x {args.days} days ({n_images} images, {args.width}x{args.height}) "
          f"in {time.perf_counter() - t0:.0f} s; policy: {args.policy}")  # fmt: skip

    from dagster import DagsterInstance, RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus

    from stickypi_assets.orchestration.partitions import DEVICES

    instance = DagsterInstance.get()
    instance.add_dynamic_partitions(DEVICES.name or "devices", sorted({k.split("|")[1] for k in keys}))
    daemon_log = open(work / "daemon.log", "w")  # noqa: SIM115 (closed below, after the daemon)
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(work / "workspace.yaml")],
        cwd=REPO, env=os.environ.copy(), stdout=daemon_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        time.sleep(5)  # let the daemon load the code location (it would otherwise only delay the first tick)
        launched = time.perf_counter()
        backfill_id = launch_backfill(work / "workspace.yaml", keys)
        status = BulkActionStatus.REQUESTED
        while status == BulkActionStatus.REQUESTED and time.perf_counter() - launched < args.timeout:
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited ({daemon.returncode}); see {work / 'daemon.log'}")
            time.sleep(1.0)
            status = instance.get_backfill(backfill_id).status
        wall = time.perf_counter() - launched
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        daemon_log.close()

    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill_id}))
    durations = []
    for run in runs:
        stats = instance.get_run_stats(run.run_id)
        if stats.start_time and stats.end_time:
            durations.append(stats.end_time - stats.start_time)
    failed = [r.run_id for r in runs if not r.is_success]
    print(f"backfill {backfill_id}: {status.value} in {wall:.0f} s wall, {len(runs)} runs "
          f"({len(failed)} not successful) for {len(keys)} device-days")  # fmt: skip
    if durations:
        longest, total = max(durations), sum(durations)
        bound = max(longest, total / MAX_CONCURRENT_RUNS)  # the best any scheduler could do with these runs
        print(f"  run durations: longest {longest:.0f} s, sum {total:.0f} s, mean {total / len(durations):.1f} s")
        print(f"  compute bound max(longest run, sum / {MAX_CONCURRENT_RUNS} concurrent runs) = {bound:.0f} s; "
              f"wall / bound = {wall / bound:.2f}; wall - bound = {wall - bound:.0f} s (daemon ticks, run start-up); "
              f"wall per device-day {wall / len(keys):.1f} s")  # fmt: skip
    from stickypi_assets.orchestration.resources import StickyPiStorage

    wh = StickyPiStorage().warehouse()
    counts = wh.query("SELECT count(*) AS tuboids, count(*) FILTER (continued) AS continued FROM tuboids")
    n_cls = wh.query("SELECT count(*) AS n FROM classifications").n[0]
    print(f"  tables: {counts.tuboids[0]} tuboid rows ({counts.continued[0]} continued from the previous day), "
          f"{n_cls} classifications")  # fmt: skip
    if tmp is not None:
        tmp.cleanup()
    return 0 if status == BulkActionStatus.COMPLETED_SUCCESS and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
