"""``wedsync-cs score-daily``: one day of data in, every active supplier scored and stored.

Wiring only: the incremental feature build (:mod:`feature_repo.build`), materialisation, the
directory sync (:mod:`serving.db.directory`), the Scorer over the day's feature rows
(:mod:`serving.scorer`), the day's rows (:mod:`serving.daily`) and their batched upserts
(:mod:`serving.db.scores`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import typer

from wedsync_cs.settings import Settings

if TYPE_CHECKING:  # the job imports its parts when it runs
    from monitoring.kpis import KpiValue
    from serving.automation import DayInterventions
    from serving.dispatch import DispatchReport

CHUNK_ROWS = 20_000  # rows scored at a time: bounds the memory of the TreeSHAP matrices


@dataclass
class DailyRun:
    """What one run did."""

    day: date
    backfill: bool
    active: int = 0
    scored: int = 0
    churn_levels: dict[str, int] = field(default_factory=dict)
    health_bands: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0  # the stages overlap (materialisation runs beside the others)
    build_seconds: dict[str, float] = field(default_factory=dict)  # the feature build's parts
    keys_forgotten: int = 0  # Idempotency-Keys past their retention
    interventions: DayInterventions | None = None  # what the rules recorded (not a backfill)
    delivery: DispatchReport | None = None  # what the outbox delivered (not a backfill)
    kpis: list[KpiValue] = field(default_factory=list)  # the day's KPIs, as stored
    agents: int = 0  # agents' performance rows stored
    uplift_scores: Path | None = None  # the day's uplift scores (targeting on for some type)

    @property
    def unscored(self) -> int:
        return self.active - self.scored


@contextmanager
def _stage(run: DailyRun, name: str) -> Iterator[None]:
    began = time.perf_counter()
    typer.echo(f"  {name} ...", nl=False)
    yield
    run.seconds[name] = time.perf_counter() - began
    typer.echo(f" {run.seconds[name]:.1f} s")


def _day_features(table: Path, day: date) -> pd.DataFrame:
    """The feature rows of ``day`` (stamped the next midnight UTC: its data is complete)."""
    stamp = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    return pq.read_table(table, filters=[("event_timestamp", "==", stamp)]).to_pandas()


def _contract_table(raw: Path, name: str) -> pd.DataFrame:
    return pq.read_table(Path(raw) / f"{name}.parquet").to_pandas()


def score_daily(settings: Settings, raw: Path, as_of: date | None = None) -> DailyRun:
    """Build, materialise, sync and score one day; print each stage and a summary.

    Raises:
        DatabaseNotReadyError: the operational database is unreachable or behind.
        LookupError: no champion model is registered yet.
        ValueError: ``as_of`` is outside the export's days.
        RawDataError: the export breaks the contract.
    """
    from feature_repo.build import extends_last_build
    from serving.automation import check_rule_templates
    from serving.db.migrate import require_current
    from serving.interventions import forget_idempotency_keys
    from serving.rules import load_rules
    from training.registry import load_champions
    from wedsync_cs.database import operational_engine
    from wedsync_cs.feature_jobs import build_features

    began = time.perf_counter()
    engine = operational_engine(settings)
    require_current(engine)
    champions = load_champions(settings.tracking_uri, settings.threads)
    check_rule_templates(load_rules(settings.rules_path))  # before hours of work, not after
    settings.ensure_home()
    run = DailyRun(day=as_of or date.min, backfill=as_of is not None)
    typer.secho(f"Scoring the day of {raw}", bold=True)

    with _stage(run, "feature build"):
        incremental = extends_last_build(settings.feature_table_path, raw)
        extra = (as_of,) if as_of is not None else ()
        build = build_features(settings, raw, incremental=incremental, extra_days=extra)
    run.build_seconds = dict(build.stage_seconds)
    typer.echo("    (" + ", ".join(f"{k} {v:.1f} s" for k, v in run.build_seconds.items()) + ")")
    last = date.fromisoformat(build.last_day)
    day = as_of or last
    if not date.fromisoformat(build.first_day) <= day <= last:
        raise ValueError(
            f"--as-of {day} is outside the export's days ({build.first_day} to {last})"
        )
    run.day, run.backfill = day, day < last
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)

    materialising = None if run.backfill else _start_materialising(settings, end)
    try:
        missing = _score_and_store(run, settings, engine, champions, raw, day, end)
        forget_before = datetime.now(UTC) - timedelta(days=settings.idempotency_days)
        run.keys_forgotten = forget_idempotency_keys(engine, forget_before)
        if materialising is not None:
            _finish_materialising(run, materialising)
    finally:
        if materialising is not None and materialising.poll() is None:
            materialising.kill()
            materialising.wait()
    engine.dispose()
    run.wall_seconds = time.perf_counter() - began
    _print_run(run, missing)
    return run


def _start_materialising(settings: Settings, end: datetime) -> subprocess.Popen:
    """Materialisation up to ``end`` in a process of its own (see
    :mod:`wedsync_cs.materialise_worker`), beside the stages that follow."""
    from wedsync_cs.materialise_worker import SETTINGS_FIELDS

    typer.echo("  materialise ... started in a process of its own, beside the next stages")
    process = subprocess.Popen(
        [sys.executable, "-m", "wedsync_cs.materialise_worker", end.isoformat()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(settings.model_dump_json(include=set(SETTINGS_FIELDS)))
    process.stdin.close()
    process.stdin = None  # written and closed: communicate() later only reads
    return process


def _finish_materialising(run: DailyRun, process: subprocess.Popen) -> None:
    """Wait for the materialisation; its time (and the wait for it) into ``run``.

    Raises:
        RuntimeError: it failed (the scores of the day are stored; a rerun materialises).
    """
    began = time.perf_counter()
    out, err = process.communicate()
    run.seconds["materialise, waited for"] = time.perf_counter() - began
    if process.returncode:
        raise RuntimeError(
            f"materialisation failed (exit {process.returncode}); the day's scores are stored, "
            f"rerun score-daily to materialise:\n{err[-3000:]}"
        )
    run.seconds["materialise"] = json.loads(out.strip().splitlines()[-1])["seconds"]
    typer.echo(
        f"  materialise: {run.seconds['materialise']:.1f} s in its own process "
        f"(waited {run.seconds['materialise, waited for']:.1f} s for it)"
    )


def _score_and_store(
    run: DailyRun,
    settings: Settings,
    engine,
    champions,
    raw: Path,
    day: date,
    end: datetime,
) -> int:
    """Sync the directory, score the day's rows and upsert them; returns how many active
    suppliers had no feature row."""
    from feature_repo.readers import FrameFeatureReader
    from serving.automation import record_day
    from serving.daily import ServedVersions, day_rows
    from serving.db.directory import (
        directory_rows,
        sync_interventions_log,
        sync_milestones,
        write_directory,
    )
    from serving.db.models import ChurnPrediction, CustomerHealth
    from serving.db.scored_days import begin_day, finish_day
    from serving.db.scores import previous_scores, record_versions, upsert
    from serving.due import SupplierState
    from serving.rules import load_rules
    from serving.scorer import Scorer
    from serving.states import message_facts, supplier_states
    from training.registry import CHURN_MODEL, HEALTH_MODEL
    from training.timing import TIMING_MODEL

    with _stage(run, "directory sync"):
        suppliers = _contract_table(raw, "suppliers")
        cancellations = _contract_table(raw, "cancellations")
        rows = directory_rows(suppliers, cancellations, end)
        directory = pd.DataFrame(rows)
        if not run.backfill or _directory_older_than(engine, end):
            # a backfill never rolls the directory back to an older day (but brings it on)
            write_directory(engine, rows)
            sync_milestones(engine, _contract_table(raw, "milestones"), end)
            if (raw / "interventions_log.parquet").exists():  # an optional table
                sync_interventions_log(engine, _contract_table(raw, "interventions_log"), end)
        active = directory[directory["status"] == "active"]
        run.active = len(active)

    with _stage(run, "read features"):
        features = _day_features(settings.feature_table_path, day)
        features = features[features["supplier_id"].isin(set(active["supplier_id"]))]
        missing = run.active - features["supplier_id"].nunique()

    scorer = Scorer(champions, FrameFeatureReader(features))
    health_rows: list[dict] = []
    prediction_rows: list[dict] = []
    states: list[SupplierState] = []
    facts: dict[str, dict] = {}
    computed_at = datetime.now(UTC)
    versions = ServedVersions(
        churn=champions.churn_version,
        health=champions.health_version,
        timing=champions.timing_version,
    )
    began = time.perf_counter()
    previous = previous_scores(engine, day)
    keys = pd.DataFrame(
        {"supplier_id": features["supplier_id"].astype(str), "as_of": features["event_timestamp"]}
    ).reset_index(drop=True)
    with typer.progressbar(length=len(keys), label="  score and explain") as bar:
        for start in range(0, len(keys), CHUNK_ROWS):
            part = keys.iloc[start : start + CHUNK_ROWS]
            assessment = scorer.assess(part)
            h, p = day_rows(assessment, active, previous, day, versions, computed_at)
            _add_last_login(h, features.iloc[start : start + CHUNK_ROWS], day)
            health_rows += h
            prediction_rows += p
            ok = assessment.scores["scored"].to_numpy(bool)
            scored_rows = features.iloc[start : start + CHUNK_ROWS][ok]
            states += supplier_states(scored_rows, assessment.scores[ok], [r["trend"] for r in h])
            facts.update(
                zip(
                    scored_rows["supplier_id"].astype(str), message_facts(scored_rows), strict=True
                )
            )
            _count(run, assessment.scores)
            bar.update(len(part))
    run.seconds["score and explain"] = time.perf_counter() - began
    run.scored = len(prediction_rows)

    began = time.perf_counter()
    with typer.progressbar(length=2 * run.scored, label="  write") as bar:
        begin_day(engine, day)  # the day's archived copy is stale from here
        upsert(engine, CustomerHealth, health_rows, settings.score_batch_rows, bar.update)
        upsert(engine, ChurnPrediction, prediction_rows, settings.score_batch_rows, bar.update)
        finish_day(engine, day, len(health_rows), len(prediction_rows))
    run.seconds["write"] = time.perf_counter() - began
    if not run.backfill:  # interventions are for the day at hand, never a past one
        from wedsync_cs.uplift_job import refresh_scores

        # today's uplift scores where the decision turns targeting on: worklists and the
        # order calls are booked in rank by them
        began = time.perf_counter()
        run.uplift_scores = refresh_scores(settings, champions, day)
        run.seconds["uplift scores"] = time.perf_counter() - began
        began = time.perf_counter()
        run.interventions = record_day(
            engine,
            states,
            load_rules(settings.rules_path),
            day,
            end,
            salt=settings.control_salt,
            share=settings.control_share,
            retention_values={r["supplier_id"]: r["ltv_at_risk"] for r in prediction_rows},
            agents=dict(zip(directory["supplier_id"], directory["agent_id"], strict=True)),
            facts=facts,
        )
        run.seconds["interventions"] = time.perf_counter() - began
        began = time.perf_counter()
        run.delivery = deliver(settings, engine, day=day)
        run.seconds["deliver"] = time.perf_counter() - began
    began = time.perf_counter()
    run.kpis, run.agents = record_day_metrics(engine, raw, day)
    run.seconds["kpis and agents"] = time.perf_counter() - began
    timing = (
        [
            {
                "name": TIMING_MODEL,
                "version": champions.timing_version,
                "run_id": champions.timing_run_id,
                "feature_service": champions.services[0],
            }
        ]
        if champions.timing_version
        else []
    )
    record_versions(
        engine,
        [
            *timing,
            {
                "name": CHURN_MODEL,
                "version": champions.churn_version,
                "run_id": champions.churn_run_id,
                "feature_service": champions.services[0],
            },
            {
                "name": HEALTH_MODEL,
                "version": champions.health_version,
                "run_id": champions.health_run_id,
                "feature_service": champions.services[1],
            },
        ],
    )
    return missing


def record_day_metrics(engine, raw: Path, day: date) -> tuple[list[KpiValue], int]:
    """Compute and store the day's KPIs and agents' performance; the KPIs and the number of
    agents' rows."""
    from monitoring.agents import agent_performance
    from monitoring.kpis import compute_kpis
    from serving.db.metrics import read_inputs, store_agents, store_kpis

    inputs = read_inputs(engine, raw, day)
    kpis = compute_kpis(inputs.kpis, day)
    agents = agent_performance(inputs.agents, day)
    computed_at = datetime.now(UTC)
    store_kpis(engine, kpis, computed_at)
    store_agents(engine, agents, computed_at)
    return kpis, len(agents)


