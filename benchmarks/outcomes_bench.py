"""Benchmark of the outcome monitor: ``wedsync-cs monitor outcomes`` over a year of stored daily
predictions, 100,000 suppliers a day, on SQLite and on PostgreSQL.

Scoring a year of days through ``score-daily`` would take the better part of a day, so the
benchmark writes the year's rows itself, in the daily job's table layout and storage order (a
day at a time), through ADBC bulk ingestion. They come from a small population model with known
churn: 100,000 accounts a day, each supplier with a daily hazard of cancelling; a cancelled
supplier's place is taken the next day by a new one (a constant active base, as a CS team
sees). The stored churn probability is the supplier's true 30-day probability with noise on
the log-odds (and the health score's another noise), so the realised AUC is that of a good but
imperfect model, and the figures can be checked against scikit-learn on the same rows.

The database is built once per ``workdir`` and backend and reused: building it takes minutes,
reading it is what is measured.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

LAST_DAY = date(2025, 12, 31)
SEED = 7301
JSON_POOL = 997  # distinct factor maps, cycled (the rows' JSON is realistic in size)


@dataclass(frozen=True)
class Population:
    """Suppliers (one row each) and their stored rows (one a supplier a day)."""

    supplier_ids: np.ndarray  # str
    hazard: np.ndarray  # daily probability of cancelling
    cancel_day: np.ndarray  # day number (days since 1970) of the cancellation, -1 for none
    row_supplier: np.ndarray  # int32 index into supplier_ids
    row_day: np.ndarray  # int32 day number


def simulate_population(accounts: int, days: int, seed: int = SEED) -> Population:
    """``accounts`` places over ``days`` days ending on ``LAST_DAY``: each place holds one
    active supplier a day; a supplier cancels with its daily hazard and is replaced the next
    day. Annual churn about 25 %, with a few high-risk suppliers."""
    rng = np.random.default_rng(seed)
    last = (np.datetime64(LAST_DAY, "D") - np.datetime64(0, "D")).astype(int)
    first = last - days + 1
    ids: list[str] = []
    hazards: list[float] = []
    cancels: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    for place in range(accounts):
        day = first
        while day <= last:
            hazard = float(min(0.05, rng.lognormal(np.log(4e-4), 1.2)))
            tenure = int(rng.geometric(hazard))  # days until the cancelling day
            cancel = day + tenure
            ids.append(f"sup_{place:06d}_{len(ids):07d}")
            hazards.append(hazard)
            starts.append(day)
            ends.append(min(cancel - 1, last))
            cancels.append(cancel if cancel <= last else -1)
            day = cancel
    start, end = np.asarray(starts), np.asarray(ends)
    lengths = end - start + 1
    row_supplier = np.repeat(np.arange(len(ids), dtype=np.int32), lengths)
    offsets = np.arange(len(row_supplier)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    row_day = (np.repeat(start, lengths) + offsets).astype(np.int32)
    order = np.lexsort((row_supplier, row_day))  # stored a day at a time
    return Population(
        np.asarray(ids),
        np.asarray(hazards),
        np.asarray(cancels),
        row_supplier[order],
        row_day[order],
    )


def _probabilities(population: Population, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The stored churn probability and the health score's: the true 30-day probability with
    noise on the log-odds (sd 0.6 and 0.8)."""
    rng = np.random.default_rng(seed)
    true = 1 - (1 - population.hazard[population.row_supplier]) ** 30
    logit = np.log(true / (1 - true))
    churn = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.6, len(logit)))))
    health = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.8, len(logit)))))
    return np.round(churn, 6), np.round(health, 6)


