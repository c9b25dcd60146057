"""The operational database's migrations on SQLite and on the real PostgreSQL: they make exactly
the schema the models describe, a database behind them is refused with the command that fixes
it, and instants come back in UTC on both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from serving.db.migrate import (
    DatabaseNotReadyError,
    downgrade,
    engine_for,
    head_revision,
    require_current,
    schema_state,
    upgrade,
)
from serving.db.models import (
    Base,
    ChurnPrediction,
    IdempotencyKey,
    InterventionExecution,
    SuccessMilestone,
    Supplier,
)
from wedsync_cs.cli import app
from wedsync_cs.settings import get_settings


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'operational.db'}"
    else:
        url = request.getfixturevalue("postgres_uri")
    engine = engine_for(url)
    yield engine
    engine.dispose()


def test_migrations_make_the_schema_of_the_models(engine: Engine) -> None:
    assert schema_state(engine).current is None
    state = upgrade(engine)
    assert state.up_to_date and state.current == head_revision()
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert upgrade(engine).current == state.current  # a second upgrade changes nothing


def test_a_database_behind_the_migrations_is_refused(engine: Engine) -> None:
    with pytest.raises(DatabaseNotReadyError, match=r"revision none.*wedsync-cs db upgrade"):
        require_current(engine)
    upgrade(engine)
    require_current(engine)
    downgrade(engine, "base")
    assert inspect(engine).get_table_names() == ["alembic_version"]
    with pytest.raises(DatabaseNotReadyError, match="wedsync-cs db upgrade"):
        require_current(engine)


def test_an_unreachable_database_is_named_without_its_password() -> None:
    engine = engine_for("postgresql+psycopg://cs:secret@127.0.0.1:9/nowhere")
    with pytest.raises(DatabaseNotReadyError, match="unreachable") as caught:
        require_current(engine)
    assert "secret" not in str(caught.value) and "cs:***@" in str(caught.value)


def test_rows_keep_their_instants_in_utc_and_json_as_json(engine: Engine) -> None:
    upgrade(engine)
    signup = datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    with Session(engine) as session, session.begin():
        session.add(
            Supplier(
                supplier_id="s1",
                vendor_type="florist",
                subscription_tier="starter",
                monthly_revenue=19.0,
                signup_at=signup,
                status="active",
                synced_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        )
        session.flush()
        session.add(
            ChurnPrediction(
                supplier_id="s1",
                day=date(2024, 5, 1),
                churn_probability=0.42,
                risk_level="medium",
                factors={"login": 0.8, "billing": -0.1},
                ltv_at_risk=143.64,
                prevention_cost=14.364,
                intervention_recommended=True,
                churn_model_version="3",
                health_model_version="2",
                computed_at=datetime(2024, 5, 2, 6, tzinfo=UTC),
            )
        )
    with Session(engine) as session:
        supplier = session.get(Supplier, "s1")
        assert supplier.signup_at == signup and supplier.signup_at.tzinfo is not None
        assert supplier.signup_at.utcoffset() == timedelta(0)
        prediction = session.scalars(select(ChurnPrediction)).one()
        assert prediction.factors == {"login": 0.8, "billing": -0.1}


def test_a_naive_instant_is_refused(engine: Engine) -> None:
    upgrade(engine)
    with Session(engine) as session, pytest.raises(StatementError, match="naive datetime"):
        session.add(
            Supplier(
                supplier_id="s2",
                vendor_type="venue",
                subscription_tier="scale",
                monthly_revenue=99.0,
                signup_at=datetime(2024, 3, 1, 9, 30),
                status="active",
                synced_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        )
        session.commit()


def test_the_cli_upgrades_and_reports(tmp_path: Path) -> None:
    def run(*args: str):
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env={"CS_HOME": str(tmp_path)})
        finally:
            get_settings.cache_clear()

    behind = run("db", "status")
    assert behind.exit_code == 1 and "wedsync-cs db upgrade" in behind.output
    first = run("db", "upgrade")
    assert first.exit_code == 0 and f"to {head_revision()}" in first.output
    again = run("db", "upgrade")
    assert again.exit_code == 0 and "already at revision" in again.output
    assert run("db", "status").exit_code == 0
    assert (tmp_path / "db" / "operational.db").is_file()


def test_the_directory_is_the_export_as_of_an_instant_and_reruns_replace(engine) -> None:
    from serving.db.directory import sync_directory
    from serving.db.models import CsAgent
    from tests.conftest import good_tables

    upgrade(engine)
    tables = {n: t.to_pandas() for n, t in good_tables().items()}
    suppliers, cancellations = tables["suppliers"], tables["cancellations"]
    # s1 cancels on 2024-03-01 15:00: a week before, it is still active and its cancellation
    # is not known yet; s2 signed up on 2024-02-01
    before = sync_directory(engine, suppliers, cancellations, datetime(2024, 2, 23, tzinfo=UTC))
    assert (before.suppliers, before.inserted, before.updated) == (2, 2, 0)
    assert before.active == 2 and before.agents_added == 1
    with Session(engine) as session:
        s1 = session.get(Supplier, "s1")
        assert s1.status == "active" and s1.cancelled_at is None
        assert session.get(Supplier, "s2").agent_id == "agent_01"
        assert session.get(CsAgent, "agent_01") is not None

    changed = suppliers.assign(subscription_tier=["professional", "scale"])
    after = sync_directory(engine, changed, cancellations, datetime(2024, 3, 2, tzinfo=UTC))
    # s1 changed (tier, cancellation); s2 was on "scale" already: left as it was
    assert (after.suppliers, after.inserted, after.updated, after.unchanged) == (2, 0, 1, 1)
    assert after.active == 1 and after.agents_added == 0
    again = sync_directory(engine, changed, cancellations, datetime(2024, 3, 3, tzinfo=UTC))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)  # nothing rewritten
    with Session(engine) as session:
        assert len(session.scalars(select(Supplier)).all()) == 2
        s1 = session.get(Supplier, "s1")
        assert s1.status == "cancelled" and s1.subscription_tier == "professional"
        assert s1.cancelled_at == datetime(2024, 3, 1, 15, tzinfo=UTC)

    # before s2 signed up, only s1 is in the directory of that instant
    early = sync_directory(engine, suppliers, cancellations, datetime(2024, 1, 10, tzinfo=UTC))
    assert early.suppliers == 1
    with pytest.raises(ValueError, match="naive"):
        sync_directory(engine, suppliers, cancellations, datetime(2024, 1, 10))


def _directory(engine: Engine) -> dict[str, pd.DataFrame]:
    from serving.db.directory import sync_directory
    from tests.conftest import good_tables

    upgrade(engine)
    tables = {n: t.to_pandas() for n, t in good_tables().items()}
    sync_directory(
        engine, tables["suppliers"], tables["cancellations"], datetime(2024, 2, 23, tzinfo=UTC)
    )
    return tables


def test_concurrent_retries_of_one_key_record_one_execution(engine: Engine) -> None:
    """The recorder itself, on both databases: 12 threads send one key at once; one execution,
    one answer; the key with another body is refused and writes nothing."""
    from concurrent.futures import ThreadPoolExecutor

    from serving.api.schemas import TriggerInterventionRequest
    from serving.errors import IdempotencyMismatchError, NotFoundError
    from serving.interventions import InterventionRecorder

    _directory(engine)
    recorder = InterventionRecorder(engine)
    request = TriggerInterventionRequest(
        user_id="s2", intervention_type="email_sequence", reason="quiet month", priority="low"
    )
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: recorder.trigger(request, "key-1"), range(24)))
    assert len({json.dumps(a, sort_keys=True) for a in answers}) == 1
    assert answers[0][0] == 201
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InterventionExecution)) == 1
    other = request.model_copy(update={"priority": "high"})
    with pytest.raises(IdempotencyMismatchError):
        recorder.trigger(other, "key-1")
    with pytest.raises(NotFoundError):
        recorder.trigger(request.model_copy(update={"user_id": "nobody"}), "key-2")
    call = request.model_copy(update={"intervention_type": "phone_call"})
    status, body = recorder.trigger(call)  # no key: a new execution each time
    assert status == 201 and body["execution"]["id"] != answers[0][1]["execution"]["id"]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InterventionExecution)) == 2
        keys = connection.scalar(select(func.count()).select_from(IdempotencyKey))
    assert keys == 1  # the refused and the failed requests left no key


def test_manual_caps_hold_across_concurrent_requests_and_name_the_day(engine: Engine) -> None:
    """12 threads trigger the same type for one supplier at once, without keys: the supplier's
    row is locked for the cap check, so exactly one gets through; the others are refused with
    the day it is allowed again. An email by hand is held back by the fatigue cap; a call,
    a person's decision, is not."""
    from concurrent.futures import ThreadPoolExecutor

    from serving.api.schemas import TriggerInterventionRequest
    from serving.errors import ConflictError
    from serving.interventions import InterventionRecorder

    _directory(engine)
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    recorder = InterventionRecorder(engine, clock=lambda: now)

    def trigger(kind: str) -> object:
        request = TriggerInterventionRequest(
            user_id="s2", intervention_type=kind, reason="check-in", priority="medium"
        )
        try:
            return recorder.trigger(request)[0]
        except ConflictError as error:
            return error

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda _: trigger("feature_tour"), range(12)))
    assert sum(o == 201 for o in outcomes) == 1
    refused = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(refused) == 11
    assert {(e.cap, e.next_allowed) for e in refused} == {("rule_cap", date(2026, 12, 10))}
    assert trigger("in_app_message") == 201  # the second contact of the 7 days
    held = trigger("email_sequence")  # a third automated contact: the fatigue cap
    assert isinstance(held, ConflictError) and held.cap == "fatigue_cap"
    assert held.next_allowed == date(2026, 12, 10)
    assert trigger("phone_call") == 201  # a person's call may go beyond it
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InterventionExecution)) == 3


