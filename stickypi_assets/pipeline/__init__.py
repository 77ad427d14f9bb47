"""One module per device-day asset, named after it: the work of one partition, without Dagster.

``raw_images`` indexes a device-day's JPEGs, ``uid_segmentations`` runs the UID on them, ``tuboids`` tracks the
instances (continuing the previous day), ``classifications`` runs the ITC on the tuboids. Each takes an object
store, the partition's input rows and a loaded model, and returns the partition's rows (the Dagster assets in
:mod:`stickypi_assets.orchestration.assets` write them); notebooks and the CLI call them directly.
"""
