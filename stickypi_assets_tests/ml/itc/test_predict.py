"""Classifying tuboids: deterministic probabilities, the fields returned, predict_dir and results.csv."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stickypi_assets.formats.tuboids import read_tuboid, read_tuboids
from stickypi_assets.ml.itc.predict import ORIGINAL_COLUMNS, load_classifier, predict_dir
from stickypi_assets_tests.conftest import REPO_ROOT, stickypi_path

PROBE = """
import json, sys, torch
torch.set_num_threads(1)
from stickypi_assets.formats.tuboids import read_tuboid
from stickypi_assets.ml.itc.predict import load_classifier
classifier, _, _ = load_classifier(sys.argv[1])
print(json.dumps(classifier.probabilities([read_tuboid(p) for p in sys.argv[2:]]).tolist()))
"""


@pytest.fixture(scope="module")
def tuboids(trained_bundle: Path):
    found, failures = read_tuboids(trained_bundle / "data")
    assert failures == [] and len(found) == 16
    return found


def test_same_tuboid_same_model_same_probabilities(trained_bundle: Path, tuboids):
    classifier, config, version = load_classifier(trained_bundle)
    some = tuboids[:5]
    first = classifier.probabilities(some)
    assert np.array_equal(first, classifier.probabilities(some))  # bit-identical on a second call
    reloaded, _, same_version = load_classifier(trained_bundle)
    assert same_version == version and np.array_equal(first, reloaded.probabilities(some))
    # ... and in another process (fresh interpreter, fresh load)
    dirs = [str(trained_bundle / "data" / t.id.series_id / str(t.id)) for t in some]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(trained_bundle), *dirs],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    ).stdout  # fmt: skip
    assert np.array_equal(first, np.array(json.loads(out)))
    # batch composition changes float summation order only, never the verdict
    one_by_one = np.concatenate([classifier.probabilities([t]) for t in some])
    assert np.allclose(first, one_by_one, atol=1e-6)
    assert np.allclose(first.sum(axis=1), 1.0) and first.shape == (5, config.n_classes)


def test_classifications_carry_label_taxonomy_and_probabilities(trained_bundle: Path, tuboids):
    classifier, config, _ = load_classifier(trained_bundle)
    results = classifier.classify(tuboids, batch_size=3)
    assert [r.tuboid_id for r in results] == [str(t.id) for t in tuboids]
    for r in results:
        assert r.pattern == config.label_map.pattern_for(r.label)
        assert r.probability == pytest.approx(r.probabilities.max()) and r.label == int(r.probabilities.argmax())
        taxonomy = config.label_map.taxonomy_for(r.label)
        assert (r.type, r.order, r.family, r.genus, r.species) == tuple(taxonomy.values())
        row = r.as_row()
        assert list(row)[:8] == ["type", "order", "family", "genus", "species", "label", "pattern", "tuboid_id"]
        assert [row[f"prob_{k}"] for k in range(3)] == pytest.approx(r.probabilities.tolist())


def test_predict_dir_writes_results_csv(trained_bundle: Path, tmp_path: Path):
    target = tmp_path / "target"
    shutil.copytree(trained_bundle / "data", target)
    broken = sorted(target.glob("*/*"))[0]
    (broken / "tuboid.jpg").unlink()  # an incomplete upload: reported, not fatal
    result = predict_dir(trained_bundle, target)
    df = pd.read_csv(target / "results.csv", index_col=0)
    assert list(df.columns) == [*ORIGINAL_COLUMNS, "tuboid_id", "probability", "prob_0", "prob_1", "prob_2"]
    assert ORIGINAL_COLUMNS == ["type", "order", "family", "genus", "species", "label", "pattern", "directory"]
    assert len(df) == result.n_classified == 15 and df.index.tolist() == list(range(15))
    assert [Path(d) for d, _ in result.failures] == [broken] and "tuboid.jpg" in result.failures[0][1]
    assert df["directory"].tolist() == [str(p.parent) for p in sorted(target.glob("*/*/metadata.txt"))[1:]]
    assert np.allclose(df[["prob_0", "prob_1", "prob_2"]].sum(axis=1), 1.0)
    with pytest.raises(FileExistsError):
        predict_dir(trained_bundle, target)
    again = predict_dir(trained_bundle, target, force=True)
    assert again.n_classified == 15 and pd.read_csv(target / "results.csv", index_col=0).equals(df)


def test_predict_dir_on_real_tuboids_and_an_empty_folder(trained_bundle: Path, tmp_path: Path):
    target = tmp_path / "itc"
    shutil.copytree(stickypi_path("itc"), target, ignore=shutil.ignore_patterns("context.jpg", "*.db"))
    result = predict_dir(trained_bundle, target)
    assert result.n_classified == 7 and len(result.failures) == 2  # the two tuboids without tuboid.jpg
    assert read_tuboid(Path(pd.read_csv(result.results)["directory"][0])).n_tiles == 38
    (tmp_path / "empty").mkdir()
    empty = predict_dir(trained_bundle, tmp_path / "empty")
    assert empty.n_classified == 0 and len(pd.read_csv(empty.results).columns) == 1 + 8 + 2 + 3


def test_no_weights_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no trained weights"):
        load_classifier(tmp_path)
