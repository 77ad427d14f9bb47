"""``DETECTOR`` selects a factory from an allow-list; a bundle config (store data) never names code to import."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH
from stickypi_assets.ml.uid import detector as detector_module
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.detector import (
    allowed_detectors,
    detector_factory,
    is_allowed_detector,
    register_detector,
    unregister_detector,
)
from stickypi_assets.ml.uid.predict import build_detector, load_detector
from stickypi_assets_tests.ml.uid.helpers import PLUGGED_BLOB, plugged_blob_detector

HOSTILE = "stickypi_assets_tests.ml.uid.hostile_detector"


@pytest.fixture
def marker(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv("STICKYPI_TEST_MARKER", str(path))
    sys.modules.pop(HOSTILE, None)
    return path


def hostile_bundle(root: Path, detector: str) -> Path:
    """A bundle as it arrives from the store: a config YAML naming ``detector``, and weights."""
    (root / CONFIG_RELPATH).parent.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_RELPATH).write_text(f"DETECTOR: '{detector}'\n", encoding="utf-8")
    (root / WEIGHTS_RELPATH).parent.mkdir(parents=True, exist_ok=True)
    (root / WEIGHTS_RELPATH).write_bytes(b"weights")
    return root


def test_a_detector_naming_os_system_is_refused(tmp_path: Path, marker: Path):
    with pytest.raises(ValueError, match="DETECTOR 'os:system' is not an allowed detector"):
        load_detector(hostile_bundle(tmp_path / "b", "os:system"))
    with pytest.raises(ValueError, match="not an allowed detector"):
        UidConfig(detector="os:system")


def test_a_detector_naming_an_arbitrary_module_is_neither_imported_nor_called(tmp_path: Path, marker: Path):
    with pytest.raises(ValueError, match="not an allowed detector"):
        load_detector(hostile_bundle(tmp_path / "b", f"{HOSTILE}:factory"))
    assert not marker.exists() and HOSTILE not in sys.modules
    config = UidConfig()
    config.detector = f"{HOSTILE}:factory"  # a config that skipped validation: build_detector refuses it too
    with pytest.raises(ValueError, match="not an allowed detector"):
        build_detector(config)
    assert not marker.exists() and HOSTILE not in sys.modules


def test_a_detector_naming_an_importable_factory_that_is_not_registered_is_refused(tmp_path: Path):
    """Even our own test factory: what counts is that code registered it, not that the config can name it."""
    name = "stickypi_assets_tests.ml.uid.helpers:plugged_blob_detector"
    assert not is_allowed_detector(name)
    with pytest.raises(ValueError, match="not an allowed detector"):
        load_detector(hostile_bundle(tmp_path / "b", name))


def test_a_registered_detector_is_allowed_and_built(tmp_path: Path):
    assert PLUGGED_BLOB in allowed_detectors() and detector_factory(PLUGGED_BLOB) is plugged_blob_detector
    detector, config, version = load_detector(hostile_bundle(tmp_path / "b", PLUGGED_BLOB))
    assert type(detector).__name__ == "PluggedBlobDetector" and detector.weights == b"weights" and len(version) == 32
    register_detector("another-blob", plugged_blob_detector)
    try:
        assert UidConfig(detector="another-blob").detector == "another-blob"
    finally:
        unregister_detector("another-blob")
    assert not is_allowed_detector("another-blob")


def test_a_detector_offered_by_an_installed_package_entry_point_is_allowed(monkeypatch):
    ep = EntryPoint(name="ep-blob", value="stickypi_assets_tests.ml.uid.helpers:plugged_blob_detector",
                    group=detector_module.DETECTOR_ENTRY_POINT_GROUP)  # fmt: skip
    monkeypatch.setattr(detector_module, "_entry_points", lambda: [ep])
    assert detector_factory("ep-blob") is plugged_blob_detector
    assert detector_factory(ep.value) is plugged_blob_detector  # configs written as module:factory keep working
    assert UidConfig(detector="ep-blob").detector == "ep-blob"


@pytest.mark.parametrize("name", ["maskrcnn", "", "../x", "a b", "os:system()"])
def test_a_detector_name_that_cannot_be_registered(name: str):
    with pytest.raises(ValueError, match="detector name"):
        register_detector(name, plugged_blob_detector)
