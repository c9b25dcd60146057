"""The intervention routes in process over real objects (the served home's models and a copy of
its database, which score-daily filled and the outbox delivered): manual caps answer 409 with
the day, worklists by role and rank, bulk dry runs and the exact execution, in-app messages,
and the executions list."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from serving.api.app import PREFIX, build_app
from serving.db.migrate import engine_for
from serving.db.models import (
    ChurnPrediction,
    ControlGroupMember,
    CsAgent,
    InAppMessage,
    InterventionExecution,
    Supplier,
    SupportInteraction,
)
from tests.integration.conftest import TOKENS, ServedHome
from wedsync_cs.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("served")]
ADMIN = {"Authorization": "Bearer admin-token"}
AGENT = {"Authorization": "Bearer agent-token"}
APP = {"Authorization": "Bearer app-token"}


@pytest.fixture
def api(served: ServedHome, tmp_path) -> Iterator[tuple[TestClient, object]]:
    from wedsync_cs.service_wiring import build_backend

    copy = tmp_path / "operational.db"
    shutil.copy(served.home / "db" / "operational.db", copy)
    url = f"sqlite:///{copy}"
    settings = Settings(home=served.home, database_url=url, api_tokens=TOKENS)
    backend = build_backend(settings)
    engine = engine_for(url)
    with TestClient(build_app(lambda: backend)) as client:
        yield client, engine
    backend.engine.dispose()
    engine.dispose()


def _active(engine, n: int = 1) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.scalars(
                select(Supplier.supplier_id)
                .where(Supplier.status == "active")
                .order_by(Supplier.supplier_id)
                .limit(n)
            )
        )


def test_a_manual_trigger_held_back_by_a_cap_answers_409_with_the_day(api) -> None:
    client, engine = api
    supplier = _active(engine)[0]
    with engine.begin() as connection:  # a supplier without contacts (this copy only)
        for table in (InAppMessage, SupportInteraction, InterventionExecution):
            connection.execute(delete(table).where(table.supplier_id == supplier))
    body = {
        "userId": supplier,
        "interventionType": "feature_tour",
        "reason": "walk through journeys",
        "priority": "medium",
    }
    first = client.post(f"{PREFIX}/interventions/trigger", json=body, headers=APP)
    assert first.status_code == 201, first.text
    again = client.post(f"{PREFIX}/interventions/trigger", json=body, headers=APP)
    assert again.status_code == 409
    error = again.json()["error"]
    allowed = (datetime.now(UTC) + timedelta(days=7)).date()
    assert error["cap"] == "rule_cap" and error["nextAllowedDate"] in {
        allowed.isoformat(),
        (allowed - timedelta(days=1)).isoformat(),
    }
    assert "feature_tour reached this supplier less than 7 days ago" in error["message"]
    assert (
        client.post(
            f"{PREFIX}/interventions/trigger", json={**body, "userId": "nobody"}, headers=APP
        ).status_code
        == 404
    )


def test_worklists_by_role_ranked_by_expected_loss_and_cut_at_capacity(api) -> None:
    client, engine = api
    own = client.get(f"{PREFIX}/worklist", headers=AGENT)
    assert own.status_code == 200, own.text
    page = own.json()
    assert page["agentId"] == "agent_01" and len(page["items"]) <= page["capacity"]
    losses = [i["expectedLoss"] for i in page["items"]]
    assert losses == sorted(losses, reverse=True) and page["items"]
    with engine.connect() as connection:
        agents = dict(connection.execute(select(Supplier.supplier_id, Supplier.agent_id)).all())
    for item in page["items"]:
        assert item["expectedLoss"] == pytest.approx(item["ltvAtRisk"])
        assert all(v > 0 for v in item["factors"].values()) and item["suggestedAction"]
        assert agents[item["userId"]] == "agent_01" or item["bookedCall"]
    assert (
        client.get(f"{PREFIX}/worklist?agentId=agent_01&limit=2", headers=AGENT).json()["items"]
        == page["items"][:2]
    )
    assert client.get(f"{PREFIX}/worklist?agentId=agent_02", headers=AGENT).status_code == 403
    assert client.get(f"{PREFIX}/worklist", headers=APP).status_code == 403
    assert client.get(f"{PREFIX}/worklist", headers=ADMIN).status_code == 400
    assert client.get(f"{PREFIX}/worklist?agentId=nobody", headers=ADMIN).status_code == 404
    assert client.get(f"{PREFIX}/worklist?agentId=agent_01", headers=ADMIN).json() == page


def test_a_bulk_dry_run_counts_and_the_execution_runs_exactly_that_set(api) -> None:
    client, engine = api
    body = {
        "filter": {"riskLevel": ["low", "medium"], "minChurnProbability": 0.05},
        "interventionType": "email_sequence",
        "reason": "season kick-off",
        "priority": "low",
        "dryRun": True,
    }
    dry = client.post(f"{PREFIX}/interventions/bulk", json=body, headers=AGENT)
    assert dry.status_code == 200, dry.text
    counts = dry.json()
    excluded = counts["excluded"]
    assert counts["matched"] == counts["toContact"] + sum(excluded.values())
    assert counts["toContact"] > 0 and excluded["controlGroup"] > 0
    with engine.connect() as connection:
        control = set(
            connection.scalars(
                select(ControlGroupMember.supplier_id).where(ControlGroupMember.in_control)
            )
        )
        before = len(connection.execute(select(InterventionExecution.id)).all())
    # only an admin executes; the agent's token may only count
    run = {**body, "dryRun": False, "selection": counts["selection"]}
    assert client.post(f"{PREFIX}/interventions/bulk", json=run, headers=AGENT).status_code == 403
    key = {**ADMIN, "Idempotency-Key": "bulk-1"}
    done = client.post(f"{PREFIX}/interventions/bulk", json=run, headers=key)
    assert done.status_code == 201, done.text
    ids = done.json()["executionIds"]
    assert len(ids) == counts["toContact"] and done.json()["selection"] == counts["selection"]
    replay = client.post(f"{PREFIX}/interventions/bulk", json=run, headers=key)
    assert replay.status_code == 201 and replay.json() == done.json()
    with engine.connect() as connection:
        made = connection.execute(
            select(InterventionExecution.supplier_id, InterventionExecution.status).where(
                InterventionExecution.id.in_(ids)
            )
        ).all()
        after = len(connection.execute(select(InterventionExecution.id)).all())
    assert after == before + len(ids)  # the replay made none
    assert {s for _, s in made} == {"scheduled"} and not {m for m, _ in made} & control
    # the same filter now finds them capped; the old selection no longer matches
    second = client.post(f"{PREFIX}/interventions/bulk", json=body, headers=AGENT).json()
    assert second["toContact"] == 0 or second["selection"] != counts["selection"]
    assert second["excluded"]["ruleCap"] + second["excluded"]["fatigueCap"] >= len(ids)
    stale = client.post(f"{PREFIX}/interventions/bulk", json=run, headers=ADMIN)
    assert stale.status_code == 409 and "changed since the dry run" in stale.text


def test_in_app_messages_are_pending_until_acted_on(api) -> None:
    client, engine = api
    with engine.connect() as connection:
        message = connection.execute(
            select(InAppMessage.id, InAppMessage.supplier_id, InAppMessage.execution_id).where(
                InAppMessage.status == "pending"
            )
        ).first()
    assert message is not None, "score-daily delivered no in-app message to the served home"
    pending = client.get(f"{PREFIX}/in-app/{message.supplier_id}", headers=APP)
    assert pending.status_code == 200
    shown = {m["id"]: m for m in pending.json()["messages"]}
    assert message.id in shown and shown[message.id]["title"] and shown[message.id]["body"]
    ack = f"{PREFIX}/in-app/{message.id}/ack"
    assert client.post(ack, json={"action": "seen"}, headers=APP).status_code == 200
    assert client.post(ack, json={"action": "completed"}, headers=APP).json() == {"success": True}
    assert client.post(ack, json={"action": "completed"}, headers=APP).status_code == 200
    refused = client.post(ack, json={"action": "dismissed"}, headers=APP)
    assert refused.status_code == 409
    after = client.get(f"{PREFIX}/in-app/{message.supplier_id}", headers=APP).json()
    assert message.id not in {m["id"] for m in after["messages"]}
    executions = client.get(
        f"{PREFIX}/interventions?userId={message.supplier_id}", headers=APP
    ).json()["executions"]
    assert {e["id"]: e["status"] for e in executions}[message.execution_id] == "completed"
    assert (
        client.post(f"{PREFIX}/in-app/nope/ack", json={"action": "seen"}, headers=APP).status_code
        == 404
    )
    assert client.get(f"{PREFIX}/in-app/nobody", headers=APP).status_code == 404
    assert client.post(ack, json={"action": "opened"}, headers=APP).status_code == 422


def test_the_executions_list_filters_and_puts_the_newest_first(api) -> None:
    client, engine = api
    every = client.get(f"{PREFIX}/interventions?limit=1000", headers=APP).json()["executions"]
    with engine.connect() as connection:
        stored = len(connection.execute(select(InterventionExecution.id)).all())
    assert len(every) == stored > 0
    times = [e["scheduledAt"] for e in every]
    assert times == sorted(times, reverse=True)
    assert {e["channel"] for e in every} <= {"email", "in_app", "call"}
    sent = client.get(
        f"{PREFIX}/interventions?status=sent&interventionType=email_sequence&limit=5",
        headers=APP,
    ).json()["executions"]
    assert 0 < len(sent) <= 5
    assert all(e["status"] == "sent" and e["interventionType"] == "email_sequence" for e in sent)
    one = every[-1]["userId"]
    mine = client.get(f"{PREFIX}/interventions?userId={one}", headers=APP).json()["executions"]
    assert mine and {e["userId"] for e in mine} == {one}
    future = client.get(f"{PREFIX}/interventions?since=2999-01-01T00:00:00Z", headers=APP)
    assert future.json()["executions"] == []
    assert client.get(f"{PREFIX}/interventions?status=lost", headers=APP).status_code == 422
    assert json.loads(client.get(f"{PREFIX}/interventions", headers={}).text)["success"] is False


def test_kpis_and_agents_are_read_back_as_score_daily_stored_them_by_role(api) -> None:
    """score-daily stored the day's KPIs (the registry's, each with its definition) and every
    agent's row; /kpis is for admins, /agents gives an agent its own row only."""
    from monitoring.kpis import KPIS

    client, engine = api
    kpis = client.get(f"{PREFIX}/kpis", headers=ADMIN)
    assert kpis.status_code == 200, kpis.text
    rows = kpis.json()["kpis"]
    assert [r["name"] for r in rows] == [d.name for d in KPIS] and len(rows) >= 10
    day = rows[0]["date"]
    assert all(r["date"] == day and r["definition"].endswith(".") for r in rows)
    by_name = {r["name"]: r for r in rows}
    with engine.connect() as connection:
        at_risk = connection.scalar(
            select(func.count())
            .select_from(ChurnPrediction)
            .join(Supplier, Supplier.supplier_id == ChurnPrediction.supplier_id)
            .where(
                ChurnPrediction.day == date.fromisoformat(day),
                Supplier.status == "active",
                ChurnPrediction.risk_level.in_(["high", "critical"])
                | (ChurnPrediction.churn_probability >= 0.6),
            )
        )
    assert by_name["suppliers_at_risk"]["value"] == at_risk
    assert 0 <= by_name["automation_rate_30d"]["value"] <= 1
    same = client.get(f"{PREFIX}/kpis", params={"from": day, "to": day}, headers=ADMIN)
    assert same.json()["kpis"] == rows
    assert (
        client.get(
            f"{PREFIX}/kpis", params={"from": "2000-01-01", "to": "2000-01-02"}, headers=ADMIN
        ).json()["kpis"]
        == []
    )
    backwards = client.get(
        f"{PREFIX}/kpis", params={"from": day, "to": "2000-01-01"}, headers=ADMIN
    )
    assert backwards.status_code == 400 and "after" in backwards.json()["error"]["message"]
    assert client.get(f"{PREFIX}/kpis", params={"from": "soon"}, headers=ADMIN).status_code == 422
    for token in (APP, AGENT):
        assert client.get(f"{PREFIX}/kpis", headers=token).status_code == 403

    everyone = client.get(f"{PREFIX}/agents", headers=ADMIN)
    assert everyone.status_code == 200, everyone.text
    agents = everyone.json()["agents"]
    with engine.connect() as connection:
        every_agent = sorted(connection.scalars(select(CsAgent.agent_id)))
    assert [a["agentId"] for a in agents] == every_agent and {a["date"] for a in agents} == {day}
    with engine.connect() as connection:
        managed = connection.execute(
            select(Supplier.agent_id, func.count())
            .where(Supplier.status == "active")
            .group_by(Supplier.agent_id)
        ).all()
    assert {a["agentId"]: a["accountsManaged"] for a in agents} == {
        agent: n for agent, n in managed if agent is not None
    }
    for a in agents:
        assert a["creditBasis"] in {"control group", "insufficient control data"}
        if a["churnPrevented"] is not None:
            assert a["churnPreventedCiLow"] <= a["churnPrevented"] <= a["churnPreventedCiHigh"]
    own = client.get(f"{PREFIX}/agents", headers=AGENT).json()["agents"]
    assert [a["agentId"] for a in own] == ["agent_01"]
    assert own[0] == next(a for a in agents if a["agentId"] == "agent_01")
    assert client.get(f"{PREFIX}/agents", headers=APP).status_code == 403
    assert (
        client.get(f"{PREFIX}/agents", params={"date": "1999-01-01"}, headers=ADMIN).json()[
            "agents"
        ]
        == []
    )


