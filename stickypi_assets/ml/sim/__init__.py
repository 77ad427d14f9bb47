"""Siamese Insect Matcher (SIM): pairs of insect instances → match scores → tuboids (reference section 4).

Modules: :mod:`.config` (bundle config), :mod:`.features` (frames, crops and scalars of instance pairs, and
the :class:`~stickypi_assets.ml.sim.features.Matcher` protocol), :mod:`.model` (the network, its matcher),
:mod:`.dataset` (training pairs from SiamSVGs), :mod:`.train` (three-stage training, validation, ROC AUC),
:mod:`.tracking` (three-pass tracker with day-to-day :class:`~stickypi_assets.ml.sim.tracking.TrackState`),
:mod:`.candidates` (pre-grouped pairs for annotators), :mod:`.outputs` (tuboid folders and videos) and
:mod:`.predict` (a bundle's matcher on a device-day or a folder). ``features``, ``tracking``, ``dataset``,
``candidates`` and ``outputs`` do not import torch; ``model``, ``train`` and ``predict`` do.
"""
