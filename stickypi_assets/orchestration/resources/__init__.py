"""Dagster resources: the platform's storage and each stage's current model."""

from stickypi_assets.orchestration.resources.models import ModelResource
from stickypi_assets.orchestration.resources.storage import StickyPiStorage

__all__ = ["ModelResource", "StickyPiStorage"]
