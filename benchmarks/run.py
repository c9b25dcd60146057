"""Speed, memory and model-quality figures of the platform, printed with their targets and
ratios.

Each benchmark is a function of ``benchmarks/*_bench.py`` run in a child process
(:mod:`benchmarks.harness`), so its wall time and peak memory are its own. Usage:
``python benchmarks/run.py [--only NAME] [--suppliers N]``; see ``benchmarks/README.md`` for
the figures and the commands that printed them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository's root holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Result, run_child
from benchmarks.model_bench import SCENARIOS

BENCHES = ("simulator", "validation", "features", "incremental", "historical", "online")
MODEL_BENCHES = ("train", "predict", "score_daily", "rules", "bulk", "drift")
SERVING_BENCHES = ("serving",)
MONITOR_BENCHES = ("outcomes",)  # their own data: no simulation


def bench_simulator(suppliers: int, days: int, workdir: Path) -> Result:
    run = run_child("data_bench:simulate", suppliers=suppliers, days=days, workdir=str(workdir))
    return Result(
        f"simulate {suppliers:,} x {days} d", run.seconds, run.peak_gb, 180, 6, run.details
    )


def bench_validation(workdir: Path) -> Result:
    run = run_child("data_bench:validation", workdir=str(workdir))
    return Result("validate that folder", run.seconds, run.peak_gb, 180, 8, run.details)


def bench_features(workdir: Path) -> Result:
    run = run_child("feature_bench:build", workdir=str(workdir))
    name = "features build (validate+DuckDB+Feast)"
    return Result(name, run.seconds, run.peak_gb, 300, 8, run.details)


def bench_incremental(workdir: Path) -> Result:
    """One more day of data: the incremental build over a table of all but the last day. The
    folder of all but the last day and its full build are made by processes of their own (the
    full build's time and peak are in the details), so the figures are the incremental build's
    own."""
    run_child("feature_bench:export_all_but_last_day", workdir=str(workdir))
    full = run_child("feature_bench:full_build_of_yesterday", workdir=str(workdir))
    run = run_child("feature_bench:incremental", workdir=str(workdir))
    details = {
        **run.details,
        "yesterday_full_seconds": full.details["seconds"],
        "yesterday_full_peak_gb": round(full.peak_gb, 2),
    }
    return Result("one more day: incremental build", run.seconds, run.peak_gb, 300, 8, details)


def bench_historical(workdir: Path, rows: int) -> Result:
    run = run_child("feature_bench:historical", workdir=str(workdir), rows=rows)
    name = f"historical retrieval {rows:,} rows"
    return Result(name, run.seconds, run.peak_gb, 300, 8, run.details)


def bench_online(workdir: Path, store_kind: str) -> Result:
    run = run_child("feature_bench:online", workdir=str(workdir), store_kind=store_kind)
    name = f"online reads ({store_kind})"
    return Result(name, run.seconds, run.peak_gb, 600, 8, run.details)


def bench_train(
    workdir: Path,
    suppliers: int,
    days: int,
    seed: int,
    trials: int,
    scenario: str,
    experiment: str,
) -> Result:
    run = run_child(
        "model_bench:train",
        workdir=str(workdir),
        suppliers=suppliers,
        days=days,
        seed=seed,
        trials=trials,
        scenario=scenario,
        experiment=experiment,
    )
    d = run.details
    name = f"train {suppliers:,} x {d['days']} d, {trials} trials ({scenario})"
    return Result(name, d["train_seconds"], run.peak_gb, 900, 8, d)


def bench_information_limit(workdir: Path, train_table: dict, experiment: str) -> Result:
    """The information limit's fits, with their shares of the gap from the training benchmark's
    logistic baseline to its ceiling (same holdout rows)."""
    from training.metrics import gap_closed

    run = run_child("model_bench:information_limit", workdir=str(workdir), experiment=experiment)
    details = run.details
    for m in ("auc", "pr_auc"):
        base, top = train_table["logistic_baseline"][m], train_table["ceiling"][m]
        for fit in (
            details["regression_on_truth"],
            details["fits"]["logit_squared_error_with_login_history"],
        ):
            fit[f"{m}_gap_closed"] = round(gap_closed(fit[m], base, top), 3)
    name = "information limit (regression on truth)"
    return Result(name, run.seconds, run.peak_gb, 900, 8, details)


def bench_predict(workdir: Path, rows: int, span: str, days: int) -> Result:
    run = run_child("model_bench:predict", workdir=str(workdir), rows=rows, span=span, days=days)
    d = run.details
    return Result(f"predict {rows:,} rows ({span})", d["predict_seconds"], run.peak_gb, 60, 8, d)


def bench_score_daily(workdir: Path, database: str) -> Result:
    """``score-daily`` of the newest day of the simulated folder over the day before (prepared
    by processes of their own), with the champion of the training benchmark."""
    from benchmarks.daily_bench import SmtpSink, postgres_database

    url = postgres_database() if database == "postgresql" else None
    if not (workdir / "yesterday").is_dir():
        run_child("feature_bench:export_all_but_last_day", workdir=str(workdir))
    common = {"workdir": str(workdir), "tag": database}
    run_child("daily_bench:stage_export", source="yesterday", **common)
    sink = SmtpSink()  # the job's emails go over SMTP to a local server
    try:
        before = run_child("daily_bench:yesterday", database_url=url, smtp_url=sink.url, **common)
        run_child("daily_bench:stage_export", source="sim/raw", **common)
        sent_before = sink.received
        run = run_child("daily_bench:today", database_url=url, smtp_url=sink.url, **common)
    finally:
        sink.stop()
    details = {
        **run.details,
        "smtp_messages_received": sink.received - sent_before,
        "yesterday_seconds": round(before.seconds, 1),
    }
    return Result(f"score-daily ({database})", run.seconds, run.peak_gb, 180, 8, details)


def bench_bulk(workdir: Path) -> Result:
    """Bulk dry runs over every supplier of the ``score-daily`` benchmark's database; the
    figure is the dry run over all of them as the API runs it (the process's start aside)."""
    run = run_child("bulk_bench:dry_runs", workdir=str(workdir), tag="sqlite")
    figure = run.details["all_suppliers"]["seconds"]  # the slowest of its three runs
    return Result(
        f"bulk dry run of {run.details['all_suppliers']['matched']:,} suppliers",
        figure, run.peak_gb, 2, 8, {**run.details, "process_seconds": round(run.seconds, 1)},
    )  # fmt: skip


def bench_rules(workdir: Path) -> Result:
    """The intervention rules over every supplier the ``score-daily`` benchmark scored."""
    run = run_child("rules_bench:evaluate", workdir=str(workdir), tag="sqlite")
    # the whole process (reading the day's rows and scores included); the states' and the
    # evaluation's own seconds are in the details
    return Result(
        f"rules: states and evaluation of {run.details['suppliers']:,} suppliers",
        run.seconds, run.peak_gb, 10, 8, run.details,
    )  # fmt: skip


def bench_serving(
    workdir: Path,
    suppliers: int,
    days: int,
    trials: int,
    requests: int,
    memory_requests: int,
    seconds: float,
    floor_reads: int = 2000,
) -> Result:
    """The service under 8 clients (two workers) and its memory after many requests."""
    if not (workdir / "serve_home").is_dir():
        run_child(
            "serving_bench:prepare",
            workdir=str(workdir),
            suppliers=suppliers,
            days=days,
            trials=trials,
        )
    run = run_child(
        "serving_bench:load",
        workdir=str(workdir),
        workers=2,
        clients=8,
        requests=requests,
        memory_requests=memory_requests,
        seconds=seconds,
        floor_reads=floor_reads,
    )
    return Result("serving: load and memory", run.seconds, run.peak_gb, 1800, 8, run.details)


def report(result: Result) -> Result:
    """Print a benchmark's line and its details as they come."""
    print(result.line(), flush=True)
    print("   ", json.dumps(result.details), flush=True)
    return result


def bench_drift(workdir: Path) -> Result:
    """``monitor drift`` over the ``score-daily`` benchmark's feature table (the whole
    process: reading both windows, the champion's predictions, Evidently, saving, logging)."""
    run = run_child("monitor_bench:drift", workdir=str(workdir))
    return Result(
        f"drift report, {run.details['columns']} columns",
        run.seconds, run.peak_gb, 60, 8, run.details,
    )  # fmt: skip


def drop_page_cache() -> bool:
    """Write the dirty pages out and drop the kernel's page cache, so the next read comes from
    the disk (as a daily job's does, hours after the last); False where not permitted."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def bench_outcomes(
    workdir: Path, backend: str, accounts: int, days: int, cold: bool
) -> list[Result]:
    """``monitor outcomes`` over a year of stored daily predictions (the whole process: the
    reads, labels, every breakdown, the saved report), twice: the first run, whose prediction
    archive is empty (every judged day read from the database and archived), with the
    cancellations known the day before the last stored day; then the next day's run, which
    judges one day more and reads it alone from the database. The database is built by a
    process of its own first, once per workdir; ``cold``: the page cache is dropped before each
    run."""
    from benchmarks.outcomes_bench import LAST_DAY

    prepared = run_child(
        "outcomes_bench:prepare", workdir=str(workdir), backend=backend, accounts=accounts,
        days=days,
    )  # fmt: skip
    results = []
    for name, as_of, new_archive in (
        ("first run", str(LAST_DAY - timedelta(days=1)), True),
        ("a day later", None, False),
    ):
        dropped = cold and drop_page_cache()
        run = run_child(
            "outcomes_bench:outcomes", workdir=str(workdir), backend=backend, accounts=accounts,
            days=days, as_of=as_of, new_archive=new_archive,
        )  # fmt: skip
        run.details["page_cache_dropped"] = dropped
        results.append((name, run))
    checked = run_child(
        "outcomes_bench:check", workdir=str(workdir), backend=backend,
        report=results[-1][1].details["report"],
    )  # fmt: skip
    results[-1][1].details["against_sklearn"] = checked.details
    results[0][1].details["prepared"] = {k: v for k, v in prepared.details.items() if k != "url"}
    return [
        Result(
            f"outcomes, {name}, {run.details['rows']:,} rows, {backend}",
            run.seconds,
            run.peak_gb,
            60,
            8,
            run.details,
        )
        for name, run in results
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--suppliers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--data", type=Path, help="reuse this simulated folder (with raw/) instead of simulating"
    )
    parser.add_argument("--train-suppliers", type=int, default=20_000)
    parser.add_argument("--train-seed", type=int, default=2026, help="a seed no test uses")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument(
        "--scenario",
        choices=tuple(SCENARIOS),
        default="default",
        help="simulator options of the training benchmark's data (see SCENARIOS)",
    )
    parser.add_argument(
        "--experiment", default="experiments/churn_v3.yaml", help="the training experiment"
    )
    parser.add_argument(
        "--no-limit", action="store_true", help="skip the information-limit benchmark"
    )
    parser.add_argument("--predict-rows", type=int, default=100_000)
    parser.add_argument("--serving-suppliers", type=int, default=5_000)
    parser.add_argument("--serving-trials", type=int, default=8)
    parser.add_argument(
        "--serving-requests",
        type=int,
        default=5_000,
        help="requests per route when wrk is not installed (the Python client)",
    )
    parser.add_argument(
        "--serving-seconds", type=float, default=30, help="seconds per route under wrk"
    )
    parser.add_argument("--memory-requests", type=int, default=100_000)
    parser.add_argument(
        "--serving-floor-reads",
        type=int,
        default=2000,
        help="reads of each kind for the floor beside the service (1 supplier; 100: a 20th)",
    )
    parser.add_argument(
        "--outcome-accounts", type=int, default=100_000, help="active suppliers a day"
    )
    parser.add_argument("--outcome-days", type=int, default=365, help="days of stored predictions")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="drop the page cache before each outcome run (needs root; the details say whether "
        "it was dropped)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the benchmark's data, CS_HOME and models in this folder (default: a "
        "temporary folder, removed at the end)",
    )
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="with --workdir: predict with the champion a previous run trained there "
        "(skips the training and information-limit benchmarks)",
    )
    parser.add_argument(
        "--only",
        choices=BENCHES + MODEL_BENCHES + SERVING_BENCHES + MONITOR_BENCHES,
        action="append",
        help="run only these (the simulation always runs: the others use it)",
    )
    args = parser.parse_args()
    chosen = args.only or list(BENCHES + MODEL_BENCHES + SERVING_BENCHES + MONITOR_BENCHES)
    if args.reuse_model and not (args.workdir and (args.workdir / "train_home").is_dir()):
        parser.error("--reuse-model needs a --workdir where a previous run trained the models")
    with tempfile.TemporaryDirectory(prefix="wedsync-bench-") as tmp:
        workdir = Path(args.workdir or tmp).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if "serving" in chosen:
            report(
                bench_serving(
                    workdir,
                    args.serving_suppliers,
                    args.days,
                    args.serving_trials,
                    args.serving_requests,
                    args.memory_requests,
                    args.serving_seconds,
                    args.serving_floor_reads,
                )
            )
        if "outcomes" in chosen:
            for backend in ("sqlite", "postgresql"):
                for result in bench_outcomes(
                    workdir, backend, args.outcome_accounts, args.outcome_days, args.cold
                ):
                    report(result)
        if set(chosen) & {"train", "predict"} and not args.reuse_model:
            # the model benchmarks simulate their own, fresh, seed: run them first
            train = report(
                bench_train(
                    workdir,
                    args.train_suppliers,
                    args.days,
                    args.train_seed,
                    args.trials,
                    args.scenario,
                    args.experiment,
                )
            )
            if not args.no_limit:
                report(bench_information_limit(workdir, train.details["table"], args.experiment))
        if "predict" in chosen:
            for span in ("recent", "history"):
                report(bench_predict(workdir, args.predict_rows, span, args.days))
        if not set(chosen) & {*BENCHES, "score_daily", "rules", "bulk", "drift"}:
            return
        if args.data:
            if not (workdir / "sim").exists():
                (workdir / "sim").symlink_to(args.data.resolve())
        else:
            report(bench_simulator(args.suppliers, args.days, workdir))
        steps = {
            "validation": lambda: [bench_validation(workdir)],
            "features": lambda: [bench_features(workdir)],
            "incremental": lambda: [bench_incremental(workdir)],
            "historical": lambda: [bench_historical(workdir, args.entity_rows)],
            "online": lambda: [bench_online(workdir, "sqlite"), bench_online(workdir, "redis")],
        }
        for name in BENCHES[1:]:
            if name in chosen:
                for result in steps[name]():
                    report(result)
        if "score_daily" in chosen:
            if not (workdir / "train_home").is_dir():
                parser.error("score_daily needs a trained champion: add --only train")
            for database in ("sqlite", "postgresql"):
                report(bench_score_daily(workdir, database))
        if "rules" in chosen:
            if not (workdir / "home_daily_sqlite").is_dir():
                parser.error(
                    "rules needs the score_daily benchmark's home: add --only score_daily"
                )
            report(bench_rules(workdir))
        if "bulk" in chosen:
            if not (workdir / "home_daily_sqlite").is_dir():
                parser.error("bulk needs the score_daily benchmark's home: add --only score_daily")
            report(bench_bulk(workdir))
        if "drift" in chosen:
            if not (workdir / "home_daily_sqlite").is_dir():
                parser.error(
                    "drift needs the score_daily benchmark's home: add --only score_daily"
                )
            report(bench_drift(workdir))


if __name__ == "__main__":
    main()
