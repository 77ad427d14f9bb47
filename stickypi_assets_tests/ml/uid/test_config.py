"""UID config: defaults for every key, YAML round trip, legacy detectron2 files, validation."""

from __future__ import annotations

import pytest
import yaml

from stickypi_assets.ml.uid.config import UidConfig, bundle_config, load_config, save_config

LEGACY = """
_BASE_: "mask_rcnn_R_101_C4_3x.yaml"
MODEL:
  RPN:
    NMS_THRESH: 0.9
  ANCHOR_GENERATOR:
    SIZES: [[8, 16, 32, 64, 128]]
  ROI_HEADS:
    BATCH_SIZE_PER_IMAGE: 256
  PIXEL_MEAN: [200.0, 100.0, 1.0]
DATALOADER:
  NUM_WORKERS: 8
SOLVER:
  IMS_PER_BATCH: 14
  BASE_LR: 0.05
  MAX_ITER: 550000
  GAMMA: 0.8
  STEPS: [10000, 20000, 30000]
TEST:
  DETECTIONS_PER_IMAGE: 500
INPUT:
  CROP:
    ENABLED: true
    SIZE: [1024, 1024]
    TYPE: absolute
CLASSES: [['insect', '#0000ff']]
BASE_MODEL_PREFIX: 'COCO-InstanceSegmentation/'
MIN_MAX_OBJ_SIZE: [20, 600]
"""


def test_defaults_cover_the_keys_the_original_lacked():
    config = UidConfig()
    assert config.original_image_padding == 32 and config.test_period > 0 and config.printing_period > 0
    assert (config.tile_size, config.tile_overlap, config.edge_margin, config.merge_iou) == (1024, 500, 32, 0.33)
    assert config.min_max_obj_size == [20, 600] and config.anchor_sizes == [8, 16, 32, 64, 128]
    assert config.class_names == ["insect"] and config.palette == {"insect": "#0000ff"}


def test_yaml_round_trip_writes_every_key(tmp_path):
    classes = [["b", "#00F"], ["a", "red"]]
    config = UidConfig(backbone="resnet18_fpn", score_threshold=0.5, steps=[10, 20], classes=classes)
    path = save_config(config, tmp_path / "config" / "config.yaml")
    data = yaml.safe_load(path.read_text())
    assert "ORIGINAL_IMAGE_PADDING" in data and "TEST_PERIOD" in data and "PRINTING_PERIOD" in data
    loaded = load_config(path)
    assert loaded == config and loaded.warnings == []
    assert loaded.class_names == ["a", "b"]  # label order = sorted names, like the original palette
    assert loaded.label_for_stroke("#FF0000") == 0 and loaded.label_for_stroke("#0000ff") == 1
    assert loaded.label_for_stroke("#123456") is None
    assert bundle_config(tmp_path) == config


def test_legacy_detectron_config_is_mapped_and_the_rest_reported(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(LEGACY)
    config = load_config(path)
    assert config.rpn_nms_thresh == 0.9 and config.anchor_sizes == [8, 16, 32, 64, 128]
    assert (config.ims_per_batch, config.base_lr, config.gamma, config.steps) == (14, 0.05, 0.8, [10000, 20000, 30000])
    assert config.crop_size == 1024 and config.num_workers == 8 and config.detections_per_image == 500
    assert isinstance(config.base_lr, float)
    joined = " ".join(config.warnings)
    assert "MODEL.PIXEL_MEAN" in joined and "_BASE_" in joined and "INPUT.CROP.ENABLED" in joined


def test_missing_file_gives_defaults_with_a_warning(tmp_path):
    config = load_config(tmp_path / "nope.yaml")
    assert config == UidConfig() and "not found" in config.warnings[0]


@pytest.mark.parametrize(
    "changes",
    [
        {"backbone": "vgg"},
        {"tile_overlap": 1024},
        {"score_threshold": 1.5},
        {"min_max_obj_size": [600, 20]},
        {"anchor_sizes": [8, 16]},
        {"steps": [20, 10]},
        {"pretrained": "coco", "backbone": "resnet18_fpn"},
    ],
)
def test_invalid_values_fail_at_load(changes):
    with pytest.raises(ValueError, match="invalid UID config"):
        UidConfig().replace(**changes)


def test_unknown_keys_warn_or_raise_when_strict():
    assert UidConfig.from_dict({"TYPO_KEY": 1}).warnings == ["unknown key 'TYPO_KEY' ignored"]
    with pytest.raises(ValueError):
        UidConfig.from_dict({"TYPO_KEY": 1}, strict=True)
    with pytest.raises(ValueError, match="integer"):
        UidConfig.from_dict({"TILE_SIZE": 10.5})
