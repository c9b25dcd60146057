"""Benchmark of the drift monitoring: ``wedsync-cs monitor drift``'s work over the
``score-daily`` benchmark's 100,000-supplier feature table and the training benchmark's
champion (its training window against the table's last 30 days, 100,000 rows drawn from
each)."""

from __future__ import annotations

import time


def drift(workdir: str, max_rows: int = 100_000) -> dict:
    from benchmarks.daily_bench import _settings
    from wedsync_cs.monitor_jobs import run_drift

    settings = _settings(workdir, None, "sqlite")
    began = time.perf_counter()
    run = run_drift(settings, max_rows=max_rows)
    seconds = time.perf_counter() - began
    m = run.metrics
    return {
        "seconds": round(seconds, 1),
        "reference": str(run.reference),
        "current": str(run.current),
        "reference_rows": run.reference_rows,
        "current_rows": run.current_rows,
        "columns": len(m["columns"]),
        "drifted_share": round(m["drifted_share"], 4),
        "prediction": m["prediction"],
        "report_mb": round(run.report.stat().st_size / 1e6, 1),
    }
