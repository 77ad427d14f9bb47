"""``stickypi demo``: the platform on its own synthetic sample, with no configuration and no services.

1. Generates a small multi-device, multi-day time-lapse (with a deliberately corrupt frame) into the
   embedded object store, and a separate two-day *training* deployment (other seed, other insects).
2. Puts the training deployment's ground truth into the object store as annotations, with small training
   recipes (:mod:`stickypi_assets.demo.recipes`), and materializes the model assets ``uid_model``,
   ``sim_model`` and ``itc_model``: they train the UID, SIM and ITC from random init, validate them and
   register them in the model registry (skipped when the registry already has current models).
3. Lets the device sensor discover the devices.
4. Materializes ``raw_images`` → ``uid_segmentations`` → ``tuboids`` → ``classifications`` for every device-day
   through Dagster, in date order per device (tuboids continue the previous day's tracks). Runs are persisted in the
   repository's Dagster instance when ``DAGSTER_HOME`` is set, so ``make ui`` shows them.
5. Prints the analysts' ``captures`` and ``daily_taxon_counts`` and the accuracy against the sample's
   ground truth (detection, count, tracking, capture time, taxonomy).
6. Scores each device's last day for annotation (``scoring_job``: ``image_scores``, ``tuboid_scores``), updates the
   annotation queue (``annotation_queue_job``) and prints the first batch it asks for, with each item's reason.

``models=False`` stops after ingestion (a quick smoke run).
"""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

from dagster import DagsterInstance, build_sensor_context
from dagster._daemon.asset_daemon import set_auto_materialize_paused

from stickypi_assets.definitions import defs
from stickypi_assets.ml.stages import STAGES
from stickypi_assets.orchestration.automation.device_sensor import device_discovery_sensor
from stickypi_assets.orchestration.local_runs import run_job
from stickypi_assets.orchestration.partitions import DEVICES, multi_partition_key
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.raw_images import image_days
from stickypi_assets.settings import Settings
from stickypi_assets.storage.object_store import LocalObjectStore, ObjectStore

DEMO_START = date(2020, 6, 20)
TRAINING_START = date(2020, 5, 1)
#: Runs still log everything to the instance (visible in the UI); only the console copy is quieted.
QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
DEMO_WIDTH, DEMO_HEIGHT = 1296, 972  # half the Sticky Pi resolution keeps the demo quick on 2 cores


def generate_sample(
    store: ObjectStore,
    *,
    devices: int,
    days: int,
    seed: int,
    start: date = DEMO_START,
    corrupt: int = 1,
    size: tuple[int, int] = (DEMO_WIDTH, DEMO_HEIGHT),
) -> dict:
    """Write a synthetic deployment (images + ground truth) into ``store``; returns the manifest summary."""
    from stickypi_assets.synth import SynthConfig, generate

    width, height = size
    config = SynthConfig(devices=devices, days=days, start_date=start, seed=seed, width=width, height=height,
                         corrupt_frames=corrupt)  # fmt: skip
    return generate(config, store)


def _instance() -> DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        instance = DagsterInstance.get()
    else:
        instance = DagsterInstance.ephemeral()
    # The UI reads this legacy flag ("Auto-materialize off" on every job page), which is paused on a new instance.
    # The automation here runs in sensors, which it does not stop, so the flag is set to what is true: on.
    set_auto_materialize_paused(instance, False)
    return instance


