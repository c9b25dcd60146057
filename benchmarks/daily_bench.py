"""Benchmarks of ``score-daily``: a new day of a large export scored end to end (incremental
feature build, materialisation, directory sync, scoring of every active supplier, writes), on
SQLite and on PostgreSQL, with the time of each stage.

The day before is prepared by processes of their own (the full build of yesterday's folder, its
materialisation and yesterday's scores, so that today's run finds a directory and previous
scores as it would in production); the measured process is today's run alone.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def _settings(workdir: str, database_url: str | None, tag: str, smtp_url: str | None = None):
    from wedsync_cs.settings import Settings

    root = Path(workdir)
    tracking = f"sqlite:///{root / 'train_home' / 'mlflow' / 'mlflow.db'}"
    return Settings(
        home=root / f"home_daily_{tag}",
        mlflow_tracking_uri=tracking,
        database_url=database_url,
        smtp_url=smtp_url,
    )


class SmtpSink:
    """A local SMTP server (aiosmtpd) that counts what it receives: the benchmark's mail
    server, so that the daily job's emails cross a real SMTP connection."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from wedsync_cs.demo_api import free_port

        self.received = 0
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's)
        self.received += 1
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()


def postgres_database() -> str:
    """A fresh database on the PostgreSQL at 127.0.0.1:5432 (left for inspection)."""
    import psycopg

    name = f"cs_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"create database {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def stage_export(workdir: str, source: str, tag: str) -> dict:
    """Put ``source`` (``yesterday`` or ``sim/raw``) in the daily export folder, whose path
    stays the same from day to day as a real export's does (the incremental build keeps a
    table only of the same folder)."""
    import shutil

    target = Path(workdir) / f"daily_raw_{tag}"
    target.mkdir(exist_ok=True)
    files = sorted((Path(workdir) / source).glob("*.parquet"))
    for path in files:
        shutil.copyfile(path, target / path.name)
    return {"files": len(files)}


def yesterday(
    workdir: str, database_url: str | None, tag: str, smtp_url: str | None = None
) -> dict:
    """The day before: yesterday's folder built, materialised and scored into the database."""
    from serving.db.migrate import upgrade
    from wedsync_cs.daily_job import score_daily
    from wedsync_cs.database import operational_engine

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = _settings(workdir, database_url, tag, smtp_url)
    engine = operational_engine(settings)
    upgrade(engine)
    engine.dispose()
    run = score_daily(settings, Path(workdir) / f"daily_raw_{tag}")
    return {"day": str(run.day), "scored": run.scored, "seconds": run.seconds}


def _delivered(delivery) -> dict[str, int]:
    """The dispatcher's outcomes summed by channel and outcome (``email sent``: 12)."""
    out: dict[str, int] = {}
    for (_, channel, outcome), n in delivery.outcomes.items() if delivery else ():
        out[f"{channel} {outcome}"] = out.get(f"{channel} {outcome}", 0) + n
    return out


def today(workdir: str, database_url: str | None, tag: str, smtp_url: str | None = None) -> dict:
    """Today's run over yesterday's state: the measured one."""
    from wedsync_cs.daily_job import score_daily

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = _settings(workdir, database_url, tag, smtp_url)
    run = score_daily(settings, Path(workdir) / f"daily_raw_{tag}")
    interventions = run.interventions
    delivery = run.delivery
    return {
        "day": str(run.day),
        "active": run.active,
        "scored": run.scored,
        "churn_levels": run.churn_levels,
        "stage_seconds": {k: round(v, 1) for k, v in run.seconds.items()},
        "job_wall_seconds": round(run.wall_seconds, 1),
        "feature_build_seconds": run.build_seconds,
        "executions": {
            "scheduled": sum(interventions.scheduled.values()) if interventions else 0,
            "held_out": sum(interventions.held_out.values()) if interventions else 0,
            "automation_rate": interventions.automation_rate if interventions else None,
        },
        "delivered": _delivered(delivery),
    }
