"""The simulated annotator: how many labels each active-learning strategy needs, against random, on the same seeds.

For the ITC (``--stage itc``): a synthetic pool deployment (2 devices x 2 days, ~550 tuboids of six taxa) whose
tuboids an annotator labels when asked (answers from the ground truth), and a held-out deployment of another seed
(~560 tuboids) on which every round's model is scored (macro recall: a lost taxon cannot hide). Every strategy
starts from the same random ``--initial`` tuboids for a seed, then runs ``--rounds`` rounds of: MC-dropout scores of
the unlabeled pool → a batch of ``--batch`` → labels → the ITC retrained from random init with the same budget
(80 rounds of 16 tuboids). Strategies (``--strategies``): ``random``; ``margin``; ``mix`` = 50% margin, 20% frame
disagreement, 20% CoreSet diversity, 10% random.

Prints each learning curve (metric per number of labels, per seed and mean ± sd), then, per strategy and seed, the
**share of random's labels needed to reach random's final metric** (``—`` where it never did), writes
``curves.csv``, ``summary.json`` and ``learning_curves.png`` under ``--out``.

Runtime on the 2-core CPU machine (1 torch thread): ~40 s to build the deployments, then ~55 s per round and
strategy (train 50 s, score 5 s): the defaults (3 strategies x 3 seeds x 6 rounds + initial) take ~55 min.
A GPU (``--device cuda``) trains each round in seconds: larger pools, 224 px inputs and ResNet-50 become
affordable, which is where maskAL measured its gain.

Run: ``.venv/bin/python benchmarks/active_learning.py [--stage itc] [--seeds 0 1 2] [--rounds 6] [--initial 12]
[--batch 12] [--strategies random margin mix] [--out benchmarks/out/active_learning]``
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from stickypi_assets.active.report import compare, plan, simulation_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=["itc", "uid"], default="itc", help="which model the annotator labels for")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (initial set, training)")
    parser.add_argument("--rounds", type=int, help="annotation rounds after the initial set (itc 6, uid 4)")
    parser.add_argument("--initial", type=int, help="initial random labels (itc 12 tuboids, uid 3 images)")
    parser.add_argument("--batch", type=int, help="labels asked per round (itc 12, uid 3)")
    parser.add_argument("--strategies", nargs="+", default=["random", "mix"],
                        help="strategies to compare (itc: random margin mix; uid: random maskal mix)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="output folder (default benchmarks/out/active_learning/<stage>)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
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
