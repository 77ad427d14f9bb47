"""SIM config: reference defaults, original files load, YAML round trip."""

from __future__ import annotations

import pytest

from stickypi_assets.ml.bundles import CONFIG_RELPATH
from stickypi_assets.ml.sim.config import SimConfig, bundle_config, load_config, save_config


def test_reference_defaults():
    c = SimConfig()
    assert (c.ims_per_batch, c.checkpoint_period, c.gamma) == (32, 100, 0.999)
    assert (c.siam_rounds, c.siam_base_lr) == (300, 2e-5)
    assert (c.dist_ar_rounds, c.dist_ar_base_lr) == (300, 0.05)
    assert (c.final_rounds, c.final_base_lr) == (500, 2e-5)
    assert c.max_delta_t_to_match == 43200
    assert (c.match_threshold, c.stitch_threshold, c.conjoint_threshold, c.min_tuboid_frames) == (0.5, 0.5, 0.25, 4)
    assert c.crop_size == 105 and c.channels == [64, 128, 128, 256] and c.embedding_size == 1024
    assert c.gating_radius_px > 0


def test_original_test_bundle_file_loads(tmp_path):
    # the keys of the original test bundle's config.yaml (reference 4.5 table)
    path = tmp_path / "config.yaml"
    path.write_text(
        "IMS_PER_BATCH: 32\nCHECKPOINT_PERIOD: 100\nSIAM_ROUNDS: 3\nSIAM_BASE_LR: 2.0e-05\nDIST_AR_ROUNDS: 3\n"
        "DIST_AR_BASE_LR: 0.01\nFINAL_ROUNDS: 2\nFINAL_BASE_LR: 2.0e-05\nGAMMA: 0.999\nLR_MOMENTUM: 0.90\n"
        "N_WORKERS: 16\nMAX_DELTA_T_TO_MATCH: 43200\n"
    )
    c = load_config(path)
    assert c.warnings == []
    assert (c.siam_rounds, c.dist_ar_base_lr, c.final_rounds, c.n_workers) == (3, 0.01, 2, 16)
    assert isinstance(c.max_delta_t_to_match, float)


def test_round_trip_and_unknown_keys(tmp_path):
    c = SimConfig().replace(gating_radius_px=120, channels=[8, 16, 16, 32])
    save_config(c, tmp_path / CONFIG_RELPATH)
    assert bundle_config(tmp_path) == c
    assert SimConfig.from_dict({"TYPO_KEY": 1}).warnings == ["unknown key 'TYPO_KEY' ignored"]
    with pytest.raises(ValueError):
        SimConfig.from_dict({"TYPO_KEY": 1}, strict=True)
    with pytest.raises(ValueError, match="MATCH_THRESHOLD"):
        SimConfig(match_threshold=1.5)
    assert bundle_config(tmp_path / "missing").warnings  # defaults, with a warning
