"""The Dagster layer: partitions, resources, assets, checks, automation conditions, jobs, schedules and sensors.

Thin by design: an asset reads its partition's inputs, calls the core (:mod:`stickypi_assets.pipeline`,
:mod:`stickypi_assets.lifecycle`), writes the outputs and attaches metadata. Imports point downward only:
``automation`` → ``assets`` → ``resources``, ``partitions``, ``conditions`` → the core.
:mod:`stickypi_assets.definitions` gathers it all.
"""

import re
import warnings

#: Dagster features marked beta or preview that the platform relies on on purpose (README "Dagster"): the
#: previous-day and same-day partition mappings of the device × day assets, single-run backfills, and partitioned
#: asset checks. Their warnings say nothing a user of the UI or of ``dagster dev`` can act on, so the code location
#: does not print them; any other beta or preview feature still warns.
RELIED_ON_BETA_FEATURES = (
    "MultiPartitionMapping",
    "allow_nonexistent_upstream_partitions",
    "backfill_policy",
    "partitions_def on an AssetCheckSpec",
)
for _feature in RELIED_ON_BETA_FEATURES:
    warnings.filterwarnings("ignore", message=rf".*{re.escape(_feature)}\W.*is currently in (beta|preview)")