def _add_last_login(health_rows: list[dict], rows: pd.DataFrame, day: date) -> None:
    """Each health row's ``last_login_day``: the day minus the feature row's
    ``days_since_last_login`` (None before the first login)."""
    since = dict(zip(rows["supplier_id"].astype(str), rows["days_since_last_login"], strict=True))
    for row in health_rows:
        days = since.get(row["supplier_id"])
        row["last_login_day"] = (
            None if days is None or not np.isfinite(days) else day - timedelta(days=int(days))
        )


def deliver(
    settings: Settings, engine, limit: int | None = None, day: date | None = None
) -> DispatchReport:
    """Run the outbox's dispatcher once with the settings' mailer and policy; calls in the order
    of the uplift ranking of ``day`` (default: the newest scored day) when it is on."""
    from sqlalchemy import func, select

    from serving.calls import BusinessHours
    from serving.db.models import ChurnPrediction
    from serving.dispatch import DeliveryPolicy, Dispatcher
    from serving.mail import mailer_for
    from serving.worklist import read_ranking

    if day is None:
        with engine.connect() as connection:
            day = connection.scalar(select(func.max(ChurnPrediction.day)))
    ranking = read_ranking(settings.home_dir / "models" / "uplift", day, "phone_call")

    policy = DeliveryPolicy(
        sender=settings.mail_from,
        max_attempts=settings.delivery_max_attempts,
        backoff_seconds=settings.delivery_backoff_seconds,
        lease_seconds=settings.delivery_lease_seconds,
        hours=BusinessHours(*settings.business_hours),
    )
    mailer = mailer_for(settings.smtp_url, settings.maildir, settings.smtp_ca_file)
    order = ranking.saved_ltv if ranking.name == "uplift_x_ltv" else None
    return Dispatcher(engine, mailer, policy, call_order=order).run(limit)


