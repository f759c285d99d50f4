"""Where an e2e test's lake lives, as config and as the environment of jobs in other processes."""

from __future__ import annotations

from pathlib import Path


def lake_settings(folder: Path) -> dict[str, str]:
    """The `lake` config section of a lake under `folder` (lake/, landing/, lake/reports, lake/_checkpoints)."""
    root = folder / "lake"
    return {
        "root": str(root),
        "landing": str(folder / "landing"),
        "reports": str(root / "reports"),
        "checkpoints": str(root / "_checkpoints"),
    }


def lake_env(settings: dict[str, str]) -> dict[str, str]:
    """The same section as the O2O__LAKE__* variables a job in another process reads."""
    return {f"O2O__LAKE__{key.upper()}": value for key, value in settings.items()}
