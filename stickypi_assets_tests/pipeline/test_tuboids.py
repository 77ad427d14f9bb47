"""SIM on device-days: the ``tuboids`` asset across midnight, re-runs, range (single-run backfill) runs.

The UID step is replaced by the generator's ground-truth SVGs (rows of ``segmented_images`` pointing at
them), and the matcher by bbox IoU (:class:`IouMatcher`): these tests are about the day hand-over, ids,
tables and objects, which do not depend on the network (its accuracy is measured in
``ml/sim/test_tracking_accuracy.py``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from stickypi_assets.formats.tuboids import read_tuboid
from stickypi_assets.ml.sim.tracking import TrackState
from stickypi_assets.orchestration.assets.tuboids import tuboids
from stickypi_assets.orchestration.partitions import multi_partition_key
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.pipeline.tuboids import load_state, wait_for_state
from stickypi_assets.storage.keys import sim_state_key, sim_video_key, tuboid_day_prefix
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.storage.tables import SEGMENTED_IMAGES
from stickypi_assets.storage.warehouse import PartitionKey
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.sim_pairs import ground_truth_tracks
from stickypi_assets_tests.chain_helpers import IouSimModel, ground_truth_segmentations

SYNTH = SynthConfig(devices=1, days=2, seed=11, width=640, height=480, arrival_rate_day=4.0, arrival_rate_night=1.0)
DEVICE = SYNTH.device_ids[0]
DAY1 = SYNTH.start_date
DAY2 = DAY1 + timedelta(days=1)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> tuple[LocalObjectStore, StickyPiStorage]:
    root = tmp_path_factory.mktemp("deploy")
    store = LocalObjectStore(root / "store")
    generate(SYNTH, store)
    storage = StickyPiStorage(
        store_url=str(store.root), warehouse_path=str(root / "wh.duckdb"), published_path=str(root / "pub.duckdb")
    )
    seg = ground_truth_segmentations(store, storage, DEVICE, [DAY1, DAY2])[DAY2]
    # one SVG of day 2 is unreadable: recorded, the day goes on
    bad = seg.svg_key.iloc[5].replace(".svg", ".broken.svg")
    store.put_bytes(bad, b"<svg this is not")
    seg.loc[seg.index[5], "svg_key"] = bad
    storage.warehouse().write_partition(SEGMENTED_IMAGES.name, PartitionKey(DEVICE, DAY2), seg)
    return store, storage


def run(storage: StickyPiStorage, instance: DagsterInstance, key=None, tags=None):
    result = materialize(
        [tuboids],
        partition_key=key,
        instance=instance,
        tags=tags,
        resources={"storage": storage, "sim_model": IouSimModel()},
    )
    assert result.success
    return result.asset_materializations_for_node("tuboids")


def table(storage: StickyPiStorage, name: str) -> pd.DataFrame:
    return storage.warehouse().query(
        f"SELECT * FROM {name} ORDER BY date, tuboid_id" + (", frame_index" if name == "tuboid_frames" else "")
    )


def midnight_insects(store: LocalObjectStore) -> pd.DataFrame:
    """Truth: instances (stem, index) → insect, for insects seen in day 1's last frame and day 2's first."""
    truth = ground_truth_tracks(store)
    first2 = truth[truth.datetime.dt.date == DAY2].datetime.min()
    last1 = truth[truth.datetime.dt.date == DAY1].datetime.max()
    both = set(truth[truth.datetime == last1].insect_id) & set(truth[truth.datetime == first2].insect_id)
    return truth[truth.insect_id.isin(both) & truth.datetime.isin([last1, first2])]


def tuboid_of_instance(frames: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frames.instance_id, frames.tuboid_id, strict=True))


def test_midnight_rerun_and_range_run(deployment, tmp_path: Path):
    store, storage = deployment
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])

    # Day by day, as the daily schedule does.
    (m1,) = run(storage, instance, multi_partition_key(DEVICE, DAY1))
    assert "tracks start fresh" in m1.metadata["day_handover"].value
    assert m1.metadata["captures_per_hour"].value.startswith("![new tuboids (captures) per UTC hour](data:image/png")
    assert m1.metadata["video"].value.endswith(".mp4")
    (m2,) = run(storage, instance, multi_partition_key(DEVICE, DAY2))
    assert "from the store" in m2.metadata["day_handover"].value
    assert m2.metadata["n_continued_from_previous_day"].value > 0
    assert "broken.svg" in m2.metadata["unreadable_svgs"].value
    frames, tubs = table(storage, "tuboid_frames"), table(storage, "tuboids")

    # An insect on the card at midnight keeps one tuboid id across the two daily partitions.
    spanning = midnight_insects(store)
    assert spanning.insect_id.nunique() >= 5
    owner = tuboid_of_instance(frames)
    same = 0
    for _, rows in spanning.groupby("insect_id"):
        ids = {owner.get(f"{r.image_stem}.{r.instance_index:04d}") for r in rows.itertuples()}
        same += len(ids) == 1 and None not in ids
    assert same >= 0.9 * spanning.insect_id.nunique(), (same, spanning.insect_id.nunique())
    continued = tubs[(tubs.date == DAY2) & tubs.continued]
    assert set(continued.tuboid_id) <= {t.track_id for t in load_state(store, DEVICE, DAY1).tracks}
    assert (continued.track_first_seen.dt.date == DAY1).all()

    # Tables are consistent: frames reference their tuboid, per-day frame counts add up, folders exist.
    per_day = tubs.set_index(["date", "tuboid_id"]).n_frames
    assert per_day.to_dict() == frames.groupby(["date", "tuboid_id"]).size().to_dict()
    written = tubs[tubs.folder_key.notna()]
    assert len(written) > 0.8 * len(tubs)
    sample = written.iloc[0]
    tub = read_tuboid(store.local_path(sample.folder_key.rstrip("/")))
    assert len(tub.frames) == sample.n_frames
    assert store.exists(sim_video_key(DEVICE, DAY1)) and store.exists(sim_state_key(DEVICE, DAY2))

    # Re-running day 2 gives the same ids and replaces (never duplicates) its rows and objects.
    before = sorted(i.key for i in store.list(tuboid_day_prefix(DEVICE, DAY2)))
    run(storage, instance, multi_partition_key(DEVICE, DAY2))
    again = table(storage, "tuboid_frames")
    assert len(again) == len(frames)
    cols = ["date", "tuboid_id", "frame_index", "instance_id", "match_score"]
    pd.testing.assert_frame_equal(again[cols], frames[cols])
    assert sorted(i.key for i in store.list(tuboid_day_prefix(DEVICE, DAY2))) == before

    # A range run (single-run backfill of both days) walks the days in order, handing the state over in
    # memory, and gives exactly the day-by-day result.
    ranged_runs = run(storage, instance, tags={
        "dagster/asset_partition_range_start": str(multi_partition_key(DEVICE, DAY1)),
        "dagster/asset_partition_range_end": str(multi_partition_key(DEVICE, DAY2)),
    })  # fmt: skip
    assert any("from this run" in m.metadata["day_handover"].value for m in ranged_runs)
    ranged = table(storage, "tuboid_frames")
    pd.testing.assert_frame_equal(ranged[cols], frames[cols])
    assert (ranged.run_id != frames.run_id).all()  # really re-written


def test_a_day_whose_previous_day_was_not_tracked_fails_unless_told(deployment):
    """Tracks never silently restart: D-1 has images but no state → the partition fails and says what to do."""
    store, storage = deployment
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("devices", [DEVICE])
    run(storage, instance, multi_partition_key(DEVICE, DAY1))
    store.delete(sim_state_key(DEVICE, DAY1))  # as if day 1 had never been tracked (it has images)
    key = multi_partition_key(DEVICE, DAY2)
    failed = materialize([tuboids], partition_key=key, instance=instance, raise_on_error=False,
                         resources={"storage": storage, "sim_model": IouSimModel()})  # fmt: skip
    assert not failed.success
    (failure,) = [e for e in failed.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert f"the previous day {multi_partition_key(DEVICE, DAY1)} has images" in message
    assert "start_without_previous_day" in message
    forced = materialize([tuboids], partition_key=key, instance=instance,
                         run_config={"ops": {"tuboids": {"config": {"start_without_previous_day": True}}}},
                         resources={"storage": storage, "sim_model": IouSimModel()})  # fmt: skip
    (meta,) = forced.asset_materializations_for_node("tuboids")
    assert "started fresh (start_without_previous_day)" in meta.metadata["day_handover"].value
    assert meta.metadata["n_continued_from_previous_day"].value == 0


def test_waiting_for_the_run_that_tracks_the_previous_day(tmp_path: Path):
    """The state of D-1 appears while another run tracks it: D waits for it instead of starting fresh."""
    store = LocalObjectStore(tmp_path / "store")
    looks, slept = [], []

    def in_progress() -> bool:
        looks.append(1)
        if len(looks) == 3:  # the other run finishes and writes its state
            store.put_bytes(sim_state_key(DEVICE, DAY1), TrackState(device=DEVICE, crop_size=105).to_json().encode())
        return True

    state = wait_for_state(store, DEVICE, DAY1, in_progress=in_progress, timeout_s=60, sleep=slept.append)
    assert state is not None and state.device == DEVICE and len(slept) == 3
    nobody = wait_for_state(store, DEVICE, DAY2, in_progress=lambda: False, timeout_s=60, sleep=slept.append)
    assert nobody is None and len(slept) == 3  # nothing in progress: no waiting
    stuck = wait_for_state(store, DEVICE, DAY2, in_progress=lambda: True, timeout_s=0.2, poll_s=0.05)
    assert stuck is None  # gives up after the timeout
