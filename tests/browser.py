"""Headless Chromium for the tests that open HTML pages: where it is, and what a test does when it is missing."""

from __future__ import annotations

import os
import shutil

import pytest


def require_chromium() -> str:
    """The chromium executable; in CI (which installs it) a missing browser fails the test, elsewhere it is skipped."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "headless Chromium not found: install the Debian package (apt-get install -y chromium)"
    if os.environ.get("CI") or os.environ.get("O2O_REQUIRE_DATA"):
        pytest.fail(message)
    pytest.skip(message)
