"""stickypi-assets: a Dagster data-asset platform for Sticky Pi insect monitoring.

The package is layered (imports point downward only; the README's "Layout" names every module):

* ``formats``  – Sticky Pi interchange formats (image names, SVG annotations, tuboid folders,
  annotation databases, labels); no Dagster, no torch.
* ``storage``  – object store (local folder | S3), the object-key and table layouts, the DuckDB warehouse;
  no Dagster.
* ``ml``, ``synth``, ``active`` – the three stages (UID, SIM, ITC) and their stage table, synthetic
  deployments with ground truth, active learning; no Dagster.
* ``pipeline``, ``lifecycle`` – what each device-day asset computes, and the model registry and training;
  no Dagster.
* ``orchestration``, ``definitions`` – the thin Dagster layer and the code location.
* ``cli``, ``demo`` – the ``stickypi`` command and the demo, on the same core.
"""

__version__ = "0.1.0"
