"""One torch thread per test module here (the cores are shared), restored afterwards for other folders."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory):
    """A tiny bundle trained for 4 rounds (shared, read-only: copy it before training it further)."""
    from stickypi_assets.ml.itc.train import train
    from stickypi_assets_tests.ml.itc.helpers import make_bundle

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bundle = make_bundle(tmp_path_factory.mktemp("itc") / "bundle")
        train(bundle, progress=False)
    finally:
        torch.set_num_threads(previous)
    return bundle
