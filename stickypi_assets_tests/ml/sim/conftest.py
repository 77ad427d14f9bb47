"""One torch thread per test module here (the cores are shared), restored afterwards for other folders."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield
