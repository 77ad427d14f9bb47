"""Run a job of the code location in this process, recorded as a run *of the code location*.

Why not ``JobDefinition.execute_in_process``: its runs have no code-location origin, so Dagster's UI leaves them off
the job's page, the overview timeline and the partition pages (they show only in the global run list; see
dagster-io/dagster#17707). The demo runs its jobs here instead: the run is created with the origin the webserver and
the daemon give the runs they launch (location ``stickypi_assets`` of ``workspace.yaml``, repository
``__repository__``) and the repository label tag, then executed in this process with the in-process executor, like
``execute_in_process``. Nothing else differs: same definitions, resources and instance.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, DagsterInstance, Definitions, MultiPartitionKey
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.execution.execution_result import ExecutionResult
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from stickypi_assets.orchestration.automation.jobs import CODE_LOCATION, REPOSITORY_LABEL

DEFINITIONS_MODULE = "stickypi_assets.definitions"
REPOSITORY_NAME = "__repository__"  # what Dagster names the repository of a `Definitions` object
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def _origin(job_name: str) -> RemoteJobOrigin:
    target = LoadableTargetOrigin(
        executable_path=sys.executable, module_name=DEFINITIONS_MODULE, working_directory=os.getcwd()
    )
    location = ManagedGrpcPythonEnvCodeLocationOrigin(target, CODE_LOCATION)
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, REPOSITORY_NAME), job_name)


def run_job(
    defs: Definitions,
    job_name: str,
    instance: DagsterInstance,
    *,
    partition_key: MultiPartitionKey | str | None = None,
    asset_selection: list[AssetKey] | None = None,
    run_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    raise_on_error: bool = True,
) -> ExecutionResult:
    """Create and execute one run of ``job_name`` of ``defs`` (the code location's definitions, module
    :data:`DEFINITIONS_MODULE`), optionally for one partition and some of its assets. A step that fails raises, as in
    ``execute_in_process``, after the run is recorded as failed."""
    job_def = defs.resolve_job_def(job_name)
    recon_job = ReconstructableRepository.for_module(DEFINITIONS_MODULE, "defs", os.getcwd()).get_reconstructable_job(
        job_name
    )
    selection = frozenset(asset_selection) if asset_selection else None
    if selection:
        job_def = job_def.get_subset(asset_selection=selection)
        recon_job = recon_job.get_subset(asset_selection=selection)
    run_tags = {**job_def.run_tags, **REPOSITORY_LABEL, **(tags or {})}
    if partition_key is not None:
        run_tags.update(job_def.partitions_def.get_tags_for_partition_key(str(partition_key)))
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config={**(run_config or {}), **IN_PROCESS},
        tags=run_tags,
        asset_selection=selection,
        remote_job_origin=_origin(job_name),
        job_code_origin=recon_job.get_python_origin(),
    )
    return execute_run(recon_job, run, instance, raise_on_error=raise_on_error)
