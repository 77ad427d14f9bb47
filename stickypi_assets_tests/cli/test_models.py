"""``stickypi models``: list versions, promote one by hand (registry, table models and the Dagster instance)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from stickypi_assets.cli import main
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets_tests.lifecycle.test_registry import itc_bundle


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("STICKYPI_DATA_ROOT", str(tmp_path / "data"))
    for name in ("STICKYPI_STORE_URL", "STICKYPI_WAREHOUSE_PATH", "STICKYPI_PUBLISHED_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    return tmp_path


def test_list_and_promote_a_version_by_hand(env: Path, capsys):
    registry = StickyPiStorage().registry()
    first, _ = registry.register("itc", itc_bundle(env / "b1", seed=1), {"macro_recall": 0.8}, [])
    second, promoted = registry.register("itc", itc_bundle(env / "b2", seed=2), {"macro_recall": 0.6}, [])
    assert not promoted and registry.current_version("itc") == first.version

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert first.version[:8] in out and second.version[:8] in out and "kept as a candidate" in out

    assert main(["models", "promote", "itc", second.version[:8]]) == 0  # force the candidate
    out = capsys.readouterr().out
    assert f"-> {second.version}" in out and "downstream partitions are now stale" in out
    assert registry.current_version("itc") == second.version
    models = StickyPiStorage().warehouse().query("SELECT version, is_current FROM models", published=True)
    assert models.set_index("version").is_current.to_dict() == {first.version: False, second.version: True}
    with DagsterInstance.get() as instance:  # the same DAGSTER_HOME: the model asset's data version changed
        event = instance.get_latest_materialization_event(AssetKey("itc_model"))
        assert event.asset_materialization.tags["dagster/data_version"] == second.version

    assert main(["models", "promote", "itc", second.version]) == 0
    assert "already current" in capsys.readouterr().out
    assert main(["models", "promote", "itc", "abc"]) == 2  # too short to be unambiguous
    assert main(["models", "promote", "itc", "ffffffff"]) == 2
    assert "no itc version starts with 'ffffffff'" in capsys.readouterr().err
