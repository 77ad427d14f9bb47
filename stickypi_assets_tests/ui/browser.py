"""A real Dagster webserver on 127.0.0.1 and a headless Chromium looking at it, for the UI smoke tests.

The webserver runs with the repository's own ``dagster.yaml`` and ``workspace.yaml`` (copied into the test's
``DAGSTER_HOME``, which is also its working directory, so their relative paths land there). Chromium and ChromeDriver
are Debian's (``make env`` installs them); without them the tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
#: The demo sample's days (what ``make demo`` and ``make ui`` set), so the UI lists only those partitions.
DEMO_DATES = {"STICKYPI_START_DATE": "2020-06-20", "STICKYPI_END_DATE": "2020-06-21"}
#: Set to a folder (e.g. ``docs/images``) to keep the screenshots there.
SCREENSHOTS_VARIABLE = "STICKYPI_UI_SCREENSHOTS"


def require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = f"UI test needs {', '.join(missing)} (make env installs Debian chromium and chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def dagster_home(folder: Path) -> Path:
    """A Dagster home with the repository's instance and workspace files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copyfile(REPO / name, folder / name)
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def webserver(home: Path, env: Mapping[str, str], timeout_s: float = 120) -> Iterator[str]:
    """``dagster-webserver`` on a free local port; yields its base URL; stopped (and its log shown) on exit."""
    port = _free_port()
    log = open(home / "webserver.log", "w")  # noqa: SIM115 (closed below)
    exe = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(exe), "-h", "127.0.0.1", "-p", str(port), "-w", "workspace.yaml"],
        cwd=home, env={**os.environ, **env, "DAGSTER_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_text = (home / "webserver.log").read_text()[-3000:]
                    raise RuntimeError(f"webserver did not start:\n{log_text}") from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class Browser:
    """Headless Chromium: open a page, wait until it says what we expect, keep a screenshot."""

    def __init__(self, base: str, shots: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        options.binary_location = str(CHROMIUM)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,900", "--user-data-dir=" + str(shots / "profile")):  # fmt: skip
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.base = base
        self.shots = shots
        self.keep = Path(os.environ[SCREENSHOTS_VARIABLE]) if os.environ.get(SCREENSHOTS_VARIABLE) else None

    def page(self, path: str, *expected: str, screenshot: str | None = None, timeout_s: float = 60) -> str:
        """Load ``base + path`` and wait until its text holds every ``expected`` string; returns the text."""
        self.driver.get(self.base + path)
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            text = self.driver.find_element("tag name", "body").text
            if all(e in text for e in expected) and "Loading" not in text:
                break
            time.sleep(0.5)
        else:
            self.driver.save_screenshot(str(self.shots / "failed.png"))
            missing = [e for e in expected if e not in text]
            raise AssertionError(f"{path}: {missing} not on the page after {timeout_s:.0f} s; it shows:\n{text[:2000]}")
        if screenshot:
            time.sleep(1.0)  # let the last requests paint
            self.driver.save_screenshot(str(self.shots / screenshot))
            if self.keep is not None:
                self.keep.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.shots / screenshot, self.keep / screenshot)
        return text

    def close(self) -> None:
        self.driver.quit()