def build_history(url: str, accounts: int, days: int, seed: int = SEED) -> dict:
    """Create the operational schema at ``url`` and fill ``suppliers``, ``churn_predictions``
    and ``customer_health`` with the population's year."""
    import pyarrow as pa
    from sqlalchemy import insert

    from features.catalog import FAMILIES, TIERS, VENDOR_TYPES
    from serving.db.migrate import engine_for, upgrade
    from serving.db.models import Supplier

    began = time.perf_counter()
    population = simulate_population(accounts, days, seed)
    churn, health = _probabilities(population, seed + 1)
    engine = engine_for(url)
    upgrade(engine)
    rng = np.random.default_rng(seed + 2)
    tiers = rng.choice(list(TIERS), len(population.hazard))
    vendors = rng.choice(list(VENDOR_TYPES), len(tiers))
    countries = rng.choice(["GB", "US", "AU", "NZ", "IE", "ZA"], len(tiers))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    rows = []
    for i, supplier_id in enumerate(population.supplier_ids):
        cancel = int(population.cancel_day[i])
        cancelled_at = (
            None
            if cancel < 0
            else epoch + timedelta(days=cancel, seconds=int(rng.integers(86_400)))
        )
        rows.append(
            {
                "supplier_id": str(supplier_id),
                "vendor_type": str(vendors[i]),
                "subscription_tier": str(tiers[i]),
                "monthly_revenue": 49.0,
                "country": str(countries[i]),
                "signup_at": datetime(2023, 1, 1, tzinfo=UTC),
                "cancelled_at": cancelled_at,
                "status": "active" if cancelled_at is None else "cancelled",
                "synced_at": now,
            }
        )
    with engine.begin() as connection:
        for chunk in range(0, len(rows), 20_000):
            connection.execute(insert(Supplier), rows[chunk : chunk + 20_000])
    engine.dispose()

    sqlite = url.startswith("sqlite")
    pool = [
        json.dumps(
            {f: round(float(v), 6) for f, v in zip(FAMILIES, rng.normal(0, 0.4, 9), strict=True)}
        )
        for _ in range(JSON_POOL)
    ]
    written = 0
    bounds = np.flatnonzero(np.r_[True, population.row_day[1:] != population.row_day[:-1]])
    bounds = np.r_[bounds, len(population.row_day)]
    month = 30
    if not sqlite:
        _constraints(url, drop=True)  # PostgreSQL's bulk-load practice: load, then index
    with _ingest_connection(url) as connection, connection.cursor() as cursor:
        if sqlite:
            cursor.execute("PRAGMA cache_size = -2000000")  # 2 GB: the indexes grow large
        for k in range(0, len(bounds) - 1, month):
            rows_of = slice(bounds[k], bounds[min(k + month, len(bounds) - 1)])
            ids = population.supplier_ids[population.row_supplier[rows_of]]
            day_numbers = population.row_day[rows_of]
            n = len(ids)
            day = day_numbers.astype("datetime64[D]")
            computed = (day + 1).astype("datetime64[us]") + np.timedelta64(3, "h")
            p, h = churn[rows_of], health[rows_of]
            risk = np.where(
                p >= 0.5,
                "critical",
                np.where(p >= 0.25, "high", np.where(p >= 0.1, "medium", "low")),
            )
            if sqlite:
                day_col = pa.array(day.astype(str))
                computed_col = pa.array(np.char.replace(computed.astype(str), "T", " "))
                flag = pa.array((p >= 0.25).astype(np.int8))
            else:
                day_col = pa.array(day, pa.date32())
                computed_col = pa.array(computed, pa.timestamp("us", tz="UTC"))
                flag = pa.array(p >= 0.25)
            common = {"supplier_id": pa.array(ids), "day": day_col}
            predictions = pa.table(
                common
                | {
                    "churn_probability": pa.array(p),
                    "risk_level": pa.array(risk),
                    "factors": pa.array(pool).take(pa.array(np.arange(n) % JSON_POOL)),
                    "ltv_at_risk": pa.array(np.round(p * 49 * 24, 2)),
                    "prevention_cost": pa.array(np.full(n, 25.0)),
                    "intervention_recommended": flag,
                    "churn_model_version": pa.array(np.full(n, "churn-bench-1")),
                    "health_model_version": pa.array(np.full(n, "health-bench-1")),
                    "computed_at": computed_col,
                }
            )
            score = np.round(100 * (1 - h), 1)
            healthy = pa.table(
                common
                | {
                    "score": pa.array(score),
                    "risk_level": pa.array(risk),
                    "segment": pa.array(np.full(n, "established")),
                    "login_frequency": pa.array(np.round(1 - h, 3)),
                    "feature_adoption": pa.array(np.round(1 - p, 3)),
                    "churn_probability": pa.array(h),
                    "health_model_version": pa.array(np.full(n, "health-bench-1")),
                    "computed_at": computed_col,
                }
            )
            cursor.adbc_ingest("churn_predictions", predictions, mode="append")
            cursor.adbc_ingest("customer_health", healthy, mode="append")
            connection.commit()
            written += n
    if not sqlite:
        _constraints(url, drop=False)
    _record_days(url, population.row_day)
    return {
        "suppliers": len(population.supplier_ids),
        "rows": written,
        "days": days,
        "build_seconds": round(time.perf_counter() - began, 1),
    }


