"""Benchmarks of the data source: simulating a folder and validating it."""

from __future__ import annotations

from pathlib import Path


def simulate(suppliers: int, days: int, workdir: str) -> dict:
    from simulator import SimulationConfig, simulate

    s = simulate(
        SimulationConfig(suppliers=suppliers, days=days, seed=1),
        Path(workdir) / "sim",
        overwrite=True,
    )
    return {
        "rows": s.rows,
        "monthly_churn_rate": round(s.monthly_churn_rate, 4),
        "truth_rows": s.truth_rows,
        "truth_mean_se": round(s.truth_mean_se, 5),
        "inner_seconds": round(s.seconds, 1),
    }


def validation(workdir: str) -> dict:
    from features.raw_reader import load_raw

    tables = load_raw(Path(workdir) / "sim" / "raw")
    return {
        "rows": int(sum(len(f) for f in tables.frames.values())),
        "ok": tables.report.ok,
    }
