"""bench/results/<date>.json (everything measured) and <date>.md (the same as tables a person reads)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

VERDICT = {True: "met", False: "**not met**", None: "not measured"}
# Other processes above this share of the cores during a run make its times worth less than a clean run's.
OTHERS_INFLATE_SHARE = 0.05


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _seconds(value: float | None) -> str:
    return "-" if value is None else (f"{value:.2f}" if value < 10 else f"{value:.1f}")


def _header(results: dict) -> list[str]:
    machine, settings = results["machine"], results["settings"]
    run = settings["scales_run"]
    skipped = (
        "; ".join(
            # RFM's entries carried no part name before 0f1aebd.
            f"{s.get('part', 'RFM')} {s['order_lines']:,} ({s['reason']})"
            for s in settings["scales_skipped"]
        )
        or "none"
    )
    load = machine["load_average_start"], machine["load_average_end"]
    return [
        f"# Benchmarks {results['date']}",
        "",
        f"Command: `{results['command']}` at commit `{results['git_commit']}`; started {results['started_at']}, "
        f"wall-clock {results['wall_seconds'] / 60:.1f} min in all. Every number below was measured in this run.",
        "",
        f"Machine: {machine['cores']} cores, {machine['memory_gib']} GiB, Python {machine['python']}, "
        f"Java {machine['java']}, pyspark {results['versions']['pyspark']}. 1-minute load average "
        f"{load[0][0]:.1f} at the start and {load[1][0]:.1f} at the end (the bench's own work included). "
        + _other_processes(results["parts"].values(), machine["cores"]),
        "",
        f"RFM scales run: {(', '.join(f'{n:,}' for n in run) + ' order lines') if run else 'none'} "
        f"(requested {', '.join(f'{n:,}' for n in settings['scales_requested'])}). "
        f"Scales skipped to keep within the {settings['budget_minutes']}-minute budget: {skipped}.",
        "",
    ]


def _other_processes(parts: Iterable[dict], cores: int) -> str:
    measured = [part for part in parts if "other_processes" in part]
    if not measured:
        return "CPU taken by other processes: not measured."
    core_seconds = sum(part["other_processes"]["core_seconds"] for part in measured)
    share = core_seconds / (sum(part["wall_seconds"] for part in measured) * cores)
    verdict = "times are inflated" if share > OTHERS_INFLATE_SHARE else "no more than background noise"
    return f"Other processes ran {core_seconds:,.1f} core-seconds during the parts, {share:.1%} of the cores ({verdict})."


def _others_share(part: dict) -> str:
    others = part.get("other_processes")
    return f"{others['core_seconds']:,.1f} ({others['share_of_cores']:.1%})" if others else "-"


def _targets(results: dict) -> list[str]:
    rows = [
        [t["target"], t["measured"], VERDICT[t["met"]] + (f" ({t['note']})" if t["note"] else "")]
        for t in results["targets"]
    ]
    return ["## Targets", "", *_table(["target", "measured", "status"], rows)]


def _parts(results: dict) -> list[str]:
    rows = []
    for name, part in results["parts"].items():
        memory = part.get("memory", {})
        before, after = part.get("load_average", [[None], [None]])
        rows.append(
            [
                name,
                _seconds(part.get("wall_seconds")),
                memory.get("peak_rss_mb", "-"),
                memory.get("peak_python_rss_mb", "-"),
                memory.get("peak_children_rss_mb", "-"),
                f"{before[0]:.1f} / {after[0]:.1f}" if before[0] is not None else "-",
                _others_share(part),
                part.get("error", "ok"),
            ]
        )
    return [
        "## Wall-clock and peak memory per part",
        "",
        "Peak resident memory of the driver: the Python process and its children (the JVM and any Python",
        "workers) summed at one instant, sampled every 0.2 s. Start-up's figures are of its own subprocesses.",
        "Other processes: the machine's busy CPU time minus this process tree's own during the part.",
        "",
        *_table(
            [
                "part",
                "wall-clock s",
                "peak RSS MB",
                "Python MB",
                "JVM + children MB",
                "load avg before / after",
                "other processes core-s (share of cores)",
                "status",
            ],
            rows,
        ),
    ]


def _rfm(result: dict) -> list[str]:
    rows = []
    for s in result["scales"]:
        checks = s["check"]
        rows.append(
            [
                f"{s['order_lines']:,}",
                f"{s['customers_scored']:,}",
                _seconds(s["generation_seconds"]) + ("" if s["generated"] else " (reused)"),
                f"{_seconds(s['spark']['seconds'])} ({s['spark']['jobs']} jobs, {s['spark']['stages']} stages)",
                _seconds(s["pandas"]["seconds"]),
                _seconds(s["duckdb"]["seconds"]),
                f"{_seconds(s['lean_spark_sql']['seconds'])} ({s['lean_spark_sql_over_duckdb']:.1f}x DuckDB, "
                f"{checks['lean_spark_sql_vs_spark']['rfm_mismatched_customers']} mismatches)",
                f"{s['spark_over_duckdb']:.1f}x",
                f"{s['spark_over_pandas']:.1f}x",
                f"{checks['pandas_vs_spark']['rfm_mismatched_customers']} / {checks['duckdb_vs_spark']['rfm_mismatched_customers']}",
                f"{checks['pandas_vs_spark']['score_mismatched_customers']} / {checks['duckdb_vs_spark']['score_mismatched_customers']}",
                f"{s['spark']['peak_rss_mb']:.0f} / {s['pandas']['python_rss_growth_mb']:.0f} / {s['duckdb']['python_rss_growth_mb']:.0f}",
            ]
        )
    lines = [
        "## RFM: the project's Spark code vs pandas vs DuckDB",
        "",
        "Same Parquet (silver.orders + silver.order_lines shape) per scale, as-of "
        f"{result['as_of']}, look-back {result['lookback_days']} days. Each time reads the Parquet and computes every "
        "customer's R, F, M and 1-5 scores: Spark = `o2o.gold.rfm` (order_facts, customer_values, score_rfm; "
        "it also computes the online/offline R, F, M, channels, first channel, gaps and above-mean flags gold keeps) "
        "into the no-op sink, with the customer values held in memory as the gold stage holds them, in a warm session "
        f"(warm-up run {_seconds(result['warm_up_seconds'])} s, not counted); pandas = groupby + rank-based bins; "
        "DuckDB = one SQL statement with window functions. Diagnostic, not a target: the same SQL statement run "
        "by Spark SQL (R, F, M and scores only, none of the project's omnichannel columns). Mismatches: customers whose values differ from Spark's "
        "or who are on one side only (exact equality, money in cents).",
        "",
        *_table(
            [
                "order lines",
                "customers",
                "generate s",
                "Spark s",
                "pandas s",
                "DuckDB s",
                "diagnostic: lean Spark SQL s",
                "Spark/DuckDB",
                "Spark/pandas",
                "R,F,M mismatches pandas / DuckDB",
                "score mismatches pandas / DuckDB",
                "peak MB: Spark (Python + JVM) / pandas, DuckDB (Python growth)",
            ],
            rows,
        ),
    ]
    if result.get("profile"):
        profile_rows = [
            [
                step,
                _seconds(p["seconds"]),
                p["jobs"],
                p["stages"],
                p["tasks"],
                p.get("parquet_scans", "-"),
                p.get("shuffles", "-"),
                p.get("broadcasts", "-"),
            ]
            for step, p in result["profile"]["steps"].items()
        ]
        lines += [
            f"Where Spark's time goes ({result['profile']['order_lines']:,} lines; each step timed on its own):",
            "",
            *_table(
                ["step", "s", "jobs", "stages", "tasks", "Parquet scans in plan", "shuffles", "broadcasts"],
                profile_rows,
            ),
        ]
    return lines


def _als(result: dict) -> list[str]:
    sizes = result["sizes"]
    lines = [
        "## Implicit ALS: Spark MLlib vs the `implicit` library",
        "",
        *_als_fixed_cost(sizes),
    ]
    for size in sizes:
        lines += _als_size(size)
    return lines


def _als_fixed_cost(sizes: list[dict]) -> list[str]:
    """The line through the smallest and largest size: each library's cost per million confidences and per fit."""
    if len(sizes) < 2:
        return []
    small, large = sizes[0], sizes[-1]
    added = (large["ratings"] - small["ratings"]) / 1e6
    if added <= 0:
        return []
    parts = []
    for name, label in (("spark_als", "Spark"), ("implicit_cg", "implicit (CG)")):
        per_million = (large["fit"][name]["seconds"] - small["fit"][name]["seconds"]) / added
        fixed = small["fit"][name]["seconds"] - per_million * small["ratings"] / 1e6
        per_fit = "about 0 s" if abs(fixed) < 0.2 else f"{fixed:.2f} s"
        parts.append(f"{label} {per_million:.2f} s per million confidences and {per_fit} per fit")
    iterations = int(small["params"].get("maxIter", 0)) or None
    return [
        "Fit time as a line through the smallest and the largest size: "
        + "; ".join(parts)
        + (f" ({iterations} iterations per fit)" if iterations else "")
        + ". A fixed cost per fit weighs most on a small matrix, so the ratio depends on the size.",
        "",
    ]


