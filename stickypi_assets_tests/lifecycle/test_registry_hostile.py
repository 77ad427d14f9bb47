"""The registry under a hostile store writer: a version is an md5 id or an error, never a path; weights match it.

Whoever can write to the object store writes ``CURRENT.json``, the version folders and their weights. None of
that may make :meth:`ModelRegistry.fetch` return a folder outside its cache, or weights other than the version's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from stickypi_assets.lifecycle.registry import ModelRegistry
from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH, weights_version
from stickypi_assets.ml.checkpoints import CheckpointVersionError, InvalidVersion, UnsafeCheckpointError
from stickypi_assets.ml.itc.config import ItcConfig, save_config
from stickypi_assets.ml.itc.model import CHECKPOINT_FORMAT, ItcNet, save_checkpoint
from stickypi_assets.ml.itc.predict import load_classifier
from stickypi_assets.storage.keys import current_version_key, version_prefix, versions_prefix
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth.tuboids import SYNTH_LABELS

CONFIG = ItcConfig(labels=SYNTH_LABELS, backbone="resnet18", input_size=32, n_shots=2)
BUNDLE = "insect-tuboid-classifier"


def _leave_marker(path: str) -> None:
    Path(path).write_text("the payload ran", encoding="utf-8")


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_leave_marker, (self.marker,))


def itc_bundle(root: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    save_config(CONFIG, root / CONFIG_RELPATH)
    save_checkpoint(ItcNet.from_config(CONFIG), root / WEIGHTS_RELPATH, CONFIG)
    return root


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(LocalObjectStore(tmp_path / "store"), tmp_path / "cache")


def set_current(registry: ModelRegistry, document: object) -> None:
    registry.store.put_bytes(current_version_key(BUNDLE), json.dumps(document).encode())


def test_current_json_with_a_traversal_version(tmp_path: Path, registry: ModelRegistry):
    evil = itc_bundle(tmp_path / "evil", seed=1)  # a local folder the writer wants loaded: cache/<bundle>/../../evil
    assert (registry.cache_root / BUNDLE / "../../evil" / WEIGHTS_RELPATH).resolve() == (evil / WEIGHTS_RELPATH)
    set_current(registry, {"version": "../../evil"})
    with pytest.raises(InvalidVersion, match="not a model version"):
        registry.current_version("itc")
    with pytest.raises(InvalidVersion, match="not a model version"):
        registry.fetch("itc")


def test_current_json_with_an_absolute_path_version(tmp_path: Path, registry: ModelRegistry):
    evil = itc_bundle(tmp_path / "evil", seed=1)
    set_current(registry, {"version": str(evil)})
    with pytest.raises(InvalidVersion):
        registry.fetch("itc")


def test_current_json_with_a_non_hex_version(tmp_path: Path, registry: ModelRegistry):
    record, _ = registry.register("itc", itc_bundle(tmp_path / "b", seed=1), {"macro_recall": 0.5}, [])
    for bad in (record.version.upper(), "z" * 32, record.version[:8], 12345):
        set_current(registry, {"version": bad})
        with pytest.raises(InvalidVersion, match="CURRENT.json"):
            registry.fetch("itc")
        with pytest.raises(InvalidVersion):
            registry.current("itc")


def test_current_json_that_is_not_a_version_object(registry: ModelRegistry):
    for document in (["0" * 32], {"current": "0" * 32}, "0" * 32):
        set_current(registry, document)
        with pytest.raises(InvalidVersion, match="CURRENT.json"):
            registry.current_version("itc")
    registry.store.put_bytes(current_version_key(BUNDLE), b"{not json")
    with pytest.raises(InvalidVersion, match="CURRENT.json"):
        registry.current_version("itc")


def test_fetch_and_promote_arguments_with_a_traversal_version(tmp_path: Path, registry: ModelRegistry):
    itc_bundle(tmp_path / "evil", seed=1)
    for bad in ("../../evil", "..", str(tmp_path / "evil"), "0" * 31 + "/"):
        with pytest.raises(InvalidVersion):
            registry.fetch("itc", bad)
        with pytest.raises(InvalidVersion):
            registry.promote("itc", bad)


def test_weights_in_the_store_whose_md5_differs_from_their_version(tmp_path: Path, registry: ModelRegistry):
    record, _ = registry.register("itc", itc_bundle(tmp_path / "b", seed=1), {"macro_recall": 0.5}, [])
    other = itc_bundle(tmp_path / "other", seed=2)  # a valid checkpoint, but not this version's bytes
    registry.store.put_file(f"{version_prefix(BUNDLE, record.version)}/{WEIGHTS_RELPATH.as_posix()}",
                            other / WEIGHTS_RELPATH)  # fmt: skip
    with pytest.raises(CheckpointVersionError, match=record.version):
        registry.fetch("itc")
    assert not (registry.cache_root / BUNDLE / record.version).exists()


def test_cached_weights_whose_md5_differs_from_their_version(tmp_path: Path, registry: ModelRegistry):
    record, _ = registry.register("itc", itc_bundle(tmp_path / "b", seed=1), {"macro_recall": 0.5}, [])
    cached = registry.fetch("itc") / WEIGHTS_RELPATH
    marker = tmp_path / "marker"
    torch.save({"format": "x", "model": Payload(marker)}, cached)  # the cached copy is replaced by a payload
    local = registry.fetch("itc")  # fetched again from the store, not returned as it is
    assert weights_version(local / WEIGHTS_RELPATH) == record.version
    assert load_classifier(local)[2] == record.version
    assert not marker.exists()


def test_a_pickle_payload_registered_under_its_own_md5_is_refused_when_loaded(tmp_path: Path,
                                                                             registry: ModelRegistry):
    """The writer picks the md5: fetch accepts the file (it matches its version), loading still refuses it."""
    marker = tmp_path / "marker"
    bundle = tmp_path / "payload"
    save_config(CONFIG, bundle / CONFIG_RELPATH)
    (bundle / WEIGHTS_RELPATH).parent.mkdir(parents=True)
    torch.save({"format": CHECKPOINT_FORMAT, "model": Payload(marker)}, bundle / WEIGHTS_RELPATH)
    version = weights_version(bundle / WEIGHTS_RELPATH)
    prefix = version_prefix(BUNDLE, version)
    for rel in (CONFIG_RELPATH, WEIGHTS_RELPATH):
        registry.store.put_file(f"{prefix}/{rel.as_posix()}", bundle / rel)
    set_current(registry, {"version": version})
    with pytest.raises(UnsafeCheckpointError, match="refused: not a plain weights file"):
        load_classifier(registry.fetch("itc"))
    assert not marker.exists()


def test_a_registration_whose_version_is_not_its_folder(tmp_path: Path, registry: ModelRegistry, caplog):
    record, _ = registry.register("itc", itc_bundle(tmp_path / "b", seed=1), {"macro_recall": 0.5}, [])
    forged = json.loads(registry.store.get_bytes(f"{record.prefix}/registration.json"))
    prefix = versions_prefix(BUNDLE)
    for folder, version in (("evil", "../../evil"), ("f" * 32, "../../evil"), ("e" * 32, record.version)):
        document = json.dumps({**forged, "version": version}).encode()
        registry.store.put_bytes(f"{prefix}{folder}/registration.json", document)
    registry.store.put_bytes(f"{prefix}{'d' * 32}/registration.json", b"{not json")
    with caplog.at_level(logging.WARNING, logger="stickypi_assets.lifecycle.registry"):
        assert [r.version for r in registry.versions("itc")] == [record.version]
    assert caplog.text.count("skipped registration") == 4
    assert registry.table_rows().version.tolist() == [record.version]
    set_current(registry, {"version": "e" * 32})  # its registration claims to be another version
    with pytest.raises(InvalidVersion, match="is not"):
        registry.current("itc")
