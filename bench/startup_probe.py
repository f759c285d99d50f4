"""Run in a fresh process by startup_bench: a Spark session with Delta made, one tiny Delta table written and read.

Prints one JSON line: the wall-clock moment the session was ready (`ready_at`, epoch seconds) and the
seconds of each phase from the start of this script.
"""

from __future__ import annotations

import json
import tempfile
import time

STARTED = time.perf_counter()


def main() -> None:
    """Import, start the session, round-trip a tiny Delta table, report, stop."""
    from o2o.config import load_config
    from o2o.spark import get_spark

    imported = time.perf_counter()
    spark = get_spark(load_config("local"))
    session = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="o2o-startup-") as folder:
        spark.range(10).write.format("delta").save(f"{folder}/probe")
        rows = spark.read.format("delta").load(f"{folder}/probe").count()
        ready = time.perf_counter()
        ready_at = time.time()
    spark.stop()
    print(
        json.dumps(
            {
                "ready_at": ready_at,
                "import_seconds": round(imported - STARTED, 3),
                "session_seconds": round(session - imported, 3),
                "delta_round_trip_seconds": round(ready - session, 3),
                "rows_read": rows,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