def _als_size(result: dict) -> list[str]:
    fits, quality = result["fit"], result["quality"]
    labels = {
        "spark_als": "Spark MLlib ALS (o2o.reco.als)",
        "implicit_cg": "implicit CPU ALS, conjugate gradient (its default)",
        "implicit_cholesky": "implicit CPU ALS, exact solve",
    }
    rows = [
        [
            labels[name],
            _seconds(fits[name]["seconds"]),
            f"{fits[name]['seconds'] / fits['implicit_cg']['seconds']:.1f}x",
            f"{quality[name]['precision_at_k']:.4f}",
            f"{quality[name]['ndcg_at_k']:.4f}",
            f"{fits[name]['peak_rss_mb']:.0f}",
        ]
        for name in labels
    ]
    checks = result["metric_cross_check"]
    return [
        f"### {result['events']:,} events",
        "",
        f"Synthetic interactions ({result['events']:,} events) through the project's features code: "
        f"{result['ratings']:,} customer x item confidences, {result['customers']:,} customers, {result['items']:,} items; "
        f"test = purchases of the last 14 days by {result['test_customers']:,} known customers. Parameters {result['params']} "
        "for both (implicit gets 1 + alpha x r as its matrix; note Spark scales the regularization by each "
        "user's/item's rating count, implicit does not). Top 10 without filtering bought items, as the project evaluates. "
        "Each library first fitted the same model once, untimed"
        + (
            f" (Spark's took {_seconds(fits['spark_als']['warm_up_seconds'])} s: the JVM's first use of ALS code)"
            if "warm_up_seconds" in fits["spark_als"]
            else ""
        )
        + "; the timed fits run warm.",
        "",
        *_table(["model", "fit s", "fit vs implicit CG", "precision@10", "NDCG@10", "peak MB"], rows),
        "Metric cross-check (same recommendations scored by `o2o.reco.metrics` in Spark and by the numpy code): "
        + "; ".join(
            f"{name}: largest difference {c['max_abs_difference']:.1e}" for name, c in checks.items()
        ),
        "",
    ]


