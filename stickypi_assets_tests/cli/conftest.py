"""Fixtures of the stages' test folders that the command tests reuse."""

from stickypi_assets_tests.ml.itc.helpers import trained_bundle  # noqa: F401 (fixture)
