"""Sticky Pi interchange formats. No Dagster and no torch imports here (see DESIGN.md)."""

from stickypi_assets.formats.errors import FormatError

__all__ = ["FormatError"]