def _movielens(result: dict) -> list[str]:
    als, svd = result["als"], result["svd"]
    rows = [
        [
            f"ALS (Spark MLlib) {als['params']}",
            f"{als['rmse']:.4f}",
            f"{als['mae']:.4f}",
            _seconds(als["fit_seconds"]),
            "measured",
        ]
    ]
    if svd["source"] == "measured":
        rows.append(
            [
                "Surprise SVD (defaults)",
                f"{svd['rmse']:.4f}",
                f"{svd['mae']:.4f}",
                _seconds(svd["fit_seconds"]),
                "measured",
            ]
        )
        rows.append(
            [
                "Surprise SVD, pairs ALS scores",
                f"{svd['rmse_known_pairs']:.4f}",
                f"{svd['mae_known_pairs']:.4f}",
                "",
                "measured",
            ]
        )
    else:
        rows.append(
            ["Surprise SVD", f"{svd['rmse']:.3f}", f"{svd['mae']:.3f}", "-", f"published ({svd['reason']})"]
        )
    fold_rows = [
        [
            f"u{a['fold']}",
            f"{a['rmse']:.4f}",
            f"{a['mae']:.4f}",
            _seconds(a["fit_seconds"]),
            f"{a['scored_rows']}/{a['test_rows']}",
        ]
        + (
            [f"{s['rmse']:.4f}", f"{s['mae']:.4f}", _seconds(s["fit_seconds"])]
            if svd["source"] == "measured"
            else ["-", "-", "-"]
        )
        for a, s in zip(als["folds"], svd.get("folds", als["folds"]), strict=True)
    ]
    return [
        "## MovieLens 100K: explicit ALS vs Surprise SVD (same official folds, same process)",
        "",
        *_table(["model", "mean RMSE", "mean MAE", "mean fit s", "source"], rows),
        *_table(
            ["fold", "ALS RMSE", "ALS MAE", "ALS fit s", "ALS scored", "SVD RMSE", "SVD MAE", "SVD fit s"],
            fold_rows,
        ),
    ]


