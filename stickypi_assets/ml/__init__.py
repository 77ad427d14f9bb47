"""Machine-learning core (models, datasets, training, prediction, evaluation); no Dagster imports.

One sub-package per Sticky Pi model: ``uid`` (Universal Insect Detector), ``sim`` (Siamese Insect Matcher),
``itc`` (Insect Tuboid Classifier). Modules that need torch say so; the others can be imported by callers
that may run without a model (e.g. ``--de-novo`` SVG export, validation of stored predictions).
"""