def print_delivery(report: DispatchReport) -> None:
    """The dispatcher's outcomes by channel and outcome, and by rule."""
    if not report.total and not report.recovered:
        typer.echo("  delivered: nothing was due")
        return
    typer.echo("  delivered: " + _outcomes(report, by=1))
    typer.echo("    by rule: " + _outcomes(report, by=0))
    if report.recovered:
        typer.echo(
            "  interrupted deliveries found: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(report.recovered.items()))
        )


def _outcomes(report: DispatchReport, by: int) -> str:
    """``email sent 12, failed 1; in_app sent 3`` grouped by channel (1) or rule (0), the
    largest group first."""
    groups: dict[str, Counter] = {}
    for key, n in report.outcomes.items():
        groups.setdefault(key[by], Counter())[key[2]] += n
    return "; ".join(
        f"{name} " + ", ".join(f"{o} {n:,}" for o, n in sorted(c.items()))
        for name, c in sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    )


def _directory_older_than(engine, end: datetime) -> bool:
    """No directory yet, or its last sync was for an earlier instant than ``end``."""
    from sqlalchemy import func, select

    from serving.db.models import Supplier

    with engine.connect() as connection:
        synced = connection.scalar(select(func.max(Supplier.synced_at)))
    return synced is None or synced < end


