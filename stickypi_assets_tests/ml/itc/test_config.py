"""ITC config: reference defaults, original keys, YAML round trip, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stickypi_assets.formats.labels import REFERENCE_DEFAULT_LABELS, REFERENCE_TEST_LABELS
from stickypi_assets.ml.itc.config import ItcConfig, bundle_config, load_config, save_config


def test_defaults_are_the_reference_defaults():
    config = ItcConfig()
    assert config.n_classes == 18
    assert config.labels == [list(e) for e in REFERENCE_DEFAULT_LABELS]
    assert config.label_map.taxonomy_for(4)["species"] == "Drosophila suzukii"
    assert (config.backbone, config.n_shots, config.input_size, config.pooling) == ("resnet50", 6, 224, "median")
    assert (config.ims_per_batch, config.base_lr, config.lr_momentum, config.gamma) == (8, 0.002, 0.9, 0.9999)
    assert (config.n_rounds, config.checkpoint_period) == (50000, 50)
    assert config.pretrained is False  # never downloads unless asked
    assert config.annotation_rule == "latest"


def test_original_config_file_loads(tmp_path: Path):
    """The original test bundle's keys (reference 5.4) load without warnings."""
    path = tmp_path / "config.yaml"
    original = {
        "LABELS": [list(e) for e in REFERENCE_TEST_LABELS],
        "IMS_PER_BATCH": 8,
        "N_WORKERS": 8,
        "BASE_LR": 0.002,
        "LR_MOMENTUM": 0.90,
        "N_ROUNDS": 2,
        "GAMMA": 0.999,
        "CHECKPOINT_PERIOD": 8,
    }
    path.write_text(yaml.safe_dump(original))
    config = load_config(path)
    assert config.warnings == []
    assert config.n_classes == 15 and config.label_map.taxonomy_for(4)["species"] == "Drosophila suzukii"
    assert (config.n_rounds, config.checkpoint_period, config.n_workers, config.gamma) == (2, 8, 8, 0.999)


def test_round_trip_and_bundle_config(tmp_path: Path):
    config = ItcConfig(backbone="resnet18", input_size=64, n_shots=4, class_balance="loss", pooling="mean")
    save_config(config, tmp_path / "config" / "config.yaml")
    assert bundle_config(tmp_path) == config
    assert load_config(tmp_path / "missing.yaml").warnings  # defaults + a warning
    assert config.replace(n_rounds=3).n_rounds == 3


def test_unknown_keys_and_invalid_values():
    assert ItcConfig.from_dict({"NOPE": 1}).warnings == ["unknown key 'NOPE' ignored"]
    with pytest.raises(ValueError, match="unknown key"):
        ItcConfig.from_dict({"NOPE": 1}, strict=True)
    with pytest.raises(ValueError, match="BACKBONE"):
        ItcConfig(backbone="vgg16")
    with pytest.raises(ValueError, match="LABELS"):
        ItcConfig(labels=[["^A.*", 0], ["^B.*", 0]])
    with pytest.raises(ValueError, match="POOLING"):
        ItcConfig(pooling="max")
    with pytest.raises(ValueError, match="INPUT_SIZE"):
        ItcConfig(input_size=16)
