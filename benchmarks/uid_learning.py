"""The UID learning recipes on one real card: recall, precision and training time from random init.

Trains the small Mask R-CNN from random weights on crops of one real 512 px card region (21 insects; see
``stickypi_assets_tests/ml/uid/learning.py``) and validates it on the same region: ``full`` is the recipe whose
figures the README gives (900 iterations of 256 px crops), ``short`` the one the CI learning test runs (500
iterations of 192 px crops). Both in one run, one after the other, with the same torch threads.

Run: ``.venv/bin/python benchmarks/uid_learning.py [--recipes full short] [--threads 2]``
(needs ``../shared/data/stickypi``; about 10 minutes for ``full`` and 4 for ``short`` on a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    import torch

    from stickypi_assets_tests.ml.uid.learning import FULL_RECIPE, SHORT_RECIPE, train_and_score

    recipes = {"full": FULL_RECIPE, "short": SHORT_RECIPE}
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", choices=sorted(recipes), default=["full", "short"])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the figures: 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("| recipe | iterations | crop | train s | recall | precision | mask AP50 | final loss |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.recipes:
        config = recipes[name]
        with tempfile.TemporaryDirectory() as work:
            s = train_and_score(config, Path(work))
        print(f"| {name} | {s['iterations']} | {config.crop_size} | {s['train_s']} | {s['recall']:.2f} | "
              f"{s['precision']:.2f} | {s['mask_AP50']} | {s['final_loss']} |", flush=True)  # fmt: skip
        print(json.dumps({"recipe": name, **s}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
