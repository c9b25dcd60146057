"""``wedsync-cs score-daily`` for real: every active supplier scored once per day, reruns that
replace, backfills with that day's features, PostgreSQL, and a SIGKILL half-way."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from serving.db.migrate import engine_for
from serving.db.models import ChurnPrediction, CustomerHealth, Supplier
from serving.db.scores import day_table
from tests.integration.conftest import ServedHome, run_cli
from wedsync_cs.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("served")]
VOLATILE = ["computed_at"]


def _last_day(served: ServedHome) -> date:
    from wedsync_cs.feature_jobs import last_build

    return date.fromisoformat(last_build(Settings(home=served.home)).last_day)


def _fresh_db(tmp_path: Path, name: str = "ops") -> str:
    return f"sqlite:///{tmp_path / f'{name}.db'}"


def _upgrade(served: ServedHome, url: str) -> None:
    result = run_cli(served.env(CS_DATABASE_URL=url), "db", "upgrade")
    assert result.exit_code == 0, result.output


def _tables(url: str, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    engine = engine_for(url)
    try:
        return (
            day_table(engine, CustomerHealth, day).drop(columns=VOLATILE),
            day_table(engine, ChurnPrediction, day).drop(columns=VOLATILE),
        )
    finally:
        engine.dispose()


def test_every_active_supplier_is_scored_once_and_a_rerun_replaces(served, tmp_path) -> None:
    url = _fresh_db(tmp_path)
    _upgrade(served, url)
    env = served.env(CS_DATABASE_URL=url)
    first = run_cli(env, "score-daily", "--raw", served.raw)
    assert first.exit_code == 0, first.output
    assert "scored" in first.output and "churn risk:" in first.output and "time:" in first.output
    day = _last_day(served)
    health, predictions = _tables(url, day)

    engine = engine_for(url)
    with engine.connect() as connection:
        active = connection.execute(
            select(Supplier.supplier_id, Supplier.monthly_revenue).where(
                Supplier.status == "active"
            )
        ).all()
    engine.dispose()
    active_ids = {r.supplier_id for r in active}
    assert len(active_ids) > 200
    assert set(health["supplier_id"]) == set(predictions["supplier_id"]) == active_ids
    assert health["supplier_id"].is_unique and predictions["supplier_id"].is_unique
    assert f"scored {len(active_ids):,} (100.0%)" in first.output

    revenue = pd.Series({r.supplier_id: r.monthly_revenue for r in active})
    p = predictions.set_index("supplier_id")
    np.testing.assert_allclose(
        p["ltv_at_risk"], p["churn_probability"] * revenue[p.index] * 18, rtol=1e-9
    )
    np.testing.assert_allclose(
        p["prevention_cost"], np.minimum(0.1 * p["ltv_at_risk"], 500), rtol=1e-9
    )
    assert p["risk_level"].isin(["low", "medium", "high", "critical"]).all()
    assert (p["intervention_recommended"] == (p["risk_level"] != "low")).all()
    assert health["score"].between(0, 100).all() and health["trend"].eq("stable").all()
    assert all(set(f) >= {"login", "billing"} for f in p["factors"])
    # the timing model's dates: within a year of the day, and sooner for riskier suppliers
    assert (p["timing_model_version"] == "1").all()
    dated = p["predicted_churn_date"].notna()
    assert dated.any()
    ahead = (pd.to_datetime(p.loc[dated, "predicted_churn_date"]) - pd.Timestamp(day)).dt.days
    assert ahead.between(1, 366).all()
    riskier = p["churn_probability"] >= p["churn_probability"].quantile(0.9)
    assert dated[riskier].mean() > dated[~riskier].mean()

    again = run_cli(env, "score-daily", "--raw", served.raw)
    assert again.exit_code == 0, again.output
    health2, predictions2 = _tables(url, day)
    pd.testing.assert_frame_equal(health, health2)
    pd.testing.assert_frame_equal(predictions, predictions2)


def test_a_backfill_scores_with_that_days_features_and_the_next_day_has_a_trend(
    served, tmp_path
) -> None:
    from feature_repo.readers import PointInTimeReader
    from features.raw_reader import load_raw
    from serving.scorer import Scorer
    from training.registry import load_champions

    url = _fresh_db(tmp_path)
    _upgrade(served, url)
    env = served.env(CS_DATABASE_URL=url)
    last = _last_day(served)
    older, newer = last - timedelta(days=9), last - timedelta(days=8)
    for day in (older, newer):
        result = run_cli(env, "score-daily", "--raw", served.raw, "--as-of", day.isoformat())
        assert result.exit_code == 0, result.output
        assert f"Scored backfill of {day}" in result.output
    health, predictions = _tables(url, newer)

    # the same suppliers scored point in time at the end of that day, from the raw export
    settings = Settings(home=served.home)
    scorer = Scorer(
        load_champions(settings.tracking_uri, 1),
        PointInTimeReader.of(load_raw(served.raw).frames),
    )
    instant = pd.Timestamp(newer + timedelta(days=1), tz="UTC")
    keys = pd.DataFrame({"supplier_id": predictions["supplier_id"], "as_of": instant})
    expected = scorer.score(keys)
    assert expected["scored"].all()
    np.testing.assert_allclose(
        predictions["churn_probability"], expected["churn_probability"], rtol=1e-9
    )
    np.testing.assert_allclose(health["score"], expected["health_score"], rtol=1e-9)

    # the day before is the previous score, and the trend follows it
    before, _ = _tables(url, older)
    merged = health.merge(before[["supplier_id", "score"]], on="supplier_id", suffixes=("", "_b"))
    assert len(merged) > 0.9 * len(health)
    np.testing.assert_allclose(merged["previous_score"], merged["score_b"])
    moved = merged["score"] - merged["score_b"]
    assert (merged.loc[moved > 5, "trend"] == "improving").all()
    assert (merged.loc[moved < -5, "trend"] == "declining").all()
    assert (merged.loc[moved.abs() <= 5, "trend"] == "stable").all()

    late = run_cli(env, "score-daily", "--raw", served.raw, "--as-of", "2099-01-01")
    assert late.exit_code == 2 and "outside the export's days" in late.output


def test_score_daily_on_postgresql_writes_what_sqlite_writes(
    served, tmp_path, postgres_uri
) -> None:
    sqlite_url = _fresh_db(tmp_path)
    for url in (sqlite_url, postgres_uri):
        _upgrade(served, url)
        result = run_cli(
            served.env(CS_DATABASE_URL=url, CS_SCORE_BATCH_ROWS="37"),
            "score-daily",
            "--raw",
            served.raw,
        )
        assert result.exit_code == 0, result.output
    day = _last_day(served)
    for lite, pg in zip(_tables(sqlite_url, day), _tables(postgres_uri, day), strict=True):
        assert len(lite) > 200
        pd.testing.assert_frame_equal(lite, pg, check_dtype=False)


def test_the_jobs_refuse_a_database_behind_the_migrations(served, tmp_path) -> None:
    result = run_cli(
        served.env(CS_DATABASE_URL=_fresh_db(tmp_path, "empty")),
        "score-daily",
        "--raw",
        served.raw,
    )
    assert result.exit_code == 2 and "wedsync-cs db upgrade" in result.output


def _score_daily_process(served: ServedHome, url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CS_")}
    env.update(
        {k: v for k, v in served.env(CS_DATABASE_URL=url).items() if v is not None},
        CS_SCORE_BATCH_ROWS="10",
    )
    command = [str(Path(sys.executable).parent / "wedsync-cs"), "score-daily", "--raw"]
    return subprocess.Popen(
        [*command, str(served.raw)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _rows(url: str, day: date, table) -> int:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(
                select(func.count()).select_from(table).where(table.day == day)
            )
    finally:
        engine.dispose()


def test_killed_at_a_random_point_and_rerun_it_ends_with_an_uninterrupted_runs_rows(
    served, tmp_path
) -> None:
    day = _last_day(served)
    whole = _fresh_db(tmp_path, "whole")
    _upgrade(served, whole)
    began = time.monotonic()
    assert _score_daily_process(served, whole).wait(600) == 0
    duration = time.monotonic() - began
    expected = _tables(whole, day)

    # one kill at a random point of the run, one as soon as the first rows are committed
    # (the write stage is short: a random point seldom lands in it)
    rng = random.Random(int(os.environ.get("CS_KILL_SEED", "7")))
    for attempt in ("random", "mid-write"):
        url = _fresh_db(tmp_path, attempt)
        _upgrade(served, url)
        process, began = _score_daily_process(served, url), time.monotonic()
        if attempt == "random":
            time.sleep(rng.uniform(0.3, 1.0) * duration)
        else:
            while _rows(url, day, CustomerHealth) == 0 and process.poll() is None:
                time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        partial = _rows(url, day, CustomerHealth) + _rows(url, day, ChurnPrediction)
        print(f"{attempt}: killed after {time.monotonic() - began:.1f} s, {partial} rows written")
        if attempt == "mid-write":
            assert 0 < partial < sum(len(t) for t in expected)
        assert _score_daily_process(served, url).wait(600) == 0
        for got, want in zip(_tables(url, day), expected, strict=True):
            pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_days_due_rules_are_recorded_once_and_the_control_group_held_out(
    served, tmp_path, database, request
) -> None:
    """score-daily records each supplier's due rules as executions of the day: scheduled, or
    held out for the control group (a stable share, drawn once); a rerun records none again."""
    from serving.db.models import ControlGroupMember, InterventionExecution
    from serving.rules import load_rules
    from serving.states import in_control_group

    url = _fresh_db(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_uri")
    _upgrade(served, url)
    env = served.env(CS_DATABASE_URL=url, CS_CONTROL_SHARE="0.3")
    first = run_cli(env, "score-daily", "--raw", served.raw)
    assert first.exit_code == 0, first.output
    assert "interventions scheduled:" in first.output and "automation rate" in first.output
    day = _last_day(served)
    engine = engine_for(url)
    with engine.connect() as connection:
        executions = pd.read_sql(
            select(InterventionExecution).where(InterventionExecution.day == day), connection
        )
        control = dict(
            connection.execute(
                select(ControlGroupMember.supplier_id, ControlGroupMember.in_control)
            ).all()
        )
    _, predictions = _tables(url, day)
    assert len(executions) > 0 and executions["triggered_by"].nunique() > 1
    assert not executions.duplicated(["supplier_id", "triggered_by"]).any()
    rules = {r.name: r for r in load_rules().rules}
    assert set(executions["triggered_by"]) <= set(rules)
    # every scored supplier drawn once, about the share, each draw the salted hash's
    assert set(control) == set(predictions["supplier_id"])
    assert 0.2 < np.mean(list(control.values())) < 0.4
    assert all(v == in_control_group(s, "wedsync-cs-control-1", 0.3) for s, v in control.items())
    held = executions["status"] == "held_out"
    assert held.any() and (~held).any()
    assert (executions.loc[held, "supplier_id"].map(control)).all()
    assert not (executions.loc[~held, "supplier_id"].map(control)).any()
    # the outbox delivered the scheduled ones (the Maildir, the app's messages, agents' calls)
    # and nothing of the held-out ones
    assert (executions.loc[~held, "status"] == "sent").all(), executions["status"].value_counts()
    assert "delivered: " in first.output
    delivered = _delivered(served, url)
    assert set(delivered) == set(executions.loc[~held, "id"])
    # the executions are the rules' decisions for the stored scores (no earlier contacts)
    row = executions.iloc[0]
    assert row["reason"].startswith(f"{row['triggered_by']}: ")
    assert row["channel"] in {"email", "in_app", "call"} and row["rules_version"]
    p = predictions.set_index("supplier_id")
    assert row["churn_probability_at_trigger"] == pytest.approx(
        p.loc[row["supplier_id"], "churn_probability"]
    )
    assert row["estimated_retention_value"] == pytest.approx(
        p.loc[row["supplier_id"], "ltv_at_risk"]
    )
    again = run_cli(env, "score-daily", "--raw", served.raw)
    assert again.exit_code == 0, again.output
    with engine.connect() as connection:
        count = connection.scalar(
            select(func.count())
            .select_from(InterventionExecution)
            .where(InterventionExecution.day == day)
        )
    engine.dispose()
    assert count == len(executions)
    assert f"{len(executions):,} due were recorded by an earlier run of the day" in again.output
    assert "delivered: nothing was due" in again.output
    assert _delivered(served, url) == delivered  # nothing sent again (same files, same times)


def _delivered(served: ServedHome, url: str) -> dict[str, int]:
    """The executions of this database that reached their channel: a Maildir file (the home's
    outbox, shared with other tests' databases; its write time), an in-app message or a
    booked support interaction (0); each at most once."""
    from serving.db.models import InAppMessage, InterventionExecution, SupportInteraction

    engine = engine_for(url)
    with engine.connect() as connection:
        ids = set(connection.scalars(select(InterventionExecution.id)))
        in_app = list(connection.scalars(select(InAppMessage.execution_id)))
        calls = list(connection.scalars(select(SupportInteraction.execution_id)))
    engine.dispose()
    new = Settings(home=served.home).maildir / "new"
    emails = {
        p.name.split(".")[0]: p.stat().st_mtime_ns
        for p in new.iterdir()
        if p.name.split(".")[0] in ids
    }
    others = in_app + calls
    assert len(others) == len(set(others)) and not set(others) & set(emails)
    return {**emails, **dict.fromkeys(others, 0)}
