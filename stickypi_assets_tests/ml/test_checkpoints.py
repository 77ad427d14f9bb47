"""Weights files are read weights-only: a pickled payload in ``model_final.pth`` is refused and never runs.

Each hostile file holds a :class:`Payload` whose ``__reduce__`` would write a marker file when unpickled (the
control test shows it does under ``weights_only=False``, what the loaders used to do); every loader (UID, SIM,
ITC, ITC training resume) must refuse the file with an error naming it and leave no marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH, weights_version
from stickypi_assets.ml.checkpoints import (
    CheckpointVersionError,
    InvalidVersion,
    UnsafeCheckpointError,
    check_version,
    load_weights_file,
)
from stickypi_assets.ml.itc.model import CHECKPOINT_FORMAT as ITC_FORMAT
from stickypi_assets.ml.itc.model import ItcNet, load_checkpoint, save_checkpoint
from stickypi_assets.ml.itc.predict import load_classifier
from stickypi_assets.ml.itc.train import train
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.config import save_config as save_sim_config
from stickypi_assets.ml.sim.model import CHECKPOINT_FORMAT as SIM_FORMAT
from stickypi_assets.ml.sim.model import SiameseNet
from stickypi_assets.ml.sim.model import save_checkpoint as save_sim_checkpoint
from stickypi_assets.ml.sim.predict import load_matcher
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.config import save_config as save_uid_config
from stickypi_assets.ml.uid.model import CHECKPOINT_FORMAT as UID_FORMAT
from stickypi_assets.ml.uid.predict import load_detector
from stickypi_assets_tests.ml.itc.helpers import TINY, make_bundle
from stickypi_assets_tests.ml.sim.helpers import TINY_NET

REFUSED = "refused: not a plain weights file"
SMALL_UID = UidConfig(backbone="resnet18_fpn", fpn_channels=32, box_head_dim=64, mask_head_channels=32)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


def _leave_marker(path: str) -> str:
    Path(path).write_text("the payload ran", encoding="utf-8")
    return "pwned"


class Payload:
    """What an attacker pickles: unpickling calls ``_leave_marker(marker)`` (any callable would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_leave_marker, (self.marker,))


