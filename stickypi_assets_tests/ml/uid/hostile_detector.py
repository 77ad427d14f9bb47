"""A module a hostile bundle config names as its ``DETECTOR``: importing it, or calling its factory, leaves a marker.

The marker file is ``$STICKYPI_TEST_MARKER`` (nothing is written without it), so a test can assert that a config
naming this module made the process neither import it nor call anything in it.
"""

from __future__ import annotations

import os
from pathlib import Path


def _mark(what: str) -> None:
    path = os.environ.get("STICKYPI_TEST_MARKER")
    if path:
        with open(Path(path), "a", encoding="utf-8") as fh:
            fh.write(what + "\n")


_mark("imported")


def factory(config, device):
    _mark("called")
    raise RuntimeError("a hostile factory ran")
