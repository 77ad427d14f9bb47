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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Every ``slow`` test in one xdist group, so that ``make test`` (2 workers, ``--dist loadgroup``) runs them one
    after the other on one worker while the other runs the fast tests.

    Why not spread them: each trains a model with 2 torch threads, and two of them side by side on 2 cores made both
    several times slower (the UID learning test went from 512 s alone to over 1800 s). A serial run is unaffected.
    """
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("slow"))


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