def hostile_weights(path: Path, marker: Path, fmt: str, **fields) -> Path:
    """A ``model_final.pth`` that looks like one of ours (right ``format``) but carries a payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": fmt, "model": {"payload": Payload(marker)}, **fields}, path)
    return path


def test_the_payload_runs_when_unpickled_unsafely(tmp_path: Path):
    """Control: the hostile file is real, so the tests below are meaningful (the old loaders ran it)."""
    marker = tmp_path / "marker"
    path = hostile_weights(tmp_path / "w.pth", marker, ITC_FORMAT)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_pickle_payload_in_model_final_pth_is_refused_by_the_safe_loader(tmp_path: Path):
    marker = tmp_path / "marker"
    path = hostile_weights(tmp_path / "w.pth", marker, ITC_FORMAT)
    with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
        load_weights_file(path)
    assert str(path) in str(info.value) and "weights_only=False" not in str(info.value)  # no advice to bypass
    assert not marker.exists()


def test_pickle_payload_in_uid_model_final_pth(tmp_path: Path):
    marker = tmp_path / "marker"
    bundle = tmp_path / "uid"
    save_uid_config(SMALL_UID, bundle / CONFIG_RELPATH)
    weights = hostile_weights(bundle / WEIGHTS_RELPATH, marker, UID_FORMAT, config=SMALL_UID.to_dict())
    with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
        load_detector(bundle)  # what the UID resource and the CLI call
    assert str(weights) in str(info.value)
    assert not marker.exists()


def test_pickle_payload_in_sim_model_final_pth(tmp_path: Path):
    marker = tmp_path / "marker"
    bundle = tmp_path / "sim"
    config = SimConfig(**TINY_NET)
    save_sim_config(config, bundle / CONFIG_RELPATH)
    weights = hostile_weights(bundle / WEIGHTS_RELPATH, marker, SIM_FORMAT, config=config.to_dict())
    with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
        load_matcher(bundle)
    assert str(weights) in str(info.value)
    assert not marker.exists()


def test_pickle_payload_in_itc_model_final_pth(tmp_path: Path):
    marker = tmp_path / "marker"
    bundle = tmp_path / "itc"
    weights = hostile_weights(bundle / WEIGHTS_RELPATH, marker, ITC_FORMAT, config=TINY.to_dict())
    with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
        load_classifier(bundle)
    assert str(weights) in str(info.value)
    assert not marker.exists()


def test_pickle_payload_in_itc_model_final_pth_when_training_resumes(tmp_path: Path):
    marker = tmp_path / "marker"
    bundle = make_bundle(tmp_path / "itc")
    weights = hostile_weights(bundle / WEIGHTS_RELPATH, marker, ITC_FORMAT, config=TINY.to_dict(),
                              progress={"round": 1})  # fmt: skip
    with pytest.raises(UnsafeCheckpointError, match=REFUSED) as info:
        train(bundle, progress=False)  # default: resume from output/model_final.pth
    assert str(weights) in str(info.value)
    assert not marker.exists()


def test_weights_whose_md5_is_not_the_expected_version_are_not_unpickled(tmp_path: Path):
    marker = tmp_path / "marker"
    path = hostile_weights(tmp_path / "w.pth", marker, ITC_FORMAT)
    with pytest.raises(CheckpointVersionError, match="is not its version"):
        load_weights_file(path, expected_version="0" * 32)
    with pytest.raises(CheckpointVersionError):
        load_checkpoint(path, expected_version="0" * 32)  # the model loaders take it too
    with pytest.raises(InvalidVersion):
        load_weights_file(path, expected_version="../../w")
    assert not marker.exists()
    good = save_checkpoint(ItcNet.from_config(TINY), tmp_path / "good.pth", TINY)
    assert load_weights_file(good, expected_version=weights_version(good))["format"] == ITC_FORMAT


def test_our_own_checkpoints_with_optimiser_state_load_weights_only(tmp_path: Path):
    """What the trainers write (state dicts, configs, progress, optimiser state) passes the weights-only check."""
    net = ItcNet.from_config(TINY)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.zeros(2, TINY.n_shots, 3, TINY.input_size, TINY.input_size), torch.ones(2, TINY.n_shots)).sum().backward()
    optimizer.step()
    path = save_checkpoint(net, tmp_path / "itc.pth", TINY, progress={"round": 3}, optimizer=optimizer.state_dict())
    loaded, config, checkpoint = load_checkpoint(path)
    assert config == TINY and checkpoint["progress"] == {"round": 3} and checkpoint["optimizer"]["state"]
    sim_config = SimConfig(**TINY_NET)
    sim = save_sim_checkpoint(SiameseNet.from_config(sim_config), tmp_path / "sim.pth", sim_config,
                              progress={"stage": "siamese", "round": 2}, optimizer=None)  # fmt: skip
    assert load_weights_file(sim)["progress"] == {"stage": "siamese", "round": 2}


def test_a_checkpoint_in_the_legacy_torch_format_still_loads(tmp_path: Path):
    """A user's older file (pre-zip serialisation, or a bare state dict) loads if it holds only plain types."""
    net = ItcNet.from_config(TINY)
    payload = {"format": ITC_FORMAT, "model": net.state_dict(), "config": TINY.to_dict(),
               "labels": TINY.label_map.to_config(), "progress": {"round": 2}}  # fmt: skip
    torch.save(payload, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    loaded, _, checkpoint = load_checkpoint(tmp_path / "legacy.pth")
    assert checkpoint["progress"] == {"round": 2}
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), net.state_dict().values(), strict=True))


@pytest.mark.parametrize("bad", ["../../evil", "/etc", "A" * 32, "0" * 31, "g" * 32, "", None, 7, "0" * 32 + "\n"])
def test_a_version_that_is_not_an_md5_id(bad):
    with pytest.raises(InvalidVersion, match="not a model version"):
        check_version(bad, "somewhere")
    assert check_version("0123456789abcdef" * 2) == "0123456789abcdef" * 2