def test_the_effect_route_splits_the_rules_units_into_contacted_and_held_out(api) -> None:
    """One scored day: every unit is still inside its windows, so every outcome is pending and
    not estimable (never a difference read from nothing); the counts are the day's units."""
    client, engine = api
    answer = client.get(f"{PREFIX}/interventions/effect", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                InterventionExecution.rule_id,
                InterventionExecution.supplier_id,
                InterventionExecution.control_group,
            ).where(InterventionExecution.rule_id.is_not(None))
        ).all()
    units = {(r.rule_id, r.supplier_id): r.control_group for r in rows}
    by_rule = {e["rule"]: e for e in body["effects"] if e["rule"] is not None}
    assert set(by_rule) == {rule for rule, _ in units}
    for rule, effect in by_rule.items():
        mine = [held for (r, _), held in units.items() if r == rule]
        assert effect["nControl"] == sum(mine) and effect["nTreated"] == len(mine) - sum(mine)
        for outcome in effect["outcomes"].values():
            assert not outcome["estimable"] and not outcome["significant"]
            assert outcome["nPending"] == len(mine) and outcome["verdict"].startswith("not")
    types = [e["interventionType"] for e in body["effects"] if e["rule"] is None]
    assert len(types) == len(set(types)) >= 1
    later = client.get(
        f"{PREFIX}/interventions/effect", params={"since": "2999-01-01"}, headers=ADMIN
    )
    assert later.status_code == 400 and "after" in later.json()["error"]["message"]
    assert client.get(f"{PREFIX}/interventions/effect", headers=APP).status_code == 403
    bad = client.get(f"{PREFIX}/interventions/effect", params={"since": "x"}, headers=ADMIN)
    assert bad.status_code == 422