def test_milestones_are_recorded_once_and_progress_is_read_back(engine: Engine) -> None:
    from serving.api.schemas import MilestoneCompletionRequest
    from serving.db.directory import sync_milestones
    from serving.onboarding import OnboardingTracker

    tables = _directory(engine)
    sync_milestones(engine, tables["milestones"], datetime(2024, 2, 23, tzinfo=UTC))
    tracker = OnboardingTracker(engine, clock=lambda: datetime(2024, 2, 25, tzinfo=UTC))
    before = tracker.progress("s1")
    assert before.completed == ["account_setup", "first_client"]
    request = MilestoneCompletionRequest(user_id="s1", milestone_type="first_form")
    for _ in range(3):
        after = tracker.record(request)
    assert after.milestones_completed == 3 and after.current_step == "first_journey"
    with engine.connect() as connection:
        rows = connection.scalar(
            select(func.count())
            .select_from(SuccessMilestone)
            .where(SuccessMilestone.supplier_id == "s1")
        )
    assert rows == 3
    # a rerun of the sync keeps the API's milestone and adds nothing
    sync_milestones(engine, tables["milestones"], datetime(2024, 2, 23, tzinfo=UTC))
    assert tracker.progress("s1") == after


def test_keys_past_their_retention_are_forgotten_and_recent_ones_replayed(engine) -> None:
    from serving.api.schemas import TriggerInterventionRequest
    from serving.interventions import InterventionRecorder, forget_idempotency_keys

    _directory(engine)
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    old = InterventionRecorder(engine, clock=lambda: now - timedelta(days=8))
    recent = InterventionRecorder(engine, clock=lambda: now - timedelta(hours=23))
    request = TriggerInterventionRequest(
        user_id="s2", intervention_type="email_sequence", reason="quiet month", priority="low"
    )
    _, first_old = old.trigger(request, "old-key")
    _, first_recent = recent.trigger(request, "recent-key")
    assert forget_idempotency_keys(engine, now - timedelta(days=7)) == 1
    with engine.connect() as connection:
        kept = connection.scalars(select(IdempotencyKey.key)).all()
    assert kept == ["recent-key"]
    assert recent.trigger(request, "recent-key")[1] == first_recent  # replayed, not re-run
    call = request.model_copy(update={"intervention_type": "phone_call"})  # (email: capped)
    _, again = recent.trigger(call, "old-key")  # forgotten: a new request
    assert again["execution"]["id"] != first_old["execution"]["id"]
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InterventionExecution)) == 3