def _count(run: DailyRun, scores: pd.DataFrame) -> None:
    for column, counts in (("churn_risk", run.churn_levels), ("health_risk", run.health_bands)):
        for level, n in scores[column].dropna().value_counts().items():
            counts[str(level)] = counts.get(str(level), 0) + int(n)


def _print_run(run: DailyRun, missing: int) -> None:
    kind = "backfill of" if run.backfill else "day"
    typer.secho(f"Scored {kind} {run.day}", bold=True)
    typer.echo(
        f"  active suppliers {run.active:,}; scored {run.scored:,} "
        f"({run.scored / max(run.active, 1):.1%}); without a feature row {missing:,}; "
        f"without a score {run.unscored - missing:,}"
    )
    levels = ("critical", "high", "medium", "low")
    typer.echo(
        "  churn risk: " + ", ".join(f"{lv} {run.churn_levels.get(lv, 0):,}" for lv in levels)
    )
    bands = ("healthy", "at_risk", "critical")
    typer.echo("  health: " + ", ".join(f"{b} {run.health_bands.get(b, 0):,}" for b in bands))
    if run.interventions is not None:
        _print_interventions(run.interventions)
    if run.delivery is not None:
        print_delivery(run.delivery)
    if run.kpis:
        shown = ("logo_churn_30d", "suppliers_at_risk", "intervention_coverage", "saves")
        values = {k.name: k for k in run.kpis}
        undefined = sum(k.value is None for k in run.kpis)
        typer.echo(
            f"  KPIs stored: {len(run.kpis)} ({undefined} undefined that day); "
            + ", ".join(_kpi_text(values[n]) for n in shown if n in values)
            + f"; agents' performance rows: {run.agents}"
        )
    if run.keys_forgotten:
        typer.echo(f"  forgot {run.keys_forgotten:,} Idempotency-Keys past their retention")
    typer.echo(
        "  time: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in run.seconds.items())
        + f"; wall {run.wall_seconds:.1f} s"
    )


def _kpi_text(kpi: KpiValue) -> str:
    if kpi.value is None:
        return f"{kpi.name} undefined"
    if kpi.unit == "share":
        return f"{kpi.name} {kpi.value:.1%}"
    return f"{kpi.name} {kpi.value:,.4g}"


def _print_interventions(day: DayInterventions) -> None:
    def counts(counter) -> str:
        return ", ".join(f"{k} {v:,}" for k, v in counter.most_common()) or "none"

    rate = day.automation_rate
    typer.echo(f"  interventions scheduled: {counts(day.scheduled)}")
    typer.echo(f"  held out (control group): {counts(day.held_out)}")
    typer.echo(f"  capped: {counts(day.capped)}")
    typer.echo(
        f"  automation rate {'n/a' if rate is None else f'{rate:.1%}'} "
        f"({day.automated:,} automated of {sum(day.scheduled.values()):,} by the rules and "
        f"{day.manual:,} by hand)"
        + (
            f"; {day.already:,} due were recorded by an earlier run of the day"
            if day.already
            else ""
        )
    )
