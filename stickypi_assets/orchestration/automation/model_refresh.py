"""The automation sensor evaluating the model-refresh conditions of :mod:`stickypi_assets.orchestration.conditions`."""

from __future__ import annotations

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

from stickypi_assets.settings import Settings


def model_refresh_sensor() -> AutomationConditionSensorDefinition | None:
    """The automation sensor evaluating those conditions (running by default; ``None`` when turned off)."""
    days = Settings.from_env().auto_refresh_days
    if days == 0:
        return None
    return AutomationConditionSensorDefinition(
        "model_refresh_sensor",
        target=AssetSelection.assets("uid_segmentations", "tuboids", "classifications"),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=f"Re-runs the last {days} days of each stage after its model changed.",
    )
