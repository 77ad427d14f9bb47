"""Universal Insect Detector (UID): instance segmentation of insects on sticky-card images (reference 3).

Modules: :mod:`.config` (bundle config with a default for every key, YAML, legacy detectron2 files),
:mod:`.detector` (the :class:`~stickypi_assets.ml.uid.detector.Detector` protocol and
:class:`~stickypi_assets.ml.uid.detector.TileDetections`), :mod:`.model` (torchvision Mask R-CNN,
configurable backbone, native scale), :mod:`.tiling` (overlapping tiles covering every pixel),
:mod:`.postprocess` (filters, mask → polygon, order-independent best-score merge), :mod:`.predict`
(image → instances, folder of JPEGs → SVGs), :mod:`.dataset` (bundle SVGs → md5 split → augmented
native-scale crops), :mod:`.train` (training loop, checkpoints, resume, metrics log) and :mod:`.validate`
(one-to-one matching, ``results.json``, precision/recall, COCO mask AP).

``config``, ``detector``, ``tiling``, ``postprocess``, ``predict`` (until a model is loaded) and
``validate`` do not import torch; ``model``, ``dataset`` and ``train`` do.
"""
