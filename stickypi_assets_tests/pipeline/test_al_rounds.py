"""Halting rounds: contradictions and kappa between consecutive versions on a fixed sample, hand-computed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from stickypi_assets.pipeline.al_rounds import ModelState, fixed_sample, next_round, stalled_warning


def pool(version: str, patterns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"item": [f"t.{k:04d}" for k in range(len(patterns))], "pattern": patterns,
                         "model_version": version})  # fmt: skip


def test_rounds_compare_consecutive_versions_on_the_same_items():
    empty = pd.DataFrame(columns=["stage", "model_version", "metric_value", "predictions", "round"])
    first = next_round(empty, "tuboid", pool("v1", list("AABBC")), ModelState("v1", "accuracy", 0.8, 10), exclude=set())
    assert first["round"] == 1 and first["stage"] == "itc" and first["contradictions"] is None
    assert json.loads(first["predictions"]) == dict(zip(pool("v1", list("AABBC"))["item"], "AABBC", strict=True))
    rounds = pd.DataFrame([first])
    # the same version again: no new round
    assert next_round(rounds, "tuboid", pool("v1", list("AABBC")), ModelState("v1", "accuracy", 0.8, 10),
                      exclude=set()) is None  # fmt: skip
    # a version with no scores yet (the days are being re-scored): no round either
    assert next_round(rounds, "tuboid", pool("v1", list("AABBC")), ModelState("v2", "accuracy", 0.8, 12),
                      exclude=set()) is None  # fmt: skip
    second = next_round(rounds, "tuboid", pool("v2", list("ABBCC")), ModelState("v2", "accuracy", 0.805, 22),
                        exclude=set())  # fmt: skip
    # 2 of 5 changed; p_o = 3/5, p_e = (2/5)(1/5) + (2/5)(2/5) + (1/5)(2/5) = 0.32, kappa = 0.28 / 0.68
    assert second["contradictions"] == pytest.approx(0.4) and second["kappa"] == pytest.approx(0.28 / 0.68)
    assert second["previous_version"] == "v1" and second["n_sample"] == 5 and second["round"] == 2
    assert not second["stalled"]
    rounds = pd.DataFrame([first, second])
    third = next_round(rounds, "tuboid", pool("v3", list("ABBCC")), ModelState("v3", "accuracy", 0.809, 30),
                       exclude={"t.0004"})  # an item annotated meanwhile leaves the sample  # fmt: skip
    assert third["n_sample"] == 4 and third["contradictions"] == 0.0 and third["kappa"] == pytest.approx(1.0)
    assert third["stalled"]  # 0.800, 0.805, 0.809: each step under 0.01
    warning = stalled_warning(pd.DataFrame([first, second, third]), "itc")
    assert warning.startswith("stalled: the itc") and "0.800, 0.805, 0.809" in warning
    assert stalled_warning(pd.DataFrame([first, second, third]), "uid") is None
    # the model asset's view: the rounds so far and a version just trained with a clearly better metric
    assert stalled_warning(pd.DataFrame([first, second]), "itc", new_metric=0.9) is None


def test_fixed_sample_ignores_order_and_annotated_items():
    p = pool("v1", list("ABCDEFGHIJ"))
    a = fixed_sample(p, set(), size=4)
    b = fixed_sample(p.iloc[::-1], set(), size=4)
    assert a["item"].tolist() == b["item"].tolist() and len(a) == 4
    c = fixed_sample(p, {a["item"].iloc[0]}, size=4)
    assert a["item"].iloc[0] not in set(c["item"]) and a["item"].tolist()[1:] == c["item"].tolist()[:3]


def test_image_predictions_are_detection_counts_whatever_their_dtype():
    import numpy as np

    p = pd.DataFrame({"item": ["a", "b"], "n_detections": np.array([3, 0], dtype=np.int32), "model_version": "v1"})
    row = next_round(pd.DataFrame(columns=["stage", "model_version"]), "image", p, ModelState("v1", "f1", 0.5, 2),
                     exclude=set())  # fmt: skip
    assert row["stage"] == "uid" and json.loads(row["predictions"]) == {"a": 3, "b": 0}
