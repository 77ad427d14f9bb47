"""A strategy comparison of the simulated annotator, run and reported: curves, shares of random's labels, a plot.

Shared by ``stickypi al simulate`` and ``benchmarks/active_learning.py``: both print the same figures and write
``curves.csv`` (one row per strategy, seed and round, written after every strategy so an interrupted run keeps
what it measured), ``summary.json`` and ``learning_curves.png`` under the output folder.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from stickypi_assets.active.simulation import MixFactory, Stage, mean_curve, run_strategy, share_summary, summarise

#: Per stage: default ``(rounds, initial labels, labels per round)`` of a comparison (CPU-sized).
DEFAULT_PLAN = {"itc": (6, 12, 12), "uid": (3, 3, 3)}


def simulation_stage(stage: str, workdir: Path) -> tuple[Stage, Mapping[str, MixFactory], str]:
    """``(stage, its strategies, what its items are)`` of the simulated annotator for ``itc`` or ``uid``."""
    if stage == "itc":
        from stickypi_assets.active.itc_simulation import ItcStage, itc_mixes

        return ItcStage(workdir), itc_mixes(), "tuboids"
    if stage == "uid":
        from stickypi_assets.active.uid_simulation import UidStage, uid_mixes

        return UidStage(workdir), uid_mixes(), "images"
    raise ValueError(f"no simulation for stage {stage!r} (itc or uid)")


def add_comparison_options(parser: argparse.ArgumentParser) -> None:
    """The options of a comparison (stage, seeds, plan, strategies, threads), one list for the CLI and benchmark."""
    parser.add_argument("--stage", choices=["itc", "uid"], default="itc", help="which model is annotated for (itc)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default 0 1 2)")
    parser.add_argument("--rounds", type=int, help="annotation rounds after the initial set (default itc 6, uid 3)")
    parser.add_argument("--initial", type=int, help="initial random labels (default itc 12 tuboids, uid 3 images)")
    parser.add_argument("--batch", type=int, help="labels asked per round (default itc 12, uid 3)")
    parser.add_argument("--strategies", nargs="+", default=["random", "mix"],
                        help="strategies compared with random (itc: random margin mix; uid: random maskal mix; "
                             "default random mix)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def plan(stage: str, rounds: int | None, initial: int | None, batch: int | None) -> tuple[int, int, int]:
    """The given ``(rounds, initial, batch)`` with the stage's defaults for those not given."""
    return tuple(g if g is not None else d for g, d in zip((rounds, initial, batch), DEFAULT_PLAN[stage], strict=True))


def plot_curves(curves: pd.DataFrame, metric: str, path: Path, what: str = "labeled items") -> Path:
    """Mean ± sd learning curve per strategy as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, group in curves.groupby("strategy"):
        ax.errorbar(group["n_labels"], group["mean"], yerr=group["std"].fillna(0), label=strategy, capsize=3,
                    marker="o")  # fmt: skip
    ax.set_xlabel(what)
    ax.set_ylabel(f"{metric} on a held-out deployment")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def compare(
    stage: Stage,
    mixes: Mapping[str, MixFactory],
    *,
    strategies: Sequence[str],
    seeds: Sequence[int],
    rounds: int,
    initial: int,
    batch: int,
    out: Path,
    say: Callable[[str], None] = print,
) -> dict:
    """Run every strategy (random first, always) on every seed and report (see the module docstring)."""
    unknown = [s for s in strategies if s not in mixes]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; choose from {sorted(mixes)}")
    strategies = ["random", *[s for s in strategies if s != "random"]]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[dict] = []
    for seed in seeds:
        for strategy in strategies:
            results = run_strategy(stage, strategy, mixes[strategy], seed=seed, n_initial=initial, batch_size=batch,
                                   n_rounds=rounds)  # fmt: skip
            rows += [r.as_row() for r in results]
            pd.DataFrame(rows).to_csv(out / "curves.csv", index=False)
    report = report_curves(pd.DataFrame(rows), stage.metric, out, say=say, settings={
        "initial": initial, "batch": batch, "rounds": rounds})  # fmt: skip
    report["minutes"] = round((time.perf_counter() - started) / 60, 1)
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=str))
    say(f"{report['minutes']} min; curves.csv, summary.json and learning_curves.png under {out}")
    return report


def report_curves(
    table: pd.DataFrame, metric: str, out: Path, *, say: Callable[[str], None] = print, settings: dict | None = None
) -> dict:
    """Print the curves of ``table`` (rows of ``curves.csv``: several runs' rows may be concatenated, e.g. seeds run
    on different machines), the shares of random's labels, and write ``learning_curves.png`` and ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    seeds = sorted(int(s) for s in table["seed"].unique())
    say(f"{metric} per number of labels (rows) and strategy/seed (columns):")
    say(table.pivot_table(index="n_labels", columns=["strategy", "seed"], values=metric).round(3).to_string())
    curves = mean_curve(table, metric)
    say(f"mean ± sd over seeds {seeds}:")
    for strategy, group in curves.groupby("strategy"):
        cells = "  ".join(f"{int(n)}: {m:.3f}±{0 if pd.isna(s) else s:.3f}"
                          for n, m, s in zip(group["n_labels"], group["mean"], group["std"], strict=True))  # fmt: skip
        say(f"  {strategy:>8}  {cells}")
    summary = summarise(table, metric)
    shares = share_summary(summary)
    say("share of random's labels needed to reach random's final metric (per seed; mean, never reached = 100%):")
    for strategy, info in shares.items():
        per_seed = ", ".join("never" if s is None or pd.isna(s) else f"{s:.0%}" for s in info["per_seed"])
        say(f"  {strategy:>8}  {per_seed}   mean {info['mean']:.0%}")
    # the area under each learning curve (its mean over the rounds after the shared initial set): a strategy that
    # learns sooner has more of it, whatever the noise of one round
    after = table[table["round"] > 0]
    area = after.groupby(["strategy", "seed"])[metric].mean().groupby("strategy").agg(["mean", "std"])
    say(f"mean {metric} over rounds 1..{int(table['round'].max())} (area under the learning curve; mean ± sd):")
    for strategy, row in area.iterrows():
        say(f"  {strategy:>8}  {row['mean']:.3f} ± {0 if pd.isna(row['std']) else row['std']:.3f}")
    plot_curves(curves, metric, out / "learning_curves.png")
    report = {"metric": metric, "seeds": seeds, **(settings or {}), "shares": shares,
              "area_under_curve": {str(k): float(v) for k, v in area["mean"].items()},
              "summary": summary.to_dict("records")}  # fmt: skip
    (out / "summary.json").write_text(json.dumps(report, indent=2, default=str))
    return report