def _train_models(
    instance: DagsterInstance, settings: Settings, *, seed: int, uid_iters: int | None, retrain: bool,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """Annotations from a separate training deployment, then the model assets train and register the models.

    The ITC's annotations are the tuboids the current UID and SIM make of the training deployment, labelled by
    the simulated annotator, so they are written once those two are trained (as in production, where experts
    label the SIM's tuboids).
    """
    from stickypi_assets.demo.recipes import write_demo_annotations, write_itc_annotations
    from stickypi_assets.orchestration.assets.models import MODEL_ASSETS

    storage = StickyPiStorage()
    registry = storage.registry()
    if not retrain and all(registry.current_version(stage) for stage in STAGES):
        print("[2/6] trained models found in the model registry (use --retrain to train them again)")
        return
    t0 = time.perf_counter()
    training = LocalObjectStore(settings.data_root / "training-sample")
    if not training.exists("ground_truth/manifest.json"):
        generate_sample(training, devices=1, days=2, seed=seed + 1000, start=TRAINING_START, corrupt=0, size=size)
    counts = write_demo_annotations(training, storage.object_store(), uid_iters=uid_iters)
    print(f"[2/6] training deployment (1 device x 2 days, other insects) and its annotations in the store "
          f"({', '.join(f'{n} {s.upper()} files' for s, n in counts.items())}) in {time.perf_counter() - t0:.1f} s; "
          "the model assets train from them:")  # fmt: skip
    for stage, asset in MODEL_ASSETS.items():
        name = asset.key.to_user_string()
        t0 = time.perf_counter()
        if stage == "itc":
            bundles = {s: ModelResource(stage=s).resolved_bundle_dir() for s in ("uid", "sim")}
            labels = write_itc_annotations(training, storage.object_store(), bundles["uid"], bundles["sim"],
                                           progress=True)
            print(f"      ITC annotations: the current UID + SIM made {len(labels.labelled) + len(labels.unlabelled)} "
                  f"tuboids of the training deployment; the simulated annotator labelled {len(labels.labelled)} "
                  f"({len(labels.unlabelled)} follow no single insect) in {time.perf_counter() - t0:.0f} s")
        run_config = {**QUIET_RUN, "ops": {name: {"config": {"progress_bar": True}}}}
        result = run_job(defs, "model_training_job", instance, asset_selection=[asset.key], run_config=run_config)
        meta = result.asset_materializations_for_node(name)[0].metadata
        metric = STAGES[stage].metric
        value = meta[metric].value if metric in meta else None
        shown = f"{value:.3f}" if isinstance(value, float) else "n/a"
        print(f"      {name}: version {meta['trained_version'].value[:8]}, validation {metric} {shown}, "
              f"in {time.perf_counter() - t0:.0f} s: {meta['decision'].value}")  # fmt: skip


def _ask_for_annotations(instance: DagsterInstance, last_days: dict[str, date]) -> None:
    """Score each device's last day for annotation (job ``scoring_job``, as the daily schedule does for
    yesterday), update the annotation queue (``annotation_queue_job``) and print the batch it asks for."""
    t0 = time.perf_counter()
    for device, day in sorted(last_days.items()):
        run = run_job(defs, "scoring_job", instance, partition_key=multi_partition_key(device, day),
                      run_config=QUIET_RUN)  # fmt: skip
        img = run.asset_materializations_for_node("image_scores")[0].metadata
        tub = run.asset_materializations_for_node("tuboid_scores")[0].metadata
        print(f"      {device}|{day}: {img['n_scored'].value} images scored ({img['seconds_per_image'].value:.2f} "
              f"s/image, {img['passes'].value} MC-dropout passes), {tub['n_scored'].value} tuboids", flush=True)
    run = run_job(defs, "annotation_queue_job", instance, run_config=QUIET_RUN)
    meta = run.asset_materializations_for_node("annotation_queue")[0].metadata
    print(f"[6/6] active learning in {time.perf_counter() - t0:.1f} s: {meta['n_new'].value} items queued for "
          "annotation (table annotation_queue, pre-annotations under pre_annotations/):")  # fmt: skip
    from stickypi_assets.pipeline.annotation_queue import read_queue

    queue = read_queue(StickyPiStorage().warehouse())
    batch = queue[queue["batch"] == queue["batch"].max()] if len(queue) else queue
    for r in batch.sort_values(["kind", "rank"]).itertuples(index=False):
        print(f"      {r.kind:6s} #{r.rank:<2d} {r.item}  [{r.sampler}] {r.reason}")
    if not len(batch):
        print("      nothing new: " + meta["not_asked"].value.replace("\n", "; "))
    print("      annotate them (Inkscape for the SVGs; a database.db for the tuboids), put the files under "
          "annotations/uid/ and annotations/itc/, and the sensors retrain")


def run_demo(
    *, devices: int = 2, days: int = 2, seed: int = 1, models: bool = True, uid_iters: int | None = None,
    retrain: bool = False, size: tuple[int, int] = (DEMO_WIDTH, DEMO_HEIGHT),
) -> int:  # fmt: skip
    settings = Settings.from_env()
    storage = StickyPiStorage()
    store = storage.object_store()
    started = time.perf_counter()
    print(f"stickypi demo: data root {settings.data_root}")
    print(f"  object store : {store.describe()}")
    print(f"  warehouse    : {settings.warehouse_path} (analysts: {settings.published_path})")

    t0 = time.perf_counter()
    summary = generate_sample(store, devices=devices, days=days, seed=seed, size=size)
    n_images = sum(1 for _ in store.list("raw_images/"))
    print(f"\n[1/6] generated {n_images} synthetic images in {time.perf_counter() - t0:.1f} s: {summary}")
    instance = _instance()
    if models:
        _train_models(instance, settings, seed=seed, uid_iters=uid_iters, retrain=retrain, size=size)
    else:
        print("[2/6] models skipped (--no-models): ingestion only")

    with build_sensor_context(instance=instance, resources={"storage": storage}) as ctx:
        result = device_discovery_sensor(ctx)
    new = [k for r in getattr(result, "dynamic_partitions_requests", []) for k in r.partition_keys]
    if new:
        instance.add_dynamic_partitions(DEVICES.name or "devices", new)
    known = instance.get_dynamic_partitions(DEVICES.name or "devices")
    print(f"[3/6] device sensor: {len(new)} new device(s); known devices {known}")

    job_name = "pipeline_job" if models else "ingest_job"
    t0 = time.perf_counter()
    n_runs = 0
    days = {device: image_days(store, device) for device in known}
    outside = sorted({d for ds in days.values() for d in ds
                      if d < settings.start_date or (settings.end_date and d > settings.end_date)})  # fmt: skip
    if outside:
        raise SystemExit(
            f"stickypi demo: the sample has days {outside[0]}..{outside[-1]} outside the partitions "
            f"({settings.start_date}..{settings.end_date or 'yesterday'}); unset STICKYPI_START_DATE/STICKYPI_END_DATE "
            "or set them around the sample's days"
        )
    for device in known:
        for day in days[device]:  # in date order: tuboids of D continue D-1's
            key = multi_partition_key(device, day)
            run = run_job(defs, job_name, instance, partition_key=key, run_config=QUIET_RUN)
            n_runs += 1
            raw = run.asset_materializations_for_node("raw_images")[0].metadata
            line = (f"      {device}|{day}: {raw['n_ok'].value} images ok, {raw['n_errors'].value} errors, "
                    f"{raw['n_duplicates'].value} duplicates")  # fmt: skip
            if models:
                seg = run.asset_materializations_for_node("uid_segmentations")[0].metadata
                tub = run.asset_materializations_for_node("tuboids")[0].metadata
                cls = run.asset_materializations_for_node("classifications")[0].metadata
                line += (
                    f"; {seg['n_instances'].value} instances ({seg['seconds_per_image'].value:.2f} s/image); "
                    f"{tub['n_tuboids'].value} tuboids ({tub['n_continued_from_previous_day'].value} from D-1); "
                    f"{cls['n_classified'].value} classified"
                )
            print(line, flush=True)
    print(f"[4/6] materialized {n_runs} device-days in {time.perf_counter() - t0:.1f} s")

    warehouse = storage.warehouse()
    print("\n[5/6] Table images, per device-day (from the published DuckDB copy):")
    table = warehouse.query(
        "SELECT device, \"date\", count(*) AS images, count(*) FILTER (status = 'ok') AS ok, "
        "count(*) FILTER (status = 'error') AS errors, min(datetime) AS first, max(datetime) AS last "
        "FROM images GROUP BY ALL ORDER BY ALL",
        published=True,
    )
    print(table.to_string(index=False))
    errors = warehouse.query(
        "SELECT object_key, error FROM images WHERE status <> 'ok' ORDER BY object_key", published=True
    )
    if len(errors):
        print("\nRecorded (not fatal) bad images:")
        print(errors.to_string(index=False))
    if models:
        print("\nView captures (one row per insect), the first 10:")
        print(warehouse.query(
            "SELECT tuboid_id, capture_time, last_seen, taxon, round(confidence, 2) AS confidence, "
            "round(size_px) AS size_px FROM captures ORDER BY capture_time, tuboid_id LIMIT 10", published=True,
        ).to_string(index=False))
        print("\nTable daily_taxon_counts:")
        print(warehouse.query(
            'SELECT * FROM daily_taxon_counts ORDER BY device, "date", n_captures DESC, taxon', published=True,
        ).to_string(index=False))  # fmt: skip
        print("\nTable models (the registry):")
        print(warehouse.query(
            "SELECT stage, left(version, 8) AS version, metric_name, round(metric_value, 3) AS metric, is_current, "
            "created_at FROM models ORDER BY stage, created_at", published=True,
        ).to_string(index=False))  # fmt: skip
        from stickypi_assets.synth.scoring import score_chain

        print("\nAccuracy against the synthetic ground truth (models trained on other insects):")
        from stickypi_assets.ml.itc.config import bundle_config

        label_map = bundle_config(ModelResource(stage="itc").resolved_bundle_dir()).label_map
        for line in score_chain(store, warehouse, label_map).lines():
            print(f"  {line}")
    if models:
        _ask_for_annotations(instance, {device: ds[-1] for device, ds in days.items() if ds})
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s.")
    print(
        "Next: `make ui` opens Dagster at http://127.0.0.1:3000 on these runs;\n"
        f'      `.venv/bin/stickypi warehouse sql "SELECT * FROM captures LIMIT 5"` queries {settings.published_path}'
    )
    return 0
