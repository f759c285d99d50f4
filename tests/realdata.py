"""The real public data sets: where they are, and what a test does when one is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_data(path: Path) -> Path:
    """The path of a real data file; in CI a missing file fails, elsewhere the test is reported as not run."""
    if path.exists():
        return path
    message = (
        f"real data not found at {path}; set O2O_DATA_DIR to the folder holding the public data sets "
        "(see README: Online Retail II from the UCI repository, MovieLens 100K from GroupLens)"
    )
    if os.environ.get("CI") or os.environ.get("O2O_REQUIRE_DATA"):
        pytest.fail(message)
    pytest.skip(message)
