"""ITC label configuration (reference 5.4) and the documented label mapping of the real database (5.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.itc_database import latest_per_tuboid, read_annotations
from stickypi_assets.formats.labels import (
    REFERENCE_DEFAULT_LABELS,
    REFERENCE_TEST_LABELS,
    LabelError,
    LabelMap,
    LabelPattern,
)
from stickypi_assets_tests.conftest import stickypi_path

# Class names in label order, as listed in section 5.4.
TEST_CLASSES = [
    "Background", "Ambiguous", "Insecta", "Edwardsiana", "Drosophila suzukii", "Drosophilidae", "Psychodidae",
    "Culicidae", "Muscidae", "Sciaridae", "Curculionidae", "Coccinellidae", "Coleoptera", "Figitidae",
    "Hymenoptera",
]  # fmt: skip
DEFAULT_CLASSES = [
    "Background", "Insecta", "Edwardsiana", "Cicadellidae", "Drosophila suzukii", "Drosophilidae",
    "Psychodidae", "Culicidae", "Muscidae", "Sciaridae", "Syrphidae", "Curculionidae", "Coccinellidae",
    "Elateridae", "Coleoptera", "Figitidae", "Halictidae", "Lepidoptera",
]  # fmt: skip


@pytest.mark.parametrize(
    ("entries", "names"), [(REFERENCE_TEST_LABELS, TEST_CLASSES), (REFERENCE_DEFAULT_LABELS, DEFAULT_CLASSES)]
)
def test_reference_lists_number_classes_as_documented(entries, names):
    lm = LabelMap.from_config(entries)
    assert lm.n_classes == len(names)
    assert [p.label for p in lm.patterns] == list(range(len(names)))
    for label, name in enumerate(names):
        taxonomy = lm.taxonomy_for(label)
        assert name in [v for v in taxonomy.values() if v], (label, lm.pattern_for(label))
        # the class's own name resolves to it when given as the taxon it describes
        taxon = ".".join(v or "" for v in taxonomy.values())
        assert lm.label_for(taxon) == label


def test_label_4_is_drosophila_suzukii_under_the_test_list():
    lm = LabelMap.from_config(REFERENCE_TEST_LABELS)
    assert lm.taxonomy_for(4) == {
        "type": "Insecta",
        "order": "Diptera",
        "family": "Drosophilidae",
        "genus": "Drosophila",
        "species": "Drosophila suzukii",
    }
    assert lm.taxonomy_for(0) == {
        "type": "Background",
        "order": None,
        "family": None,
        "genus": None,
        "species": None,
    }
    assert lm.label_for("Insecta.Diptera.Drosophilidae.Drosophila.Drosophila suzukii") == 4
    assert lm.label_for("Insecta.Diptera.Drosophilidae.Drosophila.Drosophila melanogaster") == 5


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (REFERENCE_TEST_LABELS, [8, 3, 7, 8, 13, 2, 12, 0]),
        (REFERENCE_DEFAULT_LABELS, [8, 2, 7, 8, 15, 3, 13, 0]),
    ],
)
def test_real_database_maps_to_documented_labels(entries, expected):
    rows = read_annotations(stickypi_path("itc", "database.db"))
    lm = LabelMap.from_config(entries)
    kept = [r for r in rows if not r.is_ambiguous]  # table order = the order section 5.5 lists
    assert [lm.label_for(r.taxon) for r in kept] == expected
    latest = latest_per_tuboid(rows)
    assert sorted(lm.label_for(r.taxon) for r in latest.values() if not r.is_ambiguous) == sorted(expected)


def test_nulls_numbered_in_list_order_after_max_explicit():
    lm = LabelMap.from_config([["^b.*", None], ["^a.*", 1], ["^c.*", None], ["^.*", 0]])
    assert lm.patterns == [
        LabelPattern(0, "^.*"),
        LabelPattern(1, "^a.*"),
        LabelPattern(2, "^b.*"),
        LabelPattern(3, "^c.*"),
    ]
    # first match wins in config order, not label order: "^.*" (label 0) is last in the list
    assert lm.label_for("b") == 2 and lm.label_for("zzz") == 0
    assert LabelMap.from_config([("^x", None), ("^y", None)]).label_for("y") == 1
    assert LabelMap.from_config(lm.to_config()).patterns == lm.patterns


def test_match_is_anchored_at_start_only():
    lm = LabelMap.from_config([(r"Diptera", 0), (r".*", 1)])
    assert lm.label_for("Insecta.Diptera") == 1
    assert lm.label_for("Dipteran") == 0


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "non-empty"),
        ("^a", "non-empty"),
        ([("^a", 0), ("^b", 0)], "duplicate label 0"),
        ([("^a", 1), ("^b", None), ("^c", 1)], "duplicate label 1"),
        ([("^a(", 0)], "invalid regex"),
        ([("^a", 0, "x")], "expected"),
        ([(1, 0)], "must be a string"),
        ([("^a", -1)], "integer >= 0"),
        ([("^a", "1")], "integer >= 0"),
        ([("^a", True)], "integer >= 0"),
        ([("^a", 0), ("^b", 5)], "exactly 0..1"),
    ],
)
def test_config_errors(entries, message):
    with pytest.raises(LabelError, match=message):
        LabelMap.from_config(entries)


def test_lookup_errors():
    lm = LabelMap.from_config([(r"^Insecta\.Diptera.*", 0)])
    with pytest.raises(FormatError, match="no label pattern matches"):
        lm.label_for("Background....")
    with pytest.raises(FormatError, match="unknown label 3"):
        lm.pattern_for(3)
    deep = LabelMap.from_config([(r"^a\.b\.c\.d\.e\.f", 0)])
    with pytest.raises(LabelError, match="6 levels"):
        deep.taxonomy_for(0)


def test_taxonomy_keeps_empty_levels_of_trailing_wildcards():
    lm = LabelMap.from_config([(r"^Insecta\.Coleoptera\..*", 0)])
    assert lm.taxonomy_for(0) == {
        "type": "Insecta",
        "order": "Coleoptera",
        "family": "",
        "genus": None,
        "species": None,
    }


def test_from_yaml(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "IMS_PER_BATCH: 8\n"
        "LABELS:\n"
        "  - ['^Background.*', 0]\n"
        "  - ['^Insecta\\.Diptera\\.Muscidae.*', null]\n"
        "  - ['^Insecta.*', 1]\n"
    )
    lm = LabelMap.from_yaml(config)
    assert lm.n_classes == 3
    assert lm.label_for("Insecta.Diptera.Muscidae..") == 2
    assert lm.pattern_for(2) == r"^Insecta\.Diptera\.Muscidae.*"
    (tmp_path / "nolabels.yaml").write_text("N_ROUNDS: 2\n")
    with pytest.raises(LabelError, match="no LABELS key"):
        LabelMap.from_yaml(tmp_path / "nolabels.yaml")
    (tmp_path / "broken.yaml").write_text("LABELS: [\n")
    with pytest.raises(LabelError, match="invalid YAML"):
        LabelMap.from_yaml(tmp_path / "broken.yaml")
    (tmp_path / "dup.yaml").write_text("LABELS:\n  - ['^a', 0]\n  - ['^b', 0]\n")
    with pytest.raises(LabelError, match=r"dup\.yaml.*duplicate"):
        LabelMap.from_yaml(tmp_path / "dup.yaml")


def test_deepest_level_is_the_most_specific_named_level():
    from stickypi_assets.formats.labels import deepest_level

    assert deepest_level({"type": "Insecta", "order": "Diptera", "family": "Sciaridae", "genus": None}) == "Sciaridae"
    assert deepest_level({"type": "Insecta", "genus": "Drosophila", "species": "Drosophila suzukii"}) == (
        "Drosophila suzukii"
    )
    assert deepest_level({"type": "Insecta", "order": float("nan"), "family": ""}) == "Insecta"  # NaN, '' unnamed
    assert deepest_level({}) is None and deepest_level({"type": None}) is None