def _record_days(url: str, row_day: np.ndarray) -> None:
    """Each day in ``scored_days`` with its rows, as the daily job records a finished day."""
    from serving.db.migrate import engine_for
    from serving.db.scored_days import finish_day

    numbers, counts = np.unique(row_day, return_counts=True)
    engine = engine_for(url)
    try:
        for number, count in zip(numbers, counts, strict=True):
            day = date(1970, 1, 1) + timedelta(days=int(number))
            finish_day(engine, day, int(count), int(count))
    finally:
        engine.dispose()


def _constraints(url: str, drop: bool) -> None:
    """Drop, or create again and then vacuum, the primary keys, foreign keys and indexes of
    ``churn_predictions`` and ``customer_health`` (PostgreSQL's advice for a bulk load: "Populating
    a Database"); the definitions are the mapped tables' own, as the migrations made them."""
    import psycopg
    from sqlalchemy.schema import AddConstraint, DropConstraint

    from serving.db.migrate import engine_for
    from serving.db.models import ChurnPrediction, CustomerHealth

    engine = engine_for(url)
    tables = [ChurnPrediction.__table__, CustomerHealth.__table__]
    with engine.begin() as connection:
        for table in tables:
            constraints = [*table.foreign_key_constraints, table.primary_key]
            if drop:
                for index in table.indexes:
                    index.drop(connection)
                for constraint in constraints:
                    connection.execute(DropConstraint(constraint))
            else:
                for constraint in reversed(constraints):
                    connection.execute(AddConstraint(constraint))
                for index in table.indexes:
                    index.create(connection)
    engine.dispose()
    if not drop:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as connection:
            for table in tables:
                connection.execute(f"VACUUM ANALYZE {table.name}")


def _ingest_connection(url: str):
    from sqlalchemy.engine import make_url

    from serving.db.prediction_history import adbc_connect

    return adbc_connect(make_url(url))


def _database(workdir: Path, backend: str, accounts: int, days: int) -> tuple[str, dict | None]:
    """The benchmark database's URL for this size, and the build's figures when it was built
    now (None when an earlier run's is reused)."""
    tag = f"{accounts}x{days}"
    marker = workdir / f"outcomes_{backend}_{tag}.json"
    if marker.exists():
        return json.loads(marker.read_text())["url"], None
    if backend == "sqlite":
        path = workdir / f"outcomes_{tag}.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    else:
        from benchmarks.daily_bench import postgres_database

        url = postgres_database()
    built = build_history(url, accounts, days)
    marker.write_text(json.dumps({"url": url} | built))
    return url, built


