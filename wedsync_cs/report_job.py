"""``wedsync-cs report``: wiring only. Runs the drift and outcome monitors, measures the effect of
interventions, fits and judges the uplift models, reads the KPIs and the agents' rows, and
renders them into one self-contained HTML file (:mod:`monitoring.report`) under
``CS_HOME/reports``. A section that cannot be produced yet (no champion run window, no
prediction a horizon old, no decided intervention) says why in the report instead of failing the
whole of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select

from wedsync_cs.settings import Settings

KPI_HISTORY_DAYS = 90


@dataclass(frozen=True)
class ReportRun:
    path: Path
    as_of: date | None
    unavailable: dict[str, str]  # section -> why it is not in the report


def write_report(settings: Settings) -> ReportRun:
    """Gather every section and write the report; its path.

    Raises:
        LookupError: no operational database with scores yet.
    """
    from monitoring.report import ReportData, render_report
    from serving.db.migrate import require_current
    from serving.db.models import CustomerHealth, ModelVersion
    from serving.effect_book import EffectBook
    from serving.performance import PerformanceBook
    from wedsync_cs.database import operational_engine
    from wedsync_cs.monitor_jobs import run_drift, run_outcomes
    from wedsync_cs.uplift_job import run_uplift

    engine = operational_engine(settings)
    require_current(engine)
    sections: dict[str, Any] = {}
    why: dict[str, str] = {}
    try:
        with engine.connect() as connection:
            as_of = connection.scalar(
                select(CustomerHealth.day).order_by(CustomerHealth.day.desc()).limit(1)
            )
            models = {
                r.name: r.version
                for r in connection.execute(
                    select(ModelVersion.name, ModelVersion.version).order_by(
                        ModelVersion.first_used_at
                    )
                )
            }
        if as_of is None:
            raise LookupError("nothing scored yet: run `wedsync-cs score-daily` first")
        typer.echo("  drift ...")
        try:
            drift = run_drift(settings)
            summary = json.loads(drift.report.with_suffix(".json").read_text())
            sections["drift"] = summary | {"report": drift.report.name}
        except (LookupError, ValueError) as err:
            why["drift"] = str(err)
        typer.echo("  outcomes ...")
        try:
            sections["outcomes"] = run_outcomes(settings).summary
        except (LookupError, ValueError) as err:
            why["outcomes"] = str(err)
        typer.echo("  intervention effect ...")
        _, effects = EffectBook(engine).measure()
        if effects:
            sections["effects"] = [e.model_dump(mode="json") for e in effects]
        else:
            why["effects"] = "no rule has decided an intervention yet"
        typer.echo("  uplift ...")
        try:
            sections["uplift"] = run_uplift(settings).records
        except LookupError as err:
            why["uplift"] = str(err)
        book = PerformanceBook(engine)
        kpis = book.kpis(as_of - timedelta(days=KPI_HISTORY_DAYS - 1), as_of)
        if kpis:
            sections["kpis"] = [k.model_dump(mode="json") for k in kpis]
        else:
            why["kpis"] = "no KPI stored yet: score-daily computes them"
        agents = book.agents(None, None)
        if agents:
            sections["agents"] = [a.model_dump(mode="json", by_alias=True) for a in agents]
        else:
            why["agents"] = "no agent's performance stored yet"
    finally:
        engine.dispose()
    data = ReportData(
        generated_at=datetime.now(UTC),
        as_of=as_of,
        models=models,
        **sections,
        **{f"{name}_unavailable": reason for name, reason in why.items()},
    )
    folder = settings.ensure_home() / "reports"
    folder.mkdir(exist_ok=True)
    path = folder / f"report-{as_of}.html"
    path.write_text(render_report(data), encoding="utf-8")
    return ReportRun(path=path, as_of=as_of, unavailable=why)
