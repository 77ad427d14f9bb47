"""Which partitions re-run by themselves when a model changes: the recent days, automatically; the rest by backfill.

When the *current* version of a model changes (the model asset's data version; a retrain that was not
promoted changes nothing), every stage that uses that model's outputs becomes stale. Re-running a season on
every retrain would be wasteful, so each device-day asset carries an automation condition that requests its
partitions of the last ``STICKYPI_AUTO_REFRESH_DAYS`` days (default 7; 0 turns it off) once per change of its
model, and whenever the same partition of the stage before it is requested: a new UID re-runs
segmentations, tuboids and classifications; a new SIM tuboids and classifications; a new ITC
classifications. All stages of a partition are requested in the same evaluation, so they run together in
dependency order; with the single-run backfill policy, consecutive days of a device share one run, which
keeps the tracking state's day order. Older partitions stay marked stale in the UI and are re-run by a
backfill when wanted. Only partitions that were materialized before re-run: a day that was never processed (a new
device's history, days with no images yet) is left to the schedule or a backfill, since its upstream may not
exist. :func:`stickypi_assets.orchestration.automation.model_refresh.model_refresh_sensor` evaluates the
conditions in the daemon (running by default).
"""

from __future__ import annotations

from datetime import timedelta

from dagster import AssetKey, AssetSelection, AutomationCondition

from stickypi_assets.settings import Settings


def refresh_on_model_change(
    model: str, upstream: str | None = None, *, days: int | None = None
) -> AutomationCondition | None:
    """Request the already materialized partitions of the last ``days`` days once after ``model`` changed current
    version, and with the same partitions of the ``upstream`` stage asset when those are requested (a new UID
    re-runs tracking and classification too)."""
    days = Settings.from_env().auto_refresh_days if days is None else days
    if days == 0:
        return None
    changed = AutomationCondition.any_deps_match(AutomationCondition.data_version_changed()).allow(
        AssetSelection.assets(AssetKey(model))
    )
    recent = AutomationCondition.in_latest_time_window(timedelta(days=days)) & ~AutomationCondition.missing()
    # A `since` remembers its partitions in the sensor's cursor and evaluates its children over every partition
    # since STICKYPI_START_DATE. So the trigger is narrowed to the recent, materialized partitions *inside* it
    # (which are then requested at once, and reset), and the reset leaves out `initial_evaluation`, which
    # `since_last_handled` adds and which is true for the whole history on a first tick. Otherwise the cursor holds
    # every older partition (a model change marks them all, and they are never requested), and every tick
    # serializes it: seconds per tick, growing with the history.
    handled = AutomationCondition.newly_requested() | AutomationCondition.newly_updated()
    trigger = (recent & changed).since(handled)
    if upstream is not None:
        trigger = trigger | AutomationCondition.any_deps_match(AutomationCondition.will_be_requested()).allow(
            AssetSelection.assets(AssetKey(upstream))
        )
    after = f"{model} or {upstream} re-runs" if upstream else model
    label = f"re-run the last {days} days after a change of {after}"
    return (recent & trigger & ~AutomationCondition.in_progress()).with_label(label)
