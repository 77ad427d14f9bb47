"""One torch thread per test module here (the cores are shared), restored afterwards for other folders."""

from __future__ import annotations

import pytest

from stickypi_assets_tests.ml.itc.helpers import trained_bundle  # noqa: F401 (fixture)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield
