"""stickypi-assets: a Dagster data-asset platform for Sticky Pi insect monitoring.

The package is layered (imports point downward only):

* ``formats``  – Sticky Pi interchange formats (image names, SVG annotations, tuboid folders,
  annotation databases); no Dagster, no torch.
* ``storage``  – object store (local folder | S3) and the DuckDB warehouse; no Dagster.
* ``ingest``   – pure functions that index a device-day of raw images.
* ``assets``, ``resources``, ``automation``, ``definitions`` – the thin Dagster layer.
* ``cli``      – the ``stickypi`` command, on the same core.
"""

__version__ = "0.1.0"
