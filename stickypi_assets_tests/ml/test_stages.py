"""Contract of the stage table: every entry is complete and consistent, whatever stage is added next."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from stickypi_assets.lifecycle.registry import ModelRegistry
from stickypi_assets.lifecycle.training import annotation_manifest
from stickypi_assets.ml.bundles import CONFIG_RELPATH, BundleConfig
from stickypi_assets.ml.config_docs import render
from stickypi_assets.ml.stages import STAGES, Stage, get_stage
from stickypi_assets.storage.object_store import LocalObjectStore

ALL = pytest.mark.parametrize("stage", list(STAGES.values()), ids=list(STAGES))


def _keyword_params(fn) -> set[str]:
    return {n for n, p in inspect.signature(fn).parameters.items() if p.kind is not p.VAR_POSITIONAL}


@ALL
def test_entry_is_complete(stage: Stage):
    assert STAGES[stage.name] is stage and stage.name.isidentifier() and stage.name == stage.name.lower()
    assert stage.title and stage.role and stage.annotations and stage.config_summary
    assert stage.cli.train and stage.cli.validate and stage.cli.restart  # its train/validate commands' help
    assert stage.annotation_prefix == f"annotations/{stage.name}/"
    assert stage.model_asset == f"{stage.name}_model"
    assert stage.bundle_variable == f"STICKYPI_{stage.name.upper()}_BUNDLE"
    assert stage.annotation_suffixes and all(s == s.lower() for s in stage.annotation_suffixes)
    assert issubclass(stage.config_class, BundleConfig)


@ALL
def test_functions_resolve_with_the_shared_signatures(stage: Stage):
    train, validate, load = stage.trainer.resolve(), stage.validator.resolve(), stage.loader.resolve()
    assert {"bundle_dir", "restart", "device", "progress"} <= _keyword_params(train)
    assert {"bundle_dir", "out_dir", "device"} <= _keyword_params(validate)
    assert {"bundle_dir", "device"} <= _keyword_params(load)


@ALL
def test_default_config_round_trips_through_its_file(stage: Stage, tmp_path: Path):
    config = stage.config_class()
    path = config.save(tmp_path / CONFIG_RELPATH)
    again = stage.config_class.from_bundle(tmp_path)
    assert again == config and again.warnings == []
    assert path.read_text().startswith("# ")
    with pytest.raises(ValueError, match=f"invalid {stage.config_class.WHAT} config"):
        stage.config_class.from_dict({"NO_SUCH_KEY": 1}, strict=True)


@ALL
def test_the_stage_is_known_to_registry_docs_and_dagster(stage: Stage, tmp_path: Path):
    from stickypi_assets.definitions import defs

    assert f"`{stage.bundle_name}`" in render()
    registry = ModelRegistry(LocalObjectStore(tmp_path / "store"), tmp_path / "cache")
    assert registry.versions(stage.name) == [] and registry.current_version(stage.name) is None
    assert defs.resolve_assets_def(stage.model_asset) is not None
    assert stage.model_asset in defs.resources
    assert f"{stage.name}_annotations_sensor" in {s.name for s in defs.sensors}


@ALL
def test_annotation_manifest_keeps_only_the_stage_files(stage: Stage, tmp_path: Path):
    store = LocalObjectStore(tmp_path)
    wanted = f"{stage.annotation_prefix}sub/x{stage.annotation_suffixes[0]}"
    store.put_bytes(wanted, b"a")
    store.put_bytes(f"{stage.annotation_prefix}notes.unknown", b"b")
    store.put_bytes(f"annotations/elsewhere/y{stage.annotation_suffixes[0]}", b"c")
    assert [m["key"] for m in annotation_manifest(store, stage.name)] == [wanted]


def test_unknown_stage_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown stage 'foo'; known: uid, sim, itc"):
        get_stage("foo")
