"""The demo's taxonomy report: per-taxon recall/precision and the confusion matrix, on hand-computed cases."""

import math

import pytest

from stickypi_assets.formats.labels import LabelMap
from stickypi_assets.synth.scoring import ChainScores, taxonomy_scores

LABELS = LabelMap.from_config([
    [r"^Insecta\.Diptera\.Sciaridae.*", 0],
    [r"^Insecta\.Hemiptera\.Cicadellidae.*", 1],
    [r"^Insecta\.Diptera\.Culicidae.*", 2],
    [r"^Insecta.*", 3],
])  # fmt: skip
SCIA, CICA, CULI = "Insecta.Diptera.Sciaridae..", "Insecta.Hemiptera.Cicadellidae..", "Insecta.Diptera.Culicidae.."


def test_a_taxon_never_found_shows_in_recall_precision_and_the_matrix():
    # 4 Sciaridae: 3 called Cicadellidae, 1 unclassified; 3 Cicadellidae all right; 1 Culicidae right.
    true = [SCIA] * 4 + [CICA] * 3 + [CULI]
    given = [1, 1, 1, None, 1, 1, 1, 2]
    summary, per, confusion = taxonomy_scores(true, given, LABELS)
    assert summary == {"n_scored": 8.0, "accuracy": 4 / 8, "n_unclassified": 1.0,
                       "macro_recall": pytest.approx((0 + 1 + 1) / 3), "n_taxa": 3.0}  # fmt: skip
    rows = per.set_index("taxon")
    assert list(rows.index) == ["Sciaridae", "Cicadellidae", "Culicidae"]
    assert rows.loc["Sciaridae", ["true", "right", "recall", "given"]].tolist() == [4, 0, 0.0, 0]
    assert math.isnan(rows.loc["Sciaridae", "precision"])  # never given: no precision, not 0 or 1
    assert rows.loc["Cicadellidae", ["true", "right", "recall", "given", "precision"]].tolist() == [3, 3, 1.0, 6, 0.5]
    assert rows.loc["Culicidae", ["recall", "precision"]].tolist() == [1.0, 1.0]
    assert list(confusion.columns) == ["Cicadellidae", "Culicidae", "unclassified"]
    assert confusion.loc["Sciaridae"].tolist() == [3, 0, 1]
    assert confusion.loc["Cicadellidae"].tolist() == [3, 0, 0]
    assert confusion.loc["Culicidae"].tolist() == [0, 1, 0]
    assert int(confusion.to_numpy().sum()) == 8


def test_an_insect_of_an_unlisted_taxon_is_scored_against_the_catch_all_label():
    summary, per, confusion = taxonomy_scores(["Insecta.Lepidoptera.Noctuidae.."], [3], LABELS)
    assert summary["accuracy"] == 1.0 and per.taxon.tolist() == ["Insecta"]
    assert confusion.loc["Insecta", "Insecta"] == 1


def test_the_report_prints_each_taxon_and_the_matrix():
    summary, per, confusion = taxonomy_scores([SCIA, CICA], [1, 1], LABELS)
    text = "\n".join(ChainScores(taxonomy=summary, per_taxon=per, confusion=confusion).lines())
    assert "50.0% of 2 captures that follow one true insect" in text and "macro recall 0.500 over 2 taxa" in text
    assert "Sciaridae" in text and "confusion (rows: true taxon, columns: label given)" in text


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="2 true taxa for 1 labels"):
        taxonomy_scores([SCIA, CICA], [1], LABELS)