def prepare(workdir: str, backend: str, accounts: int = 100_000, days: int = 365) -> dict:
    """Build the benchmark database unless an earlier run built it in ``workdir``, and bring it
    to the current schema (an earlier run's may predate a migration: its time is reported)."""
    from serving.db.migrate import engine_for, schema_state, upgrade

    url, built = _database(Path(workdir), backend, accounts, days)
    engine = engine_for(url)
    try:
        before = schema_state(engine).current
        began = time.perf_counter()
        after = upgrade(engine).current
    finally:
        engine.dispose()
    migrated = (
        None
        if before == after
        else {"from": before, "to": after, "seconds": round(time.perf_counter() - began, 1)}
    )
    return {"url": url, "built": built, "migrated": migrated}


def _settings(root: Path, backend: str, url: str):
    from wedsync_cs.settings import Settings

    home = root / f"home_outcomes_{backend}"
    return Settings(
        home=home, mlflow_tracking_uri=f"sqlite:///{home / 'mlflow.db'}", database_url=url
    )


def outcomes(
    workdir: str,
    backend: str,
    accounts: int = 100_000,
    days: int = 365,
    as_of: str | None = None,
    new_archive: bool = False,
) -> dict:
    """``run_outcomes``, the command's work (read, label, measure overall, per segment and per
    month, save the JSON report), over the database, without a champion; cancellations known by
    ``as_of`` (default: the newest stored day). ``new_archive``: the prediction archive is
    deleted first (the first run after an upgrade, which reads every judged day from the
    database)."""
    import shutil

    from wedsync_cs.monitor_jobs import run_outcomes

    root = Path(workdir)
    url, _ = _database(root, backend, accounts, days)
    settings = _settings(root, backend, url)
    if new_archive:
        shutil.rmtree(settings.prediction_archive_dir, ignore_errors=True)
    began = time.perf_counter()
    run = run_outcomes(settings, date.fromisoformat(as_of) if as_of else None)
    seconds = time.perf_counter() - began
    churn = run.summary["churn"]["overall"]
    return {
        "seconds": round(seconds, 1),
        "stages": run.summary["seconds"],
        "archive": run.summary["archive"]
        | {"days_not_archived": len(run.summary["archive"]["days_not_archived"])},
        "stored_days": run.summary["stored_days"],
        "judged_days": run.summary["days"],
        "rows": churn["n"],
        "positives": churn["positives"],
        "auc": round(churn["auc"], 6),
        "pr_auc": round(churn["pr_auc"], 6),
        "brier": round(churn["brier"], 6),
        "health_auc": round(run.summary["health"]["overall"]["auc"], 6),
        "months": len(run.summary["churn"]["by_month"]),
        "archive_mb": round(
            sum(f.stat().st_size for f in settings.prediction_archive_dir.iterdir()) / 1e6, 1
        ),
        "report": str(run.report),
    }


def check(workdir: str, backend: str, report: str) -> dict:
    """The report's overall churn figures against scikit-learn's on the same rows (read and
    labelled again, outside the measured process)."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    from monitoring.outcomes import realised_labels
    from serving.db.migrate import engine_for
    from serving.db.prediction_history import read_prediction_history

    summary = json.loads(Path(report).read_text())
    root = Path(workdir)
    url = next(json.loads(m.read_text())["url"] for m in root.glob(f"outcomes_{backend}_*.json"))
    engine = engine_for(url)
    first, last = (date.fromisoformat(d) for d in summary["days"])
    history = read_prediction_history(engine, first, last)
    engine.dispose()
    as_of = date.fromisoformat(summary["as_of"])
    labelled = realised_labels(history.frame, history.directory, as_of, summary["horizon_days"])
    y = labelled["label"].to_numpy()
    p = np.clip(labelled["churn_probability"].to_numpy(), 1e-6, 1 - 1e-6)
    ours = summary["churn"]["overall"]
    theirs = {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
    }
    return {
        "sklearn": {k: round(v, 6) for k, v in theirs.items()},
        "largest_difference": max(abs(ours[k] - theirs[k]) for k in theirs),
        "rows": len(y),
    }
