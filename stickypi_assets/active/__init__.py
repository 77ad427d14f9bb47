"""Active learning: which images and tuboids people should annotate next, and when retraining stops paying.

The core of the learning loop, free of Dagster (the assets and the CLI call it):

* :mod:`~stickypi_assets.active.certainty`: maskAL's certainty of an image from MC-dropout detections (semantic ×
  spatial × occurrence per observation), pure numpy;
* :mod:`~stickypi_assets.active.uid_mc`: MC-dropout passes of the UID's torchvision Mask R-CNN, backbone and RPN
  once per tile, only the ROI heads repeated;
* :mod:`~stickypi_assets.active.itc_mc` and :mod:`~stickypi_assets.active.uncertainty`: entropy, margin and BALD of
  the ITC over MC-dropout passes, and the disagreement between a tuboid's own frames;
* :mod:`~stickypi_assets.active.samplers`: one interface (a pool of items with their model outputs → ranked items
  with a score and a reason) over those scores and Roboflow's random, confidence-band, detection-count and class
  samplers;
* :mod:`~stickypi_assets.active.diversity` and :mod:`~stickypi_assets.active.selection`: a batch under a budget from
  a mix of samplers, spread over the embedding space (scikit-activeml's CoreSet) and over time;
* :mod:`~stickypi_assets.active.halting`: contradictions and Cohen's κ between consecutive models, and the
  "stalled" rule.
"""

from __future__ import annotations

from stickypi_assets.settings import DEFAULT_AL_IMAGE_MIX as DEFAULT_IMAGE_MIX
from stickypi_assets.settings import DEFAULT_AL_TUBOID_MIX as DEFAULT_TUBOID_MIX

__all__ = ["DEFAULT_IMAGE_MIX", "DEFAULT_TUBOID_MIX"]
