"""Model assets train from annotations in the object store; a worse retrain does not become current."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, materialize

from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.stages import STAGES
from stickypi_assets.orchestration.assets.models import MODEL_ASSETS
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.storage.keys import training_config_key
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.tuboids import synth_labels, write_synth_tuboids

TAXA = ("sciaridae", "coccinellidae", "cicadellidae")
DEPLOYMENT = SynthConfig(devices=1, days=1, seed=9, width=960, height=720, arrival_rate_day=8, arrival_rate_night=3,
                         interval_s=3600, taxa=TAXA)  # fmt: skip


def training_config(rounds: int) -> bytes:
    config = ItcConfig(
        labels=synth_labels(TAXA, catch_all=False), backbone="resnet18", input_size=64, n_shots=4, ims_per_batch=16,
        optimizer="adamw", base_lr=1e-3, n_rounds=rounds, checkpoint_period=1000,
    )  # fmt: skip
    return yaml.safe_dump(config.to_dict()).encode()


@pytest.mark.slow
def test_itc_model_asset_registers_versions_and_keeps_the_better_one(tmp_path: Path):
    synth = LocalObjectStore(tmp_path / "synth")
    generate(DEPLOYMENT, synth)
    write_synth_tuboids(synth, tmp_path / "tuboids")
    storage = StickyPiStorage(store_url=str(tmp_path / "store"), warehouse_path=str(tmp_path / "wh.duckdb"),
                              published_path=str(tmp_path / "pub.duckdb"))  # fmt: skip
    store = storage.object_store()
    for path in sorted((tmp_path / "tuboids").rglob("*")):
        if path.is_file():
            store.put_file(f"annotations/itc/{path.relative_to(tmp_path / 'tuboids').as_posix()}", path)
    instance = DagsterInstance.ephemeral()

    store.put_bytes(training_config_key(STAGES["itc"].bundle_name), training_config(60))
    first = materialize([MODEL_ASSETS["itc"]], instance=instance, resources={"storage": storage})
    meta = first.asset_materializations_for_node("itc_model")[0].metadata
    good = meta["trained_version"].value
    assert meta["promoted"].value is True and meta["current_version"].value == good
    assert meta["macro_recall"].value >= 0.6
    assert "| class | support |" in meta["validation/per_class"].value  # per taxon, and the matrix
    assert "| true \\ predicted |" in meta["validation/confusion"].value

    store.put_bytes(training_config_key(STAGES["itc"].bundle_name), training_config(1))  # a much worse recipe
    second = materialize([MODEL_ASSETS["itc"]], instance=instance, resources={"storage": storage})
    meta2 = second.asset_materializations_for_node("itc_model")[0].metadata
    assert meta2["trained_version"].value != good
    assert meta2["promoted"].value is False and meta2["current_version"].value == good, meta2["decision"].value
    assert meta2["macro_recall"].value < meta["macro_recall"].value
    # the asset's data version is the current model: unchanged, so downstream partitions are not stale
    versions = [e.asset_materialization.tags["dagster/data_version"] for e in
                instance.get_latest_materialization_events([MODEL_ASSETS["itc"].key]).values() if e]  # fmt: skip
    assert versions == [good]
    models = storage.warehouse().query("SELECT version, is_current, decision FROM models ORDER BY created_at",
                                       published=True)  # fmt: skip
    assert models.version.tolist() == [good, meta2["trained_version"].value]
    assert models.is_current.tolist() == [True, False] and "kept as a candidate" in models.decision.iloc[1]
    assert storage.registry().current_version("itc") == good
