"""The `stickypi` command is the core for people who do not run Dagster: it neither imports nor warns about it."""

from __future__ import annotations

import os
import subprocess
import sys

from stickypi_assets_tests.conftest import REPO_ROOT

PROBE = """
import sys
import stickypi_assets.cli
from stickypi_assets.cli import main
code = main(sys.argv[1:])
print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('dagster', 'torch')}))
sys.exit(code)
"""


def _run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})}, timeout=300)  # fmt: skip


def test_importing_the_cli_loads_no_dagster_nor_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, stickypi_assets.cli; "
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'torch')))"],
                         capture_output=True, text=True, check=True, timeout=300)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout[:300]


def test_help_and_the_model_and_warehouse_commands_run_without_dagster(tmp_path):
    env = {"STICKYPI_DATA_ROOT": str(tmp_path), "DAGSTER_HOME": ""}
    help_ = subprocess.run([sys.executable, "-m", "stickypi_assets.cli", "uid", "--help"], capture_output=True,
                           text=True, timeout=300, env={**os.environ, **env})  # fmt: skip
    assert help_.returncode == 0 and help_.stderr == "" and "Warning" not in help_.stdout
    for argv in (("models", "list"), ("images", "audit"), ("warehouse", "rebuild")):
        result = _run(*argv, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "[]", (argv, result.stdout)
        assert "Warning" not in result.stderr