def _startup(result: dict) -> list[str]:
    rows = [
        [
            name,
            _seconds(r["seconds_to_ready"]),
            _seconds(r["import_seconds"]),
            _seconds(r["session_seconds"]),
            _seconds(r["delta_round_trip_seconds"]),
            _seconds(r["seconds_to_exit"]),
            f"{r['peak_rss_mb']:.0f}",
        ]
        for name, r in result.items()
    ]
    return [
        "## Start-up: a new process to a ready Spark session with Delta",
        "",
        "Each is a new Python process (`bench/startup_probe.py`): import, `o2o.spark.get_spark`, write and read a "
        "10-row Delta table. Cold = the first JVM of this run (the OS file cache was not dropped); warm = a second "
        "new process right after.",
        "",
        *_table(
            ["run", "to ready s", "import s", "session s", "Delta write+read s", "to exit s", "peak MB"], rows
        ),
    ]


def _gold(result: dict) -> list[str]:
    rows = [
        [
            f"{s['order_lines']:,}",
            _seconds(s["stage_seconds"]),
            _seconds(s["gate_seconds"]),
            f"{s['gate_share']:.1%}",
            f"{s['order_lines_per_second']:,}",
            f"{s['rows_out'].get('customer_rfm', 0):,}",
            "on" if s["data_docs"] else "off",
        ]
        for s in result["scales"]
    ]
    return [
        "",
        "## Gold stage and its quality gates",
        "",
        f"The whole gold stage (`o2o run gold`: every snapshot, its gate, its Delta write) as of {result['as_of']},",
        "on silver tables holding the RFM part's synthetic orders. Gate time is the time inside the gates",
        "(Great Expectations and our own checks, on frames already computed), Data Docs rendering included.",
        "",
        *_table(
            ["order lines", "stage s", "gates s", "gate share", "lines/s", "RFM customers", "Data Docs"], rows
        ),
    ]


