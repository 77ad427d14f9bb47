"""Loading the code location (what ``dagster dev`` and the code server do) prints no Dagster beta/preview warning."""

import subprocess
import sys

from stickypi_assets.orchestration import RELIED_ON_BETA_FEATURES


def test_loading_the_definitions_prints_no_beta_or_preview_warning():
    done = subprocess.run([sys.executable, "-W", "always", "-c", "import stickypi_assets.definitions"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is currently in" not in done.stderr, done.stderr[-2000:]


def test_a_beta_feature_not_relied_on_still_warns():
    code = (
        "import warnings, stickypi_assets.orchestration\n"
        "from dagster._annotations import beta\n"
        "@beta\n"
        "def novel(): pass\n"
        "with warnings.catch_warnings(record=True) as seen:\n"  # keeps the filters the package installed
        "    novel()\n"
        "print([str(w.message) for w in seen])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "`novel` is currently in beta" in done.stdout
    assert not any(feature in done.stdout for feature in RELIED_ON_BETA_FEATURES)
