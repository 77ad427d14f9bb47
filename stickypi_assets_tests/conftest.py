"""Shared fixtures. Real Sticky Pi data lives beside the repo in ``../shared/data/stickypi``."""

from __future__ import annotations

from pathlib import Path

import pytest

# S3-compatible server fixtures (moto on 127.0.0.1), available to every test folder.
from stickypi_assets_tests.storage.s3_server import s3_endpoint, s3_server  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]
STICKYPI_DATA = REPO_ROOT.parent / "shared" / "data" / "stickypi"


def stickypi_path(*parts: str) -> Path:
    """Path under the real data folder; the calling test is skipped (with the reason) if it is absent."""
    path = STICKYPI_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real Sticky Pi data not found at {path} (expected ../shared/data/stickypi beside the repo)")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (the cores are shared), restored afterwards for other modules.

    A folder or module opts in with an autouse fixture that requests this one.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def stickypi_data() -> Path:
    return stickypi_path()


@pytest.fixture(scope="session")
def uid_svg_paths() -> list[Path]:
    return sorted(stickypi_path("uid").glob("*.svg"))
