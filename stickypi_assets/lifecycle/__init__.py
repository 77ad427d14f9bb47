"""Model lifecycle, without Dagster: the registry of versions, training from annotations, promotion.

Everything here is driven by the stage table (:mod:`stickypi_assets.ml.stages`): a stage's bundle name, metric,
annotation prefix, trainer and validator are read from there, never spelled out per stage.
"""
