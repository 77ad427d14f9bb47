"""Insect Tuboid Classifier (ITC): a tuboid's tiles → a taxon label with probabilities (reference section 5).

Modules: :mod:`.config` (bundle config, labels), :mod:`.inputs` (shots, RGB normalisation, size feature and
augmentation; torch-free), :mod:`.model` (ResNet per shot, pooled, + size; checkpoints), :mod:`.dataset`
(annotation databases + tuboid folders → labelled items, per-label md5 split, samples), :mod:`.train`
(training loop, checkpoints, resume), :mod:`.validate` (confusion matrix, per-class scores, accuracy, PNG),
:mod:`.predict` (classify tuboids, ``predict_dir`` → ``results.csv``) and :mod:`.cli` (``stickypi itc``).
``config`` and ``inputs`` do not import torch; the others do.
"""
