"""ITC data: the 9 real tuboids and database.db (reference 5.5, 5.6, 9.4), annotation rules, split, samples."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from stickypi_assets.formats.itc_database import write_annotations
from stickypi_assets.formats.labels import REFERENCE_TEST_LABELS, LabelMap
from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.itc.dataset import (
    BalancedBatchSampler,
    ShotDataset,
    class_weights,
    load_itc_data,
    n_train_for,
    select_annotations,
    split_by_device,
    split_by_label,
)
from stickypi_assets_tests.conftest import stickypi_path
from stickypi_assets_tests.ml.itc.helpers import (
    COCCINELLIDAE,
    COLOURS,
    LABELS,
    MUSCIDAE,
    TINY,
    annotation,
    make_tuboid,
    tuboid_id,
)

SERIES = {
    "0061": "08038ade.2020-08-19_22-00-00.2020-08-26_12-00-00.0061",
    "0033": "08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.0033",
    "0193": "15e612cd.2020-09-02_22-00-00.2020-09-09_12-00-00.0193",
    "0094": "1b74105a.2020-08-12_22-00-00.2020-08-19_12-00-00.0094",
    "0005": "398948ee.2020-07-15_22-00-00.2020-07-22_12-00-00.0005",
    "0088": "398948ee.2020-09-02_22-00-00.2020-09-09_12-00-00.0088",
    "0690": "5c173ff2.2020-09-16_22-00-00.2020-09-23_12-00-00.0690",
    "0022": "d9699ed0.2020-09-09_22-00-00.2020-09-16_12-00-00.0022",
    "0052": "d9699ed0.2020-09-16_22-00-00.2020-09-23_12-00-00.0052",
}
# Reference 5.5: labels under the default (18-class) and the test (15-class) configs; 0193 is Ambiguous.
DEFAULT_LABELS = {"0061": 8, "0033": 2, "0094": 3, "0005": 7, "0088": 13, "0690": 0, "0022": 15, "0052": 8}
TEST_LABELS = {"0061": 8, "0033": 3, "0094": 2, "0005": 7, "0088": 12, "0690": 0, "0022": 13, "0052": 8}
NO_IMAGE = {"0061", "0052"}  # reference 9.4: tuboid.jpg missing (the two Muscidae)
TILES = {"0033": 38, "0094": 76, "0005": 8, "0088": 61, "0690": 43, "0022": 7}  # within 24 h (9.4)


def short(tuboid_id: str) -> str:
    return tuboid_id[-4:]


@pytest.mark.parametrize(("labels", "expected"), [(None, DEFAULT_LABELS), (REFERENCE_TEST_LABELS, TEST_LABELS)])
def test_real_tuboids_map_to_the_reference_labels(labels, expected, caplog):
    config = ItcConfig(min_train_per_label=0, input_size=32)
    if labels is not None:
        config = config.replace(labels=[list(e) for e in labels])
    with caplog.at_level(logging.WARNING):
        data = load_itc_data(stickypi_path("itc"), config)
    report = data.report
    assert (report.n_rows, report.n_annotated, report.n_folders) == (9, 9, 9)
    assert report.disagreements == [] and report.unannotated == []
    items = data.train + data.validation
    assert {short(i.tuboid_id): i.label for i in items} == {k: v for k, v in expected.items() if k not in NO_IMAGE}
    assert {short(i.tuboid_id): i.n_tiles for i in items} == TILES  # legacy all-frames tuboids: 24 h only
    # reference 5.6: training = the first Muscidae (0061) only, validation = the 7 others (Ambiguous dropped)
    assert {short(t) for t, s in report.split.items() if s == "train"} == {"0061"}
    assert {short(t) for t, s in report.split.items() if s == "validation"} == set(expected) - {"0061"}
    # the two tuboids without tuboid.jpg and the Ambiguous one are reported and skipped, nothing raised
    skipped = {short(t): reason for t, reason in report.skipped}
    assert set(skipped) == NO_IMAGE | {"0193"}
    assert all("missing tuboid.jpg" in skipped[k] for k in NO_IMAGE)
    assert "Ambiguous" in skipped["0193"]
    assert data.train == [] and len(data.validation) == 6
    assert "missing tuboid.jpg" in caplog.text


def test_real_data_with_the_fixed_split_keeps_single_examples_for_training():
    data = load_itc_data(stickypi_path("itc"), ItcConfig(input_size=32))
    # MIN_TRAIN_PER_LABEL 1: each single-tuboid label trains; Muscidae (2) keeps one of each
    assert sorted(short(i.tuboid_id) for i in data.train) == sorted(TILES)
    assert {short(t) for t, s in data.report.split.items() if s == "validation"} == {"0052"}
    assert data.validation == []  # 0052 has no image
    assert [i.md5 for i in data.train] == sorted(i.md5 for i in data.train)


def test_real_samples_are_deterministic_for_validation_and_vary_for_training():
    config = ItcConfig(input_size=32, n_shots=6)
    data = load_itc_data(stickypi_path("itc"), config)
    dataset = ShotDataset(data.train, config, data.cache)
    shots, sizes, label = dataset[0]
    assert shots.shape == (6, 3, 32, 32) and sizes.shape == (6,) and label == data.train[0].label
    again, _, _ = dataset[0]
    assert torch.equal(shots, again)
    a, _, _ = dataset[(0, 1)]
    b, _, _ = dataset[(0, 1)]
    c, _, _ = dataset[(0, 2)]
    assert torch.equal(a, b) and not torch.equal(a, c)
    # real insects are 15-350 px long: the size feature stays within a few units of 0
    assert float(sizes.abs().max()) < 4


# -- annotation rules --------------------------------------------------------------------------------------


def test_latest_row_per_tuboid_wins_whoever_made_it():
    label_map = LabelMap.from_config(LABELS)
    rows = [
        annotation(0, MUSCIDAE, 100.0, "alice"),
        annotation(0, COCCINELLIDAE, 300.0, "bob"),
        annotation(0, MUSCIDAE, 200.0, "carol"),
        annotation(1, MUSCIDAE, 100.0, "alice"),
        annotation(1, COCCINELLIDAE, 100.0, "alice"),  # same time: the row read later wins
    ]
    selected = select_annotations(rows, label_map)
    assert selected[tuboid_id(0)].label == 1 and selected[tuboid_id(0)].annotation.user == "bob"
    assert selected[tuboid_id(0)].disagreement and selected[tuboid_id(0)].n_annotators == 3
    assert selected[tuboid_id(1)].label == 1 and not selected[tuboid_id(1)].disagreement  # one annotator


def test_majority_rule_counts_each_annotators_latest_vote():
    label_map = LabelMap.from_config(LABELS)
    rows = [
        annotation(0, MUSCIDAE, 100.0, "alice"),
        annotation(0, MUSCIDAE, 110.0, "carol"),
        annotation(0, COCCINELLIDAE, 300.0, "bob"),  # latest, but outvoted 2 to 1
        annotation(1, COCCINELLIDAE, 100.0, "alice"),
        annotation(1, MUSCIDAE, 200.0, "alice"),  # alice corrected herself: one vote, Muscidae
        annotation(1, COCCINELLIDAE, 150.0, "bob"),  # 1-1 tie: the most recent vote (alice's) decides
        annotation(2, ("Insecta", "Diptera", "Muscidae", "Musca", "Musca domestica"), 100.0, "alice"),
        annotation(2, MUSCIDAE, 50.0, "bob"),  # same class as alice's species-level label: agreement
    ]
    majority = select_annotations(rows, label_map, "majority")
    assert majority[tuboid_id(0)].label == 0 and majority[tuboid_id(0)].disagreement
    assert majority[tuboid_id(1)].label == 0 and majority[tuboid_id(1)].annotation.user == "alice"
    assert majority[tuboid_id(2)].label == 0 and not majority[tuboid_id(2)].disagreement
    latest = select_annotations(rows, label_map, "latest")
    assert latest[tuboid_id(0)].label == 1  # the default rule follows bob's later submission
    with pytest.raises(ValueError):
        select_annotations(rows, label_map, "vote")


def test_ambiguous_and_unmatched_verdicts_are_dropped_with_a_reason():
    label_map = LabelMap.from_config(LABELS[:2])  # no catch-all
    rows = [
        annotation(0, MUSCIDAE, 100.0),
        annotation(0, ("Ambiguous", "", "", "", ""), 200.0),  # a later Ambiguous verdict overrides
        annotation(1, ("Insecta", "Lepidoptera", "", "", ""), 100.0),
        annotation(2, ("Background", "", "", "", ""), 100.0),
    ]
    selected = select_annotations(rows, label_map)
    assert [s.label for s in selected.values()] == [None, None, None]
    assert "Ambiguous" in selected[tuboid_id(0)].reason
    assert "Insecta.Lepidoptera..." in selected[tuboid_id(1)].reason and "no label" in selected[tuboid_id(1)].reason


def test_unmatched_missing_and_broken_tuboids_are_reported_not_fatal(tmp_path: Path):
    data_dir = tmp_path / "data"
    for index in range(4):
        make_tuboid(data_dir, index, COLOURS["Muscidae"])
    make_tuboid(data_dir, 9, COLOURS["Muscidae"])  # never annotated
    (data_dir / tuboid_id(3).rsplit(".", 1)[0] / tuboid_id(3) / "tuboid.jpg").write_bytes(b"not a jpeg")
    rows = [
        annotation(0, MUSCIDAE, 1.0),
        annotation(1, ("Insecta", "Lepidoptera", "", "", ""), 1.0),  # matches no label (no catch-all)
        annotation(2, COCCINELLIDAE, 1.0),
        annotation(3, MUSCIDAE, 1.0),  # unreadable image
        annotation(7, MUSCIDAE, 1.0),  # no folder
    ]
    write_annotations(data_dir / "database.db", rows)
    config = TINY.replace(labels=LABELS[:2])
    data = load_itc_data(data_dir, config)
    assert sorted(i.tuboid_id for i in data.train + data.validation) == [tuboid_id(0), tuboid_id(2)]
    reasons = dict(data.report.skipped)
    assert set(reasons) == {tuboid_id(1), tuboid_id(3), tuboid_id(7)}
    assert "matches no label" in reasons[tuboid_id(1)]
    assert "not a readable image" in reasons[tuboid_id(3)]
    assert "no tuboid folder" in reasons[tuboid_id(7)]
    assert data.report.unannotated == [tuboid_id(4 + 5)]
    assert data.report.warnings and "3 annotated tuboid(s) skipped" in data.report.warnings[0]


def test_several_databases_are_pooled(tmp_path: Path):
    data_dir = tmp_path / "data"
    for index in range(2):
        make_tuboid(data_dir, index, COLOURS["Muscidae"])
    write_annotations(data_dir / "database.db", [annotation(0, MUSCIDAE, 100.0), annotation(1, MUSCIDAE, 100.0)])
    (data_dir / "campaign2").mkdir()
    write_annotations(data_dir / "campaign2" / "more.db", [annotation(1, COCCINELLIDAE, 200.0, "bob")])
    data = load_itc_data(data_dir, TINY)
    assert len(data.report.databases) == 2 and data.report.n_rows == 3
    labels = {i.tuboid_id: i.label for i in data.train + data.validation}
    assert labels == {tuboid_id(0): 0, tuboid_id(1): 1}  # bob's later row in the second database wins
    assert data.report.disagreements == [tuboid_id(1)]
    with pytest.raises(FileNotFoundError, match="no annotation database"):
        load_itc_data(tmp_path / "data" / tuboid_id(0).rsplit(".", 1)[0], TINY)


# -- split and sampling ---------------------------------------------------------------------------------


def test_per_label_split_rule():
    # floor(n * 191 / 255): 1 -> 0, 2 -> 1, 3 -> 2, 4 -> 2, 100 -> 74; the fix keeps >= 1 for training
    assert [n_train_for(n, 0) for n in (0, 1, 2, 3, 4, 5, 100)] == [0, 0, 1, 2, 2, 3, 74]
    assert [n_train_for(n, 1) for n in (0, 1, 2, 3, 4)] == [0, 1, 1, 2, 2]
    items = [("a", 0, "ff"), ("b", 0, "00"), ("c", 0, "80"), ("d", 1, "10"), ("e", 2, "20"), ("f", 2, "30")]
    assert split_by_label(items, 0) == {
        "b": "train", "c": "train", "a": "validation", "d": "validation", "e": "train", "f": "validation",
    }  # fmt: skip
    assert split_by_label(items, 1)["d"] == "train"


def _on(device: str, k: int) -> str:
    return f"{device}.2020-06-20_00-00-00.2020-06-21_00-00-00.{'a' * 32}.{k:04d}"


def test_device_split_holds_out_whole_devices():
    # md5 of the ids orders the devices 0c000003 (28fc...), 0b000002 (6c6d...), 0a000001 (d91f...)
    labels = {"0c000003": [0, 1, 2], "0b000002": [0, 0, 1, 1], "0a000001": [0, 1, 3]}
    items = [(_on(d, k), label, f"{k:02x}") for d, ls in labels.items() for k, label in enumerate(ls)]
    split, warnings = split_by_device(items)
    # 0c000003 holds 3 of 10 tuboids >= a quarter: it alone validates, except label 2, seen on no other device
    assert {t for t, s in split.items() if s == "validation"} == {_on("0c000003", 0), _on("0c000003", 1)}
    assert split[_on("0c000003", 2)] == "train" and len(split) == 10
    assert warnings == ["validation devices ['0c000003'] (of 3)",
                        "1 tuboid(s) of labels seen on no training device (or of no device): md5 split"]  # fmt: skip
    one = [(_on("0a000001", k), 0, f"{k:02x}") for k in range(4)]
    split, warnings = split_by_device(one)
    assert split == split_by_label(one) and "md5 split used" in warnings[0]


def test_an_unknown_validation_split_is_refused():
    with pytest.raises(ValueError, match="VALIDATION_SPLIT 'card' not in \\('md5', 'device'\\)"):
        ItcConfig(validation_split="card")


def test_class_weights_and_balanced_sampler():
    weights = class_weights([0, 0, 0, 0, 1], 3, power=1.0)
    assert weights.tolist() == pytest.approx([0.625, 2.5, 0.0])  # 4 x 0.625 + 1 x 2.5 = 5 items
    assert class_weights([0, 0, 1], 2, power=0.0).tolist() == [1.0, 1.0]
    labels = [0] * 90 + [1] * 10
    config = TINY.replace(ims_per_batch=50, class_balance="sampler", class_balance_power=1.0)
    batches = list(BalancedBatchSampler(labels, config, 0, 20))
    drawn = np.array([labels[i] for batch in batches for i, _ in batch])
    assert len(batches) == 20 and abs(drawn.mean() - 0.5) < 0.05  # balanced
    uniform = list(BalancedBatchSampler(labels, config.replace(class_balance="none"), 0, 20))
    assert np.mean([labels[i] for batch in uniform for i, _ in batch]) < 0.2
    # round r depends on r only: a resumed sampler draws what the uninterrupted one drew
    assert list(BalancedBatchSampler(labels, config, 15, 20)) == batches[15:]
