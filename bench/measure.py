"""Measuring tools: wall-clock seconds of a block, peak resident memory of the driver with its JVM, and the CPU
that other processes on the machine took meanwhile."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import psutil
from pyspark.sql import SparkSession

MB = 1024 * 1024
T = TypeVar("T")


def tree_rss(root: psutil.Process) -> tuple[int, int]:
    """Resident bytes of `root` itself and of all its descendants (JVM, Python workers), at this instant."""
    try:
        own = root.memory_info().rss
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    descendants = 0
    for child in children:
        try:
            descendants += child.memory_info().rss
        except psutil.NoSuchProcess:
            continue  # a Python worker that ended between the listing and the read
    return own, descendants


class TreeSampler:
    """Base of the context managers below: `_sample` runs on a thread every `interval` seconds while the
    block runs, and once more at its end."""

    def __init__(self, pid: int | None, interval: float, name: str):
        self.root = psutil.Process(pid or os.getpid())
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class PeakMemory(TreeSampler):
    """Context manager: samples the process tree every `interval` seconds and keeps the peaks.

    `peak_rss_mb` is the peak of the sum (one instant), not the sum of the separate peaks.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        super().__init__(pid, interval, name="peak-memory")
        self.peak_total = 0
        self.peak_own = 0
        self.peak_descendants = 0
        self.samples = 0

    def _sample(self) -> None:
        own, descendants = tree_rss(self.root)
        self.peak_total = max(self.peak_total, own + descendants)
        self.peak_own = max(self.peak_own, own)
        self.peak_descendants = max(self.peak_descendants, descendants)
        self.samples += 1

    def __enter__(self) -> PeakMemory:
        self.start_own, _ = tree_rss(self.root)
        super().__enter__()
        return self

    def summary(self) -> dict:
        """Peak MB of the tree (one instant), of the root process alone (and its growth during the block), of its
        descendants, and samples taken."""
        return {
            "peak_rss_mb": round(self.peak_total / MB, 1),
            "peak_python_rss_mb": round(self.peak_own / MB, 1),
            "python_rss_growth_mb": round((self.peak_own - self.start_own) / MB, 1),
            "peak_children_rss_mb": round(self.peak_descendants / MB, 1),
            "samples": self.samples,
        }


def busy_cpu_seconds() -> float:
    """Core-seconds all processes on the machine have spent running since boot (idle and I/O wait excluded)."""
    times = psutil.cpu_times()
    return (
        times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
    )


def _process_cpu_seconds(process: psutil.Process) -> float | None:
    try:
        used = process.cpu_times()
    except psutil.NoSuchProcess:
        return None
    return used.user + used.system


class OtherProcessesCpu(TreeSampler):
    """Context manager: the core-seconds processes outside this one's tree ran during the block.

    Load averages cannot tell: a bench that keeps every core busy raises them by itself. The machine's busy
    time minus the tree's own is what others took from it. The tree is sampled every `interval` seconds and
    each process's CPU time is followed by pid, since a JVM started by a child Python process is never reaped
    by it (its time reaches no parent's children times); a process that lives less than one interval is
    missed and counts as another's.
    """

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        super().__init__(pid, interval, name="other-cpu")
        self.core_seconds = 0.0
        self.share = 0.0
        self._baseline: dict[int, float] = {}
        self._latest: dict[int, float] = {}

    def _sample(self) -> None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in tree:
            seconds = _process_cpu_seconds(process)
            if seconds is not None:
                self._latest[process.pid] = seconds  # a process born during the block starts from 0

    def __enter__(self) -> OtherProcessesCpu:
        self._sample()
        self._baseline = dict(self._latest)
        self._started = time.perf_counter(), busy_cpu_seconds()
        super().__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        wall_started, busy_started = self._started
        wall = time.perf_counter() - wall_started
        busy = busy_cpu_seconds() - busy_started
        own = sum(seconds - self._baseline.get(pid, 0.0) for pid, seconds in self._latest.items())
        self.core_seconds = max(0.0, busy - own)
        self.share = self.core_seconds / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0

    def summary(self) -> dict:
        """Core-seconds others ran, and their share of the machine's core-seconds during the block."""
        return {"core_seconds": round(self.core_seconds, 1), "share_of_cores": round(self.share, 4)}


class Stopwatch:
    """Wall-clock seconds of a `with` block (perf_counter)."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def measured(action: Callable[[], T]) -> tuple[T, dict]:
    """The action's result, with its wall-clock seconds and the driver's peak memory while it ran."""
    with PeakMemory() as memory, Stopwatch() as watch:
        result = action()
    return result, {"seconds": round(watch.seconds, 3), **memory.summary()}


class SparkJobs:
    """Context manager: runs the block under its own Spark job group and counts the jobs, stages and tasks it ran."""

    def __init__(self, spark: SparkSession, name: str):
        self.context = spark.sparkContext
        self.name = name
        self.counts: dict = {}

    def __enter__(self) -> SparkJobs:
        self.context.setJobGroup(self.name, self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        tracker = self.context.statusTracker()
        jobs = [tracker.getJobInfo(job) for job in tracker.getJobIdsForGroup(self.name)]
        stages = [tracker.getStageInfo(stage) for job in jobs if job for stage in job.stageIds]
        self.counts = {
            "jobs": len(jobs),
            "stages": sum(1 for stage in stages if stage),
            "tasks": sum(stage.numTasks for stage in stages if stage),
        }
        for key in ("spark.jobGroup.id", "spark.job.description"):
            self.context.setLocalProperty(key, None)  # later jobs belong to no group