def _bronze(result: dict) -> list[str]:
    rows = [
        [
            f"{s['order_lines']:,}",
            f"{s['landing_records']:,}",
            _seconds(s["bronze"]["seconds"]),
            _seconds(s["bronze"]["seconds_without_gates"]),
            f"{s['bronze']['gate_share']:.1%}",
            f"{s['bronze']['gate_share_summed_over_threads']:.1%}",
            s["bronze"]["peak_rss_mb"],
        ]
        for s in result["scales"]
    ]
    return [
        "",
        "## Bronze and its quality gates",
        "",
        f"Bronze alone (`o2o run bronze`) on {result['days']} days of generated landing files into an empty lake,",
        "then the same files into a second empty lake with every gate switched off. Gate share: the difference",
        "over the time with gates. Summed: time inside the gates minus their own checkpoints, summed over",
        "bronze's parallel feed threads, over the stage's time (counts waiting for the one validation at a time)."
        + (
            f" An untimed warm-up bronze run of {result['warmup']['order_lines']:,} order lines ran first."
            if (result.get("warmup") or {}).get("seconds")
            else " No warm-up ran: the first scale carries the JVM's first-use costs."
        ),
        "",
        *_table(
            [
                "order lines",
                "landing records",
                "with gates s",
                "without s",
                "gate share",
                "summed",
                "peak MB",
            ],
            rows,
        ),
    ]


def _pipeline(result: dict) -> list[str]:
    rows = []
    for scale in result["scales"]:
        for when, stages in (
            ("full load", scale["stages"]),
            ("one more day", scale["incremental_day"]["stages"]),
        ):
            for name, stage in stages.items():
                rows.append(
                    [
                        f"{scale['order_lines']:,}",
                        when,
                        name,
                        _seconds(stage["seconds"]),
                        f"{stage['rows_in']:,}",
                        f"{stage['rows_per_second']:,}" if stage["rows_per_second"] is not None else "-",
                        f"{stage['gate_share']:.1%}" if stage["gate_share"] is not None else "-",
                        stage["peak_rss_mb"],
                    ]
                )
    exponent_rows = [[pair, *values.values()] for pair, values in result["exponents"].items()]
    stages = list(next(iter(result["exponents"].values())).keys()) if result["exponents"] else []
    lines = [
        "",
        "## Whole pipeline from landing files",
        "",
        f"Generated feeds over {result['days']} days, every stage as `o2o run <stage>` runs it (one warm session),",
        "then one more day of files through bronze, silver and gold. Rows in: landing records (bronze), bronze",
        "rows of the increment (silver), orders read (gold). Peak MB: driver Python + JVM at one instant.",
        "Gate share: time inside quality gates minus computing the frame they check, over the stage's time.",
        "Bronze gates its feeds in parallel threads, so its full-load share is wall-clock: its time minus the",
        "same files' time into a scratch lake with gates off, over its time (one more day: summed over threads)."
        + (
            f" An untimed warm-up pipeline of {result['warmup']['order_lines']:,} order lines ran first."
            if (result.get("warmup") or {}).get("seconds")
            else " No warm-up ran: the first scale carries the JVM's first-use costs."
        ),
        "",
        *_table(
            ["order lines", "run", "stage", "seconds", "rows in", "rows/s", "gate share", "peak MB"], rows
        ),
    ]
    if exponent_rows:
        lines += [
            "Exponent of time against order lines (1.0 = linear):",
            "",
            *_table(["scales", *stages], exponent_rows),
        ]
    return lines


def markdown(results: dict) -> str:
    """The Markdown report of one run."""
    lines = _header(results) + _targets(results) + _parts(results)
    sections = {
        "rfm": _rfm,
        "gold": _gold,
        "bronze": _bronze,
        "pipeline": _pipeline,
        "als": _als,
        "movielens": _movielens,
        "startup": _startup,
    }
    for name, render in sections.items():
        part = results["parts"].get(name) or {}
        if part.get("result"):
            lines += render(part["result"])
    return "\n".join(lines).rstrip() + "\n"


def write(results: dict, folder: Path) -> tuple[Path, Path]:
    """Write <date>.json and <date>.md into `folder`; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = folder / f"{results['date']}.json", folder / f"{results['date']}.md"
    _write_atomically(json_path, json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    _write_atomically(markdown_path, markdown(results))
    return json_path, markdown_path