def test_the_exports_interventions_log_is_copied_once_and_counted_by_the_caps(engine) -> None:
    """Interventions delivered outside the engine (the export's optional interventions_log)
    become sent executions once, however often the day is synced, and hold back a manual
    trigger of the same type."""
    from serving.api.schemas import TriggerInterventionRequest
    from serving.db.directory import sync_interventions_log
    from serving.errors import ConflictError
    from serving.interventions import InterventionRecorder

    _directory(engine)
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    log = pd.DataFrame(
        {
            "supplier_id": ["s2", "s2", "nobody", "s1"],
            "sent_at": [
                now - timedelta(days=1),
                now - timedelta(days=20),
                now,
                now + timedelta(1),
            ],
            "intervention_type": ["feature_tour", "email_sequence", "phone_call", "phone_call"],
        }
    )
    assert sync_interventions_log(engine, log, now) == 3  # the one after `now` is not known yet
    assert sync_interventions_log(engine, log, now) == 3
    with engine.connect() as connection:
        rows = connection.execute(
            select(InterventionExecution.supplier_id, InterventionExecution.status).where(
                InterventionExecution.triggered_by == "export"
            )
        ).all()
    assert sorted(rows) == [("s2", "sent"), ("s2", "sent")]  # "nobody" is not in the directory
    recorder = InterventionRecorder(engine, clock=lambda: now)
    tour = TriggerInterventionRequest(
        user_id="s2", intervention_type="feature_tour", reason="again", priority="low"
    )
    with pytest.raises(ConflictError) as refused:
        recorder.trigger(tour)
    assert refused.value.next_allowed == date(2026, 12, 9)
