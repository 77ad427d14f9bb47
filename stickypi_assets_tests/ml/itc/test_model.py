"""The ITC network: shapes, true median pooling, the size input, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.itc.model import ItcNet, load_checkpoint, pool_shots, save_checkpoint
from stickypi_assets_tests.ml.itc.helpers import TINY


def test_true_median_and_mean_pooling():
    x = torch.tensor([[[1.0, 10.0], [4.0, 40.0], [2.0, 20.0], [100.0, -5.0]]])  # (N=1, S=4, D=2)
    assert pool_shots(x, "median").tolist() == [[3.0, 15.0]]  # mean of the two middle values, per feature
    assert pool_shots(x[:, :3], "median").tolist() == [[2.0, 20.0]]
    assert pool_shots(x, "mean").tolist() == [[26.75, 16.25]]
    with pytest.raises(ValueError):
        pool_shots(x, "max")


def test_median_ignores_an_outlier_shot_and_passes_gradients_to_two_shots():
    x = torch.tensor([[[1.0], [2.0], [3.0], [4.0], [5.0], [1000.0]]], requires_grad=True)
    out = pool_shots(x, "median")
    assert out.item() == 3.5
    out.sum().backward()
    assert x.grad.flatten().tolist() == [0, 0, 0.5, 0.5, 0, 0]


def test_forward_shapes_and_size_input():
    torch.manual_seed(0)
    net = ItcNet(n_classes=3, backbone="resnet18").eval()
    assert net.feature_dim == 512 and net.head.in_features == 513
    shots = torch.randn(2, 3, 3, 32, 32)
    sizes = torch.zeros(2, 3)
    with torch.no_grad():
        logits = net(shots, sizes)
        assert logits.shape == (2, 3)
        # the size is an input: another size changes the logits by head weight x difference
        moved = net(shots, sizes + 1.0)
    assert torch.allclose(moved - logits, net.head.weight[:, -1].expand(2, 3), atol=1e-5)
    with pytest.raises(ValueError):
        net(shots, torch.zeros(2, 4))


def test_checkpoint_round_trip(tmp_path: Path):
    torch.manual_seed(0)
    config = TINY.replace(pooling="mean")
    net = ItcNet.from_config(config).eval()
    path = save_checkpoint(net, tmp_path / "output" / "model_final.pth", config, progress={"round": 7})
    loaded, loaded_config, checkpoint = load_checkpoint(path)
    assert loaded_config == config and checkpoint["progress"] == {"round": 7}
    assert checkpoint["labels"] == config.label_map.to_config()
    assert not loaded.training and loaded.pooling == "mean" and loaded.n_classes == 3
    shots, sizes = torch.randn(1, 3, 3, 32, 32), torch.randn(1, 3)
    with torch.no_grad():
        assert torch.equal(net(shots, sizes), loaded(shots, sizes))
    torch.save({"model": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not an ITC checkpoint"):
        load_checkpoint(tmp_path / "other.pth")


def test_resnet50_is_the_default_backbone():
    net = ItcNet.from_config(ItcConfig())
    assert net.feature_dim == 2048 and net.head.out_features == 18
