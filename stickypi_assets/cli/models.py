"""``stickypi models``: list the registry's model versions and choose the current one by hand.

``promote`` is the manual override of the registry's rule (roll back to an earlier version, or force a candidate
that was kept back): it rewrites ``ml/<bundle>/CURRENT.json`` and table ``models``, and, when ``DAGSTER_HOME`` is
set, records the change in the Dagster instance as a materialization of ``<stage>_model`` whose data version is
the new current version, exactly as a retrain would. The downstream partitions then show as stale in the UI and
the recent ones re-run by the model-refresh automation, so a rollback reaches the tables like any model change.
"""

from __future__ import annotations

import argparse
import os

from stickypi_assets.cli.common import UsageError, add_command_group, registry, warehouse
from stickypi_assets.ml.stages import STAGES


def _resolve(versions: list[str], wanted: str, stage: str) -> str:
    """A full version from a unique prefix (at least 6 hex digits, as the listing prints 8)."""
    matches = [v for v in versions if v.startswith(wanted.lower())]
    if len(wanted) < 6 or not matches:
        raise UsageError(f"no {stage} version starts with {wanted!r}; `stickypi models list` shows them")
    if len(matches) > 1:
        raise UsageError(f"{wanted!r} is the start of {len(matches)} {stage} versions; give more digits")
    return matches[0]


def _record_in_dagster(stage: str, version: str) -> str:
    """Report the change to the Dagster instance (if any) so downstream partitions become stale."""
    if not os.environ.get("DAGSTER_HOME"):
        return ("DAGSTER_HOME is not set: the Dagster instance was not told; materialize "
                f"{stage}_model or set DAGSTER_HOME and promote again to mark downstream partitions stale")  # fmt: skip
    from dagster import AssetMaterialization, DagsterInstance
    from dagster._core.definitions.data_version import DATA_VERSION_TAG

    instance = DagsterInstance.get()
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=f"{stage}_model",
            description=f"current {stage} model set by hand to {version} (stickypi models promote)",
            metadata={"current_version": version, "promoted_by": "stickypi models promote"},
            tags={DATA_VERSION_TAG: version},
        )
    )
    return f"recorded in the Dagster instance at {os.environ['DAGSTER_HOME']}: downstream partitions are now stale"


def _cmd_list(args: argparse.Namespace) -> int:
    rows = registry().table_rows()
    if args.stage:
        rows = rows[rows.stage == args.stage] if len(rows) else rows
    if not len(rows):
        print("no registered model versions" + (f" for {args.stage}" if args.stage else ""))
        return 0
    print(f"{'stage':<5}  {'version':<8}  {'created (UTC)':<19}  {'metric':<12}  {'files':>5}  current  decision")
    for r in rows.sort_values(["stage", "created_at"]).itertuples():
        metric = "n/a" if r.metric_value is None or r.metric_value != r.metric_value else f"{r.metric_value:.3f}"
        print(f"{r.stage:<5}  {r.version[:8]}  {r.created_at:%Y-%m-%d %H:%M:%S}  {r.metric_name + ' ' + metric:<12}  "
              f"{r.n_training_files:>5}  {'  *' if r.is_current else '   '}      {r.decision}")  # fmt: skip
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from stickypi_assets.storage.tables import MODELS

    reg = registry()
    version = _resolve([r.version for r in reg.versions(args.stage)], args.version, args.stage)
    before = reg.current_version(args.stage)
    if before == version:
        print(f"{args.stage} {version} is already current")
        return 0
    reg.fetch(args.stage, version)  # its weights are there and match their md5 before anything changes
    reg.promote(args.stage, version)
    warehouse().replace_table(MODELS.name, reg.table_rows())
    print(f"{args.stage}: current version {before or 'none'} -> {version}; table models updated")
    print(_record_in_dagster(args.stage, version))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``models`` (``list``, ``promote``) on the main CLI's sub-parsers."""
    models, sub = add_command_group(subparsers, "models", "model registry: list versions, set the current one by hand")
    lst = sub.add_parser("list", help="every registered version, its validation metric and which is current")
    lst.add_argument("--stage", choices=list(STAGES), help="only this stage")
    lst.set_defaults(func=_cmd_list)
    pro = sub.add_parser("promote", help="make a registered version current (rollback, or force a candidate)")
    pro.add_argument("stage", choices=list(STAGES), help=f"the model's stage ({', '.join(STAGES)})")
    pro.add_argument("version", help="the version (md5 of the weights) or a unique prefix of at least 6 digits")
    pro.set_defaults(func=_cmd_promote)
    return models
