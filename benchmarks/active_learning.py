"""The simulated annotator: how many labels each active-learning strategy needs, against random, on the same seeds.

For the ITC (``--stage itc``): a synthetic pool deployment (2 devices x 2 days, ~550 tuboids of six taxa) whose
tuboids an annotator labels when asked (answers from the ground truth), and a held-out deployment of another seed
(~560 tuboids) on which every round's model is scored (macro recall: a lost taxon cannot hide). Every strategy
starts from the same random ``--initial`` tuboids (12) for a seed, then runs ``--rounds`` (6) rounds of: MC-dropout
scores of the unlabeled pool → a batch of ``--batch`` (12) → labels → the ITC retrained from random init with the
same budget (80 rounds of 16 tuboids). Strategies (``--strategies``): ``random``; ``margin``; ``mix`` = the
queue's default, 50% margin, 20% frame disagreement, 20% CoreSet diversity, 10% random.

For the UID (``--stage uid``): a pool of 48 synthetic 640 x 480 card images (2 devices, one frame an hour; the true
outlines are the annotations) and a held-out device of another seed (23 images), scored by instance F1 at IoU 0.33.
Every strategy starts from the same 3 random images, then 3 rounds of 3: maskAL certainty over 6 MC-dropout passes
(box-only for all, masks for the least certain fifth) → a batch → the UID (the demo's narrow ResNet-18-FPN Mask
R-CNN) retrained from random init for 120 iterations of 256 px crops. Strategies: ``random``; ``maskal``; ``mix`` =
the queue's default, 70% maskAL, 20% CoreSet diversity, 10% random.

Prints each learning curve (metric per number of labels, per seed and mean ± sd), then, per strategy and seed, the
**share of random's labels needed to reach random's final metric** (``never`` where it did not), writes
``curves.csv``, ``summary.json`` and ``learning_curves.png`` under ``--out``.

Runtime on the 2-core CPU machine (1 torch thread per run): the ITC defaults took 89.8 min with a UID run beside
it (~1.5-2 min per round and strategy); the UID ~3-4 min per round and strategy (train 120 iterations, score 48
images with 6 passes, evaluate 23 images), 24 of them for the defaults. Seeds can run as separate processes (one
per core) and be reported together with ``--report run1/curves.csv run2/curves.csv``. On a GPU each round trains
in seconds: larger pools, full-size frames, training to convergence and ResNet-50 become affordable, which is
where maskAL measured its gain (14,000 images).

Run: ``.venv/bin/python benchmarks/active_learning.py [--stage itc|uid] [--seeds 0 1 2] [--rounds R] [--initial N]
[--batch B] [--strategies random mix] [--out benchmarks/out/active_learning/<stage>]``
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd
import torch

from stickypi_assets.active.report import add_comparison_options, compare, plan, report_curves, simulation_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_comparison_options(parser)
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/out/active_learning/<stage>)")
    parser.add_argument("--report", type=Path, nargs="+", metavar="CURVES_CSV",
                        help="only report the curves.csv of earlier runs together (e.g. seeds run side by side)")
    args = parser.parse_args()
    if args.report:
        table = pd.concat([pd.read_csv(path) for path in args.report], ignore_index=True)
        metric = {"itc": "macro_recall", "uid": "f1"}[args.stage]
        report_curves(table, metric, args.out or Path("benchmarks/out/active_learning") / args.stage)
        return
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for noisy in ("stickypi_assets.ml", "stickypi_assets.synth"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    rounds, initial, batch = plan(args.stage, args.rounds, args.initial, args.batch)
    out = args.out or Path("benchmarks/out/active_learning") / args.stage
    started = time.perf_counter()
    stage, mixes, what = simulation_stage(args.stage, out / "work")
    print(f"pool {len(stage.pool)} {what}, test {len(stage.test)} {what} "
          f"(built in {time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    try:
        compare(stage, mixes, strategies=args.strategies, seeds=args.seeds, rounds=rounds, initial=initial,
                batch=batch, out=out)  # fmt: skip
    except ValueError as exc:
        parser.error(str(exc))

if __name__ == "__main__":
    main()
