"""The customer-success API over HTTP: ``wedsync-cs serve`` with two workers on the served
home, the contract's routes, errors, readiness, idempotent triggers under concurrent retries,
and schemathesis against the live OpenAPI."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select

from serving.db.migrate import engine_for
from serving.db.models import ChurnPrediction, InterventionExecution, SuccessMilestone, Supplier
from tests.integration.conftest import (
    APP,
    LiveService,
    ServedHome,
    run_cli,
    start_service,
    stop_service,
    wait_until_ready,
)
from wedsync_cs.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("served")]
PREFIX = "/api/customer-success"


def _engine(served: ServedHome):
    return engine_for(Settings(home=served.home).operational_database_url)


def _top_supplier(served: ServedHome) -> str:
    engine = _engine(served)
    with engine.connect() as connection:
        top = connection.scalar(
            select(ChurnPrediction.supplier_id).order_by(
                ChurnPrediction.day.desc(), ChurnPrediction.churn_probability.desc()
            )
        )
    engine.dispose()
    return top


def test_health_score_answers_the_contracts_shape(live: LiveService, served) -> None:
    supplier = _top_supplier(served)
    r = live.get(f"{PREFIX}/health-score/{supplier}", headers=APP)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    h = body["healthScore"]
    assert 0 <= h["current"] <= 100 and isinstance(h["current"], int)
    assert h["riskLevel"] in {"healthy", "at_risk", "critical"}
    assert set(h["breakdown"]) == {
        "loginFrequency", "featureAdoption", "clientEngagement", "supportHealth",
        "billingHealth", "onboardingProgress",
    }  # fmt: skip
    assert all(isinstance(v, int) and 0 <= v <= 100 for v in h["breakdown"].values())
    assert 0 <= h["churnProbability"] <= 1 and h["trend"] in {"improving", "stable", "declining"}
    assert h["previous"] is None and h["trend"] == "stable"  # only one day is stored
    for rec in h["recommendations"]:
        assert set(rec) == {"type", "title", "description", "priority"}
    assert h["nextReviewDate"] >= "2000-01-01"

    unknown = live.get(f"{PREFIX}/health-score/sup_nobody", headers=APP)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "success": False,
        "error": {"code": "not_found", "message": "unknown userId 'sup_nobody'"},
    }


def test_churn_predictions_are_sorted_filtered_and_totalled_over_every_match(
    live: LiveService, served
) -> None:
    r = live.get(f"{PREFIX}/churn-predictions", params={"limit": 5}, headers=APP)
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["predictions"]
    assert len(items) == 5
    probabilities = [p["churnProbability"] for p in items]
    assert probabilities == sorted(probabilities, reverse=True)

    engine = _engine(served)
    with engine.connect() as connection:
        day = connection.scalar(select(func.max(ChurnPrediction.day)))
        stored = pd.read_sql(
            select(ChurnPrediction, Supplier.monthly_revenue)
            .join(Supplier, Supplier.supplier_id == ChurnPrediction.supplier_id)
            .where(ChurnPrediction.day == day),
            connection,
        )
    engine.dispose()
    assert body["totalAtRisk"] == int(stored["risk_level"].ne("low").sum())
    assert body["totalLtvAtRisk"] == pytest.approx(stored["ltv_at_risk"].sum(), abs=0.01)
    revenue = stored.set_index("supplier_id")["monthly_revenue"]
    for p in items:
        ltv = p["churnProbability"] * revenue[p["userId"]] * 18
        assert p["ltvAtRisk"] == pytest.approx(ltv, abs=0.01)
        assert p["preventionCost"] == pytest.approx(min(0.1 * ltv, 500), abs=0.01)
        assert p["modelVersion"].startswith("churn/") and "billing" in p["factors"]
        assert all(isinstance(a, str) for a in p["recommendedActions"])

    low = live.get(
        f"{PREFIX}/churn-predictions",
        params=[("riskLevel", "low"), ("riskLevel", "medium"), ("limit", "1000")],
        headers=APP,
    ).json()
    assert {p["riskLevel"] for p in low["predictions"]} <= {"low", "medium"}
    assert len(low["predictions"]) == int(stored["risk_level"].isin(["low", "medium"]).sum())
    rich = live.get(
        f"{PREFIX}/churn-predictions", params={"minLtvAtRisk": 100, "limit": 1000}, headers=APP
    ).json()
    assert all(p["ltvAtRisk"] >= 100 for p in rich["predictions"])
    assert len(rich["predictions"]) == int((stored["ltv_at_risk"] >= 100).sum())

    for bad in ({"limit": 0}, {"limit": 1001}, {"riskLevel": "severe"}, {"minLtvAtRisk": "x"}):
        answer = live.get(f"{PREFIX}/churn-predictions", params=bad, headers=APP)
        assert answer.status_code == 422 and answer.json()["success"] is False


def test_score_explain_and_models(live: LiveService, served) -> None:
    from mlflow import MlflowClient

    from training.registry import CHURN_MODEL, HEALTH_MODEL

    ids = served.active_ids()[:3]
    r = live.post("/score", json={"userIds": [*ids, "sup_nobody"]}, headers=APP)
    assert r.status_code == 200, r.text
    scores = r.json()["scores"]
    assert [s["userId"] for s in scores] == [*ids, "sup_nobody"]
    assert [s["found"] for s in scores] == [True, True, True, False]
    assert all(0 <= s["churnProbability"] <= 1 for s in scores[:3])
    assert scores[3]["churnProbability"] is None and scores[3]["breakdown"] is None
    for body in ({"userIds": []}, {"userIds": ["x"] * 1001}, {"userIds": "x"}, {}):
        assert live.post("/score", json=body, headers=APP).status_code == 422

    e = live.post("/explain", json={"userId": ids[0]}, headers=APP)
    assert e.status_code == 200, e.text
    ex = e.json()["explanation"]
    assert ex["baseValue"] + sum(ex["features"].values()) == pytest.approx(ex["margin"], abs=1e-5)
    assert sum(ex["families"].values()) == pytest.approx(sum(ex["features"].values()), abs=1e-5)
    assert live.post("/explain", json={"userId": "sup_nobody"}, headers=APP).status_code == 404

    models = live.get("/models", headers=APP).json()["models"]
    client = MlflowClient(tracking_uri=Settings(home=served.home).tracking_uri)
    for name in (CHURN_MODEL, HEALTH_MODEL):
        champion = client.get_model_version_by_alias(name, "champion")
        served_model = next(m for m in models if m["name"] == name)
        assert served_model["version"] == str(champion.version)
        assert served_model["runId"] == champion.run_id
    assert {m["featureService"] for m in models} == {"churn_v3", "health_v1"}


def test_the_explanation_is_the_champions_margin(live: LiveService, served) -> None:
    """The margin answered is what the champion booster computes from the online row."""
    from feature_repo.readers import OnlineFeatureReader
    from feature_repo.store import open_store
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import store_config

    supplier = served.active_ids()[1]
    settings = Settings(home=served.home)
    champions = load_champions(settings.tracking_uri, 1)
    reader = OnlineFeatureReader(open_store(store_config(settings)))
    rows = reader.read(pd.DataFrame({"supplier_id": [supplier]}), champions.services)
    margin = champions.churn.booster.predict(
        champions.churn.matrix(rows.frame), output_margin=True
    )
    ex = live.post("/explain", json={"userId": supplier}, headers=APP).json()["explanation"]
    assert ex["margin"] == pytest.approx(float(margin[0]), abs=1e-5)


def test_the_online_reader_answers_what_feast_answers(served) -> None:
    """The reader's own online_read per view gives get_online_features' values and stamps."""
    import numpy as np

    from feature_repo.readers import OnlineFeatureReader, service_union
    from feature_repo.store import open_store
    from wedsync_cs.feature_jobs import store_config

    store = open_store(store_config(Settings(home=served.home)))
    suppliers = pd.read_parquet(served.raw / "suppliers.parquet")["supplier_id"].tolist()
    ids = [*suppliers[:150], "sup_unknown"]
    services = ["churn_v3", "health_v1"]
    got = OnlineFeatureReader(store).values(ids, services)
    stamps = np.zeros(len(ids), dtype=np.int64)
    for name in services:
        answer = store.get_online_features(
            features=store.get_feature_service(name),
            entity_rows=[{"supplier_id": i} for i in ids],
        ).to_dict(include_event_timestamps=True)
        for column in service_union([name]):
            assert got.values[column] == answer[column], column
            stamps = np.maximum(stamps, np.asarray(answer[f"{column}__ts"], np.int64))
    np.testing.assert_array_equal(got.stamps, stamps)
    assert 0 < got.found.sum() < len(ids) and not got.found[-1]


def test_live_scores_equal_the_batch_scorer_for_every_supplier(served) -> None:
    """The service's pandas-free path (Scorer.live) and the frames of Scorer.assess give the
    same numbers, levels, factors and dates for every supplier, scored or not."""
    import numpy as np

    from feature_repo.readers import OnlineFeatureReader
    from feature_repo.store import open_store
    from serving.scorer import Scorer
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import store_config

    settings = Settings(home=served.home)
    scorer = Scorer(
        load_champions(settings.tracking_uri, 1),
        OnlineFeatureReader(open_store(store_config(settings))),
    )
    ids = [*pd.read_parquet(served.raw / "suppliers.parquet")["supplier_id"], "sup_unknown"]
    batch = scorer.assess(ids)
    live = scorer.live(ids)
    np.testing.assert_array_equal(live.scored, batch.scores["scored"].to_numpy(bool))
    assert 0 < live.scored.sum() < len(ids)
    scored = batch.scores[batch.scores["scored"]]
    a = live.arrays
    for column in ("churn_probability", "health_score", "health_churn_probability"):
        np.testing.assert_array_equal(getattr(a, column), scored[column].to_numpy(float))
    for column in ("churn_risk", "health_risk"):
        assert list(getattr(a, column)) == list(scored[column])
    assert a.churn_dates == list(scored["predicted_churn_date"])
    assert any(d is not None for d in a.churn_dates)
    for k in range(3):
        assert list(a.top_factors[:, k]) == list(scored[f"top_factor_{k + 1}"])
    families = batch.families[batch.scores["scored"]].dropna(axis=1, how="all")
    np.testing.assert_array_equal(a.families, families.to_numpy(float))
    np.testing.assert_array_equal(
        live.factors[live.scored], batch.factors[batch.scores["scored"]].iloc[:, :6].to_numpy()
    )
    health_only = scorer.live(ids, churn=False)
    np.testing.assert_array_equal(health_only.arrays.health_score, a.health_score)
    assert health_only.arrays.churn_probability is None


def test_scores_take_the_days_stored_churn_part_only_of_the_served_models(served) -> None:
    """/score's churn part comes from the day's stored prediction when the champions served
    made it for the day of the supplier's newest online row: equal to a live scoring for every
    supplier; a stored row of other model versions is not used."""
    from sqlalchemy import update

    from wedsync_cs.service_wiring import build_backend

    assessments = build_backend(Settings(home=served.home)).assessments
    scorer = assessments.scorer
    ids = [*pd.read_parquet(served.raw / "suppliers.parquet")["supplier_id"], "sup_unknown"]
    answers = assessments.scores(ids)
    live = scorer.live(ids)
    a, at = live.arrays, {int(row): k for k, row in enumerate(live.rows)}
    assert [x.found for x in answers] == list(live.scored)
    for i, answer in enumerate(answers):
        if i not in at:
            continue
        k = at[i]
        assert answer.churn_probability == float(a.churn_probability[k])
        assert answer.churn_risk_level == a.churn_risk[k]
        assert answer.predicted_churn_date == a.churn_dates[k]
        assert answer.top_factors == [f for f in a.top_factors[k] if f is not None]
    # the stored row is what is answered: a changed one shows, one of another model does not
    supplier = ids[min(at)]
    row = (ChurnPrediction.supplier_id == supplier) & (ChurnPrediction.day == live.days[min(at)])
    engine = _engine(served)
    with engine.begin() as connection:
        kept = connection.execute(select(ChurnPrediction.churn_probability).where(row)).scalar()
        connection.execute(update(ChurnPrediction).where(row).values(churn_probability=0.5))
    try:
        assert assessments.scores([supplier])[0].churn_probability == 0.5
        with engine.begin() as connection:
            connection.execute(
                update(ChurnPrediction).where(row).values(churn_model_version="other")
            )
        assert (
            assessments.scores([supplier])[0].churn_probability
            == answers[min(at)].churn_probability
        )
    finally:
        with engine.begin() as connection:
            connection.execute(
                update(ChurnPrediction)
                .where(row)
                .values(churn_probability=kept, churn_model_version=scorer.models.churn_version)
            )
        engine.dispose()


def test_onboarding_records_a_milestone_once(live: LiveService, served) -> None:
    supplier = served.active_ids()[5]
    engine = _engine(served)
    with engine.connect() as connection:
        have = set(
            connection.scalars(
                select(SuccessMilestone.milestone_type).where(
                    SuccessMilestone.supplier_id == supplier
                )
            )
        )
    before = live.get(f"{PREFIX}/onboarding/{supplier}", headers=APP).json()["onboarding"]
    assert before["milestonesCompleted"] == len(have) and before["totalMilestones"] == 6
    missing = next(
        (m for m in ("first_automation", "ten_clients", "first_journey") if m not in have), None
    )
    milestone = missing or "first_automation"
    body = {"userId": supplier, "milestoneType": milestone, "metadata": {"satisfactionRating": 4}}
    for _ in range(2):
        r = live.post(f"{PREFIX}/onboarding/milestone", json=body, headers=APP)
        assert r.status_code == 200, r.text
    after = r.json()["onboarding"]
    assert milestone in after["completed"]
    assert after["milestonesCompleted"] == len(have | {milestone})
    with engine.connect() as connection:
        rows = connection.scalar(
            select(func.count())
            .select_from(SuccessMilestone)
            .where(SuccessMilestone.supplier_id == supplier)
            .where(SuccessMilestone.milestone_type == milestone)
        )
    engine.dispose()
    assert rows == 1
    bad = {**body, "metadata": {"satisfactionRating": 9}}
    assert live.post(f"{PREFIX}/onboarding/milestone", json=bad, headers=APP).status_code == 422
    unknown = {"userId": "sup_nobody", "milestoneType": "first_form"}
    assert (
        live.post(f"{PREFIX}/onboarding/milestone", json=unknown, headers=APP).status_code == 404
    )


def test_concurrent_retries_of_one_idempotency_key_make_one_execution(
    live: LiveService, served
) -> None:
    supplier = _top_supplier(served)
    body = {
        "userId": supplier,
        "interventionType": "phone_call",
        "reason": "critical churn risk: billing failures",
        "priority": "critical",
        "customization": {"message": "Call about the failed payment", "specialOffers": ["1m"]},
    }
    headers = {**APP, "Idempotency-Key": f"retry-{time.time_ns()}"}

    def send(_: int):
        return live.post(f"{PREFIX}/interventions/trigger", json=body, headers=headers)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(16)))
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1
    execution = answers[0].json()["execution"]
    assert execution["status"] == "scheduled" and execution["userId"] == supplier

    engine = _engine(served)
    with engine.connect() as connection:
        rows = connection.execute(
            select(InterventionExecution).where(InterventionExecution.supplier_id == supplier)
        ).all()
    engine.dispose()
    mine = [r for r in rows if r.id == execution["id"]]
    assert len(mine) == 1 and len([r for r in rows if r.reason == body["reason"]]) == 1
    row = mine[0]
    assert row.churn_probability_at_trigger is not None and row.health_score_at_trigger is not None
    assert row.estimated_retention_value > 0 and row.triggered_by == "manual"

    other = {**body, "interventionType": "email_sequence"}
    refused = live.post(f"{PREFIX}/interventions/trigger", json=other, headers=headers)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == (
        "idempotency_key_reused"
    )
    unknown = live.post(
        f"{PREFIX}/interventions/trigger", json={**body, "userId": "sup_nobody"}, headers=APP
    )
    assert unknown.status_code == 404
    long_key = {**APP, "Idempotency-Key": "k" * 256}
    assert (
        live.post(f"{PREFIX}/interventions/trigger", json=body, headers=long_key).status_code
        == 422
    )


def test_bad_requests_and_tokens_get_the_error_envelope(live: LiveService) -> None:
    cases = [
        (live.get("/models"), 401),
        (live.get("/models", headers={"Authorization": "Bearer wrong"}), 401),
        (live.get("/models", headers={"Authorization": "Basic abc"}), 401),
        (
            live.post(
                "/score",
                content=b'{"userIds": [',
                headers={**APP, "Content-Type": "application/json"},
            ),
            400,
        ),
        (live.post("/score", json={"userIds": ["a"], "extra": 1}, headers=APP), 422),
        (live.post(f"{PREFIX}/interventions/trigger", json={"userId": "x"}, headers=APP), 422),
        (live.get("/no/such/route", headers=APP), 404),
        (live.get(f"{PREFIX}/health-score/a%0Ab", headers=APP), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["success"] is False and body["error"]["code"] and body["error"]["message"]
        assert "Traceback" not in response.text
    assert live.get("/livez").status_code == 200


@pytest.mark.parametrize("token", ["app-token", "admin-token"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live: LiveService, token: str
) -> None:
    """Every route fuzzed as the app (the admin routes answer 403) and as an admin (bulk
    executions, any agent's worklist, KPIs, agents, the intervention effect)."""
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{live.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {token}",
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,"
            "content_type_conformance",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert "passed" in result.stdout and "16/16" in result.stdout


def test_not_ready_until_the_database_is_migrated_then_ready(served, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    refused = run_cli(served.env(CS_DATABASE_URL=url), "serve")
    assert refused.exit_code == 2 and "wedsync-cs db upgrade" in refused.output
    service = start_service(served.env(CS_DATABASE_URL=url), bare=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if service.get("/livez").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert service.get("/readyz").status_code == 503
        answer = service.get("/models", headers=APP)
        assert answer.status_code == 503
        assert "wedsync-cs db upgrade" in answer.json()["error"]["message"]
        result = run_cli(served.env(CS_DATABASE_URL=url), "db", "upgrade")
        assert result.exit_code == 0, result.output
        wait_until_ready(service, timeout=60)
        assert service.get("/models", headers=APP).status_code == 200
    finally:
        stop_service(service)


def test_serve_without_a_champion_says_to_train_first(tmp_path) -> None:
    result = run_cli({"CS_HOME": str(tmp_path / "empty"), "CS_DATABASE_URL": None}, "serve")
    assert result.exit_code == 2 and "wedsync-cs train" in result.output


def test_a_route_answers_503_when_the_database_goes_away(served) -> None:
    """The app in process over real objects whose database is unreachable."""
    from fastapi.testclient import TestClient

    from feature_repo.readers import OnlineFeatureReader
    from feature_repo.store import open_store
    from serving.api.app import build_app
    from serving.api.auth import TokenBook
    from serving.assessments import SupplierAssessments
    from serving.rules import load_rules
    from serving.scorer import Scorer
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import store_config
    from wedsync_cs.service_wiring import backend_of

    settings = Settings(home=served.home, api_tokens={"t": "app"})
    gone = engine_for("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    scorer = Scorer(
        load_champions(settings.tracking_uri, 1),
        OnlineFeatureReader(open_store(store_config(settings))),
    )
    backend = backend_of(
        TokenBook(settings.api_tokens),
        SupplierAssessments(scorer, gone),
        gone,
        load_rules(settings.rules_path),
        settings,
    )
    headers = {"Authorization": "Bearer t"}
    with TestClient(build_app(lambda: backend)) as client:
        for response in (
            client.get(f"{PREFIX}/churn-predictions", headers=headers),
            client.get(f"{PREFIX}/onboarding/sup_000001", headers=headers),
        ):
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_unavailable"
        ok = client.post("/score", json={"userIds": [served.active_ids()[0]]}, headers=headers)
        assert ok.status_code == 200  # scoring needs no database
    assert not backend.database_reachable()


def test_a_short_request_waits_in_the_pool_while_the_scorer_is_busy(served) -> None:
    """Asked not to wait, a busy scorer says so; over HTTP the short request then runs in
    the thread pool and answers once the scorer is free."""
    import threading

    from fastapi.testclient import TestClient

    from feature_repo.readers import OnlineFeatureReader
    from feature_repo.store import open_store
    from serving.api.app import build_app
    from serving.api.auth import TokenBook
    from serving.assessments import ScorerBusyError, SupplierAssessments
    from serving.rules import load_rules
    from serving.scorer import Scorer
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import store_config
    from wedsync_cs.service_wiring import backend_of

    settings = Settings(home=served.home, api_tokens={"t": "app"})
    engine = _engine(served)
    scorer = Scorer(
        load_champions(settings.tracking_uri, 1),
        OnlineFeatureReader(open_store(store_config(settings))),
    )
    assessments = SupplierAssessments(scorer, engine)
    backend = backend_of(
        TokenBook(settings.api_tokens),
        assessments,
        engine,
        load_rules(settings.rules_path),
        settings,
    )
    supplier = served.active_ids()[0]
    held, release = threading.Event(), threading.Event()

    def busy() -> None:
        with assessments._scoring(wait=True):
            held.set()
            release.wait(10)

    worker = threading.Thread(target=busy)
    worker.start()
    held.wait(10)
    with pytest.raises(ScorerBusyError):
        assessments.health_score(supplier, wait=False)
    threading.Timer(0.5, release.set).start()
    began = time.monotonic()
    token = {"Authorization": "Bearer t"}
    with TestClient(build_app(lambda: backend, lambda: backend)) as client:
        r = client.get(f"{PREFIX}/health-score/{supplier}", headers=token)
        assert r.status_code == 200, r.text
        assert time.monotonic() - began >= 0.4  # it waited for the scorer, in the pool
        worker.join(5)
        one = client.post("/score", json={"userIds": [supplier]}, headers=token)  # free: inline
        assert one.status_code == 200 and one.json()["scores"][0]["found"]
    engine.dispose()
