"""The benchmarks run (at a tiny size): each benchmark function in its own process, its figures
printed with their targets and ratios. The figures themselves belong to benchmarks/README.md."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^(?P<name>.+?)\s+(?P<seconds>[\d.]+) s  \(target\s+\d+ s, ratio [\d.]+\)\s+"
    r"(?P<gb>[\d.]+) GB  \(target \d+ GB, ratio [\d.]+\)$"
)


def _run(tmp_path: Path, *args: str) -> dict[str, dict]:
    out = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--workdir", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.strip().splitlines()
    figures = {}
    for head, details in zip(lines[::2], lines[1::2], strict=True):
        match = LINE.match(head)
        assert match, head
        assert float(match["seconds"]) > 0 and float(match["gb"]) > 0
        figures[match["name"].strip()] = json.loads(details)
    return figures


def test_feature_benchmarks_print_their_figures(tmp_path: Path) -> None:
    figures = _run(
        tmp_path,
        "--suppliers", "150", "--days", "120", "--entity-rows", "300",
        "--only", "validation", "--only", "features", "--only", "incremental",
        "--only", "historical",
    )  # fmt: skip
    assert figures["simulate 150 x 120 d"]["rows"]["suppliers"] == 150
    assert figures["validate that folder"]["ok"] is True
    built = figures["features build (validate+DuckDB+Feast)"]
    assert built["rows"] > 0 and built["days"] > 0
    one_more = figures["one more day: incremental build"]
    # the incremental table keeps yesterday's daily rows and adds today's
    assert one_more["days_built"] == 1 and 0 < one_more["rows_written"] < built["rows"]
    assert one_more["rows_total"] >= built["rows"]
    assert figures["historical retrieval 300 rows"]["rows"] == 300


def test_model_benchmarks_print_their_figures(tmp_path: Path) -> None:
    figures = _run(
        tmp_path,
        "--train-suppliers", "300", "--days", "200", "--trials", "2", "--no-limit",
        "--predict-rows", "100", "--only", "train", "--only", "predict",
    )  # fmt: skip
    train = figures["train 300 x 200 d, 2 trials (default)"]
    assert {"churn_model", "logistic_baseline", "ceiling"} <= set(train["table"])
    for span in ("recent", "history"):
        assert figures[f"predict 100 rows ({span})"]["status"] == {"ok": 100}
    assert 0.5 < train["timing"]["c_index"] <= 1


def test_score_daily_benchmarks_print_their_figures(tmp_path: Path) -> None:
    figures = _run(
        tmp_path,
        "--suppliers", "150", "--days", "200", "--train-suppliers", "300", "--trials", "2",
        "--no-limit", "--only", "train", "--only", "score_daily", "--only", "rules",
        "--only", "bulk", "--only", "drift",
    )  # fmt: skip
    for database in ("sqlite", "postgresql"):
        daily = figures[f"score-daily ({database})"]
        assert daily["scored"] == daily["active"] > 0
        assert set(daily["stage_seconds"]) >= {"feature build", "materialise", "write"}
    rules = next(v for k, v in figures.items() if k.startswith("rules: "))
    assert rules["suppliers"] == figures["score-daily (sqlite)"]["scored"]
    assert sum(rules["due_by_rule"].values()) >= rules["suppliers_with_a_due_rule"]
    for database in ("sqlite", "postgresql"):  # the day's emails crossed a real SMTP server
        daily = figures[f"score-daily ({database})"]
        emails = daily["delivered"].get("email sent", 0)
        assert emails == daily["smtp_messages_received"]
    drift = next(v for k, v in figures.items() if k.startswith("drift report, "))
    assert drift["reference_rows"] > 0 and drift["current_rows"] > 0 and drift["columns"] > 50
    assert 0 <= drift["drifted_share"] <= 1 and drift["prediction"]["method"]
    bulk = next(v for k, v in figures.items() if k.startswith("bulk dry run of "))
    everyone = bulk["all_suppliers"]
    assert everyone["matched"] == everyone["to_contact"] + sum(everyone["excluded"].values())
    assert bulk["high_and_critical"]["matched"] <= everyone["matched"]


def test_serving_benchmark_prints_its_figures(served, tmp_path: Path) -> None:
    """The load and the memory of the service over the session's served home (the benchmark
    prepares its own by the same commands, simulate, train, db upgrade, score-daily, when the
    workdir has none)."""
    (tmp_path / "serve_home").symlink_to(served.home, target_is_directory=True)
    figures = _run(
        tmp_path,
        "--only", "serving", "--serving-requests", "40", "--serving-seconds", "1",
        "--serving-floor-reads", "100", "--memory-requests", "1100",
    )  # fmt: skip
    serving = figures["serving: load and memory"]
    for scenario in ("health_score_1", "score_1", "score_100"):
        assert serving[scenario]["errors"] == 0 and serving[scenario]["p99_ms"] > 0
    for read in (
        "get_online_features",
        "service_reader",
        "score_in_process",
        "live_scoring_in_process",
    ):
        assert serving["floor_online_read"][f"{read}_1"]["p50_ms"] > 0
        assert serving["floor_online_read"][f"{read}_100"]["p99_ms"] > 0
    assert serving["memory"]["requests"] >= 1100 and serving["memory"]["errors"] == 0


def test_outcome_benchmark_prints_its_figures(tmp_path: Path) -> None:
    """A year shrunk to 60 days of 300 accounts, on SQLite and PostgreSQL: the first run reads
    every judged day from the database and archives it, the next day's reads one; the figures
    equal scikit-learn's on the same rows."""
    args = ("--only", "outcomes", "--outcome-accounts", "300", "--outcome-days", "60")
    figures = _run(tmp_path, *args)
    for backend in ("sqlite", "postgresql"):
        first = figures[f"outcomes, first run, {29 * 300:,} rows, {backend}"]
        later = figures[f"outcomes, a day later, {30 * 300:,} rows, {backend}"]
        # 29, then 30, of the 60 days are a horizon old; 300 accounts a day
        assert first["archive"]["days_from_database"] == first["archive"]["days_archived"] == 29
        assert first["archive"]["days_from_archive"] == 0
        assert later["archive"]["days_from_archive"] == 29
        assert later["archive"]["days_from_database"] == later["archive"]["days_archived"] == 1
        assert later["archive_mb"] > 0
        assert later["stored_days"][1] == "2025-12-31" and later["months"] >= 1
        assert 0 < later["positives"] < later["rows"]
        assert later["against_sklearn"]["rows"] == later["rows"]
        assert later["against_sklearn"]["largest_difference"] < 1e-9
