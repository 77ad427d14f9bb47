"""The Dagster layer: partitions, resources, assets, checks, automation conditions, jobs, schedules and sensors.

Thin by design: an asset reads its partition's inputs, calls the core (:mod:`stickypi_assets.pipeline`,
:mod:`stickypi_assets.lifecycle`), writes the outputs and attaches metadata. Imports point downward only:
``automation`` → ``assets`` → ``resources``, ``partitions``, ``conditions`` → the core.
:mod:`stickypi_assets.definitions` gathers it all.
"""
