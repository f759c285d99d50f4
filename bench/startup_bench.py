"""Start-up: seconds from launching a new Python process to a ready Spark session with Delta, first and second time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from measure import PeakMemory

PROBE = Path(__file__).resolve().parent / "startup_probe.py"


def launch(project: Path) -> dict:
    """One fresh process running the probe: seconds to ready (from launch), its phases, the process tree's peak memory."""
    launched_at = time.time()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(PROBE)], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with PeakMemory(pid=process.pid) as memory:
        stdout, stderr = process.communicate()
    exited = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{PROBE.name} exited with {process.returncode}: {stderr.strip()[-2000:]}")
    probe = json.loads(stdout.strip().splitlines()[-1])
    return {
        "seconds_to_ready": round(probe.pop("ready_at") - launched_at, 3),
        **probe,
        "seconds_to_exit": round(exited, 3),
        **memory.summary(),
    }


def bench(project: Path) -> dict:
    """Cold = the first JVM of this run (the OS file cache is not dropped); warm = a second new process right after."""
    return {"cold": launch(project), "warm": launch(project)}
