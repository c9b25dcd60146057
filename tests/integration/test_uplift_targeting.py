"""Uplift targeting end to end: ``wedsync-cs monitor uplift`` on the served home (one scored
day: no execution has had its 30 days, so no model, and the worklist says it ranks by risk);
the job on randomised executions planted in a copy of that home (models saved and reloaded,
the day's scores, the worklist ranked by the call's expected saved LTV); and the job's units,
time split, T-learner and Qini verdict on simulated contacts whose true per-contact effects
are known (the simulator's ``p_churn_30d_withheld - p_churn_30d_sent``).

The simulation: one call rule for every plan (tenure 28 days or more, no login for 7 days:
suppliers at risk, about a third of whom cancel within 30 days), half the suppliers held out,
everyone responds, and the call's lift (3 engagement log-units, halving over 26 weeks so that it
lasts through the 30 days) scaled by the tier at signup (starter 0, professional 1, scale 2,
enterprise 3): a call saves about a quarter of the contacted suppliers of the paid plans and
none of the starters. The model sees what the app has of a supplier (current tier, vendor type,
tenure, monthly revenue), not the tier at signup nor the latent engagement. At 20,000 suppliers
over 400 days (about 2,600 units, 1,100 of them judged; 5 to 9 s a simulation on two busy
cores) the Qini interval's lower bound was above 0 for each of seeds 3 to 9 (0.009 to 0.033),
and with every effect 0 below 0 for each of seeds 3 to 6. With the default 3-week half-life
the signal was weaker (one seed of six missed).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from scipy.stats import spearmanr
from sqlalchemy import select, update

from features.contract import SUBSCRIPTION_TIERS, VENDOR_TYPES
from monitoring.report import ReportData, render_report
from monitoring.uplift import load
from serving.api.app import PREFIX, build_app
from serving.db.migrate import engine_for
from serving.db.models import (
    AutomatedIntervention,
    ChurnPrediction,
    InterventionExecution,
    Supplier,
)
from serving.worklist import UPLIFT_DECISION_FILE, Worklists, uplift_scores_name
from simulator import SimulationConfig, simulate
from simulator.interventions import InterventionPolicy
from tests.integration.conftest import TOKENS, ServedHome, run_cli
from wedsync_cs.settings import Settings
from wedsync_cs.uplift_job import (
    CHURN_PROBABILITY,
    ArmMinimum,
    encode_features,
    evaluate_type,
    uplift_units,
)

AGENT = {"Authorization": "Bearer agent-token"}
REPORT_KEYS = {
    "intervention_type",
    "n_train",
    "n_test",
    "qini_coefficient",
    "ci_low",
    "ci_high",
    "beats_random",
    "reason",
    "curve",
}
TYPES = {"email_sequence", "in_app_message", "phone_call", "feature_tour", "personalized_support"}


@contextmanager
def _client(served: ServedHome, url: str, uplift: Path) -> Iterator[TestClient]:
    """The served home's API over ``url``'s database, its worklists reading the uplift folder
    ``uplift`` (what the service's wiring is to pass: CS_HOME/models/uplift)."""
    from wedsync_cs.service_wiring import build_backend

    settings = Settings(home=served.home, database_url=url, api_tokens=TOKENS)
    backend = build_backend(settings)
    backend.worklists = Worklists(backend.engine, uplift_folder=uplift)
    try:
        with TestClient(build_app(lambda: backend)) as client:
            yield client
    finally:
        backend.engine.dispose()


# -- the served home: not enough data yet -------------------------------------------------------
@pytest.mark.integration
@pytest.mark.xdist_group("served")
def test_with_one_scored_day_nothing_is_fitted_and_worklists_rank_by_risk(
    served: ServedHome, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = run_cli(served.env(), "monitor", "uplift")
    assert result.exit_code == 0, result.output
    assert result.output.count("not enough randomised executions yet") == len(TYPES)
    assert result.output.count("targeting off") == len(TYPES)
    assert "uplift x LTV ranking on for: none: every worklist ranks by risk" in result.output
    folder = served.home / "models" / "uplift"
    decision = json.loads((folder / UPLIFT_DECISION_FILE).read_text())
    assert set(decision["types"]) == TYPES and decision["scores"] is None
    call = decision["types"]["phone_call"]
    assert call["targeting"] is False and call["model"] is None
    assert call["reason"].startswith("not enough randomised executions yet: 0 contacted, 200")
    assert "0 held out, 50 needed" in call["reason"]
    pending = {
        r["intervention_type"]: r["n_pending"]
        for r in json.loads(
            (served.home / "reports" / f"uplift-{decision['as_of']}.json").read_text()
        )
    }
    assert sum(pending.values()) > 0  # the day's executions, not yet 30 days old
    records = json.loads(
        (served.home / "reports" / f"uplift-{decision['as_of']}.json").read_text()
    )
    assert {r["intervention_type"] for r in records} == TYPES
    for record in records:
        assert set(record) >= REPORT_KEYS and record["beats_random"] is False
    html = render_report(ReportData(generated_at=datetime.now(UTC), uplift=records))
    assert "Uplift targeting is <strong>off</strong>" in html
    run_id = re.search(r"logged to the champion's MLflow run (\w+)", result.output).group(1)
    tracking = MlflowClient(Settings(home=served.home).tracking_uri)
    history = tracking.get_metric_history(run_id, "uplift.phone_call.targeting")
    assert 0.0 in [m.value for m in history]
    logged = [a.path for a in tracking.list_artifacts(run_id, "monitoring")]
    assert f"monitoring/uplift-{decision['as_of']}.json" in logged
    assert [a.path for a in tracking.list_artifacts(run_id, "monitoring/uplift")] == [
        "monitoring/uplift/decision.json"
    ]
    copy = tmp_path / "operational.db"
    shutil.copy(served.home / "db" / "operational.db", copy)
    with _client(served, f"sqlite:///{copy}", folder) as client:
        page = client.get(f"{PREFIX}/worklist", headers=AGENT).json()
    assert page["ranking"] == "risk" and page["items"]
    assert page["rankingReason"] == (
        f"ranked by risk (churn probability x LTV): phone_call uplift targeting is off: "
        f"{call['reason']}"
    )
    losses = [i["expectedLoss"] for i in page["items"]]
    assert losses == sorted(losses, reverse=True)
    print(
        f"monitor uplift on the served home and the worklist: {time.monotonic() - started:.1f} s"
    )


# -- planted executions: the job's files and the worklist's ranking ------------------------------
def _plant(engine, feature_table: Path, seed: int = 7) -> pd.DataFrame:
    """One phone_call rule execution per supplier on a past Sunday it has a feature row for,
    half held out, and a planted outcome: of the paid plans, 80 % of the held out cancel 10
    days after the decision and 10 % of the contacted; of the starters, 30 % of both. The
    executions and cancellations are written to ``engine`` (a copy); the units returned."""
    rng = np.random.default_rng(seed)
    rows = pq.read_table(feature_table, columns=["supplier_id", "event_timestamp"]).to_pandas()
    rows["event_timestamp"] = pd.to_datetime(rows["event_timestamp"], utc=True)
    with engine.connect() as connection:
        newest = connection.scalar(
            select(ChurnPrediction.day).order_by(ChurnPrediction.day.desc())
        )
        tiers = dict(
            connection.execute(select(Supplier.supplier_id, Supplier.subscription_tier)).all()
        )
        rule = connection.scalar(
            select(AutomatedIntervention.rule_id).where(
                AutomatedIntervention.intervention_type == "phone_call"
            )
        )
    assert rule is not None
    last = pd.Timestamp(newest - timedelta(days=40), tz="UTC")
    weekly = rows[(rows["event_timestamp"].dt.dayofweek == 0) & (rows["event_timestamp"] <= last)]
    picked = weekly.groupby("supplier_id").sample(n=1, random_state=seed)
    units = pd.DataFrame(
        {
            "supplier_id": picked["supplier_id"].to_numpy(),
            "day": (picked["event_timestamp"] - pd.Timedelta(days=1)).dt.date.to_numpy(),
        }
    )
    units["held_out"] = rng.random(len(units)) < 0.5
    paid = units["supplier_id"].map(tiers) != "starter"
    rate = np.where(paid, np.where(units["held_out"], 0.8, 0.1), 0.3)
    units["churned"] = rng.random(len(units)) < rate
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            InterventionExecution.__table__.insert(),
            [
                {
                    "id": str(uuid.uuid4()),
                    "supplier_id": u.supplier_id,
                    "intervention_type": "phone_call",
                    "status": "held_out" if u.held_out else "sent",
                    "scheduled_at": datetime.combine(u.day, datetime.min.time(), UTC),
                    "reason": "planted",
                    "priority": "high",
                    "triggered_by": rule,
                    "rule_id": rule,
                    "control_group": bool(u.held_out),
                    "created_at": now,
                    "updated_at": now,
                    "day": u.day,
                    "attempts": 0,
                }
                for u in units.itertuples()
            ],
        )
        for u in units.itertuples():
            cancelled = (
                datetime.combine(u.day + timedelta(days=11), datetime.min.time(), UTC)
                if u.churned
                else None
            )
            connection.execute(
                update(Supplier)
                .where(Supplier.supplier_id == u.supplier_id)
                .values(cancelled_at=cancelled)
            )
    return units


@pytest.mark.integration
@pytest.mark.xdist_group("served")
def test_the_job_saves_models_and_scores_that_the_worklist_ranks_by(
    served: ServedHome, tmp_path: Path
) -> None:
    from wedsync_cs.uplift_job import run_uplift

    started = time.monotonic()
    home = tmp_path / "home"  # the served models and features; a copy of its database
    home.mkdir()
    for shared in ("features", "mlflow"):
        (home / shared).symlink_to(served.home / shared)
    copy = tmp_path / "operational.db"
    shutil.copy(served.home / "db" / "operational.db", copy)
    url = f"sqlite:///{copy}"
    settings = Settings(home=home, database_url=url)
    engine = engine_for(url)
    try:
        units = _plant(engine, settings.feature_table_path)
        minimum = ArmMinimum(treated=50, control=50, test_treated=20, test_control=20)
        run = run_uplift(settings, min_units=minimum)
    finally:
        engine.dispose()
    by_type = {r["intervention_type"]: r for r in run.records}
    call = by_type["phone_call"]
    assert call["n_train"] + call["n_test"] == len(units) > 300
    assert call["n_without_features"] == 0 and call["n_pending"] == 0
    assert call["test_days"][0] > call["train_days"][1]
    assert call["beats_random"] is True and call["ci_low"] > 0, call["reason"]
    assert run.on == ["phone_call"]
    for kind in TYPES - {"phone_call"}:
        assert by_type[kind]["model_path"] is None and not by_type[kind]["targeting"]
    decision = json.loads(run.decision.read_text())
    assert decision["types"]["phone_call"]["targeting"] is True
    assert decision["types"]["phone_call"]["span"]["test"] == call["test_days"]
    model = load(run.decision.parent / decision["types"]["phone_call"]["model"])
    champion_columns = [c for c in model.feature_names_in_ if c != CHURN_PROBABILITY]
    assert list(model.feature_names_in_) == [*champion_columns, CHURN_PROBABILITY]
    # the day's scores: every active supplier, uplift x 18 months of revenue, as reloaded
    newest = date.fromisoformat(decision["scores"]["day"])
    assert run.scores == run.decision.parent / uplift_scores_name(newest)
    scores = pd.read_parquet(run.scores).set_index("supplier_id")
    check = engine_for(url)
    try:
        with check.connect() as connection:
            revenue = dict(
                connection.execute(
                    select(Supplier.supplier_id, Supplier.monthly_revenue).where(
                        Supplier.status == "active"
                    )
                ).all()
            )
    finally:
        check.dispose()
    assert set(scores.index) == set(revenue)
    np.testing.assert_allclose(
        scores["expected_saved_ltv"], scores["uplift"] * 18 * scores.index.map(revenue)
    )
    stamp = pd.Timestamp(newest + timedelta(days=1), tz="UTC")
    rows = pq.read_table(
        settings.feature_table_path, filters=[("event_timestamp", "==", stamp)]
    ).to_pandas()
    rows = rows.drop_duplicates("supplier_id", keep="last").set_index("supplier_id")
    rows = rows.loc[scores.index[:50]].reset_index()
    from training.registry import load_champions

    rows[CHURN_PROBABILITY] = load_champions(settings.tracking_uri, 1).churn.predict(rows)
    reloaded = model.predict_uplift(encode_features(rows, list(model.feature_names_in_)))
    np.testing.assert_allclose(scores["uplift"].iloc[:50], reloaded, rtol=1e-6)
    assert json.loads(run.report.read_text()) == json.loads(json.dumps(run.records, default=str))
    # the worklist: the call's expected saved LTV, highest first
    with _client(served, url, run.decision.parent) as client:
        page = client.get(f"{PREFIX}/worklist", headers=AGENT).json()
    assert page["ranking"] == "uplift_x_ltv", page["rankingReason"]
    assert page["rankingReason"] == (
        f"ranked by expected saved LTV (phone_call uplift x LTV): {call['reason']}"
    )
    saved = [scores.loc[i["userId"], "expected_saved_ltv"] for i in page["items"]]
    assert saved == sorted(saved, reverse=True) and 0 < len(saved) <= page["capacity"]
    print(
        f"planted: Qini {call['qini_coefficient']:.3f} [{call['ci_low']:.3f}, "
        f"{call['ci_high']:.3f}], {time.monotonic() - started:.1f} s"
    )


# -- simulated contacts with known effects ------------------------------------------------------
SIM_SUPPLIERS = 20_000
SIM_DAYS = 400
SIM_START = date(2024, 1, 1)


def _policy(lift: float) -> InterventionPolicy:
    return InterventionPolicy.model_validate(
        {
            "held_out_share": 0.5,
            "non_responder_share": 0.0,
            "half_life_weeks": 26.0,
            "effects": {k: 0.0 for k in TYPES} | {"phone_call": lift},
            "tier_multiplier": {
                "starter": 0.0,
                "professional": 1.0,
                "scale": 2.0,
                "enterprise": 3.0,
            },
            "rules": [
                {
                    "name": "silent-account-call",
                    "intervention_type": "phone_call",
                    "when": {"tenure_days_at_least": 28, "days_since_last_login_at_least": 7},
                }
            ],
        }
    )


def _judged(folder: Path, lift: float) -> tuple[pd.DataFrame, dict, float]:
    """Simulate, take the calls as the rule engine would record them, fit and judge with the
    job's own steps; the judged units with their true effect, the record and the seconds the
    simulation took."""
    started = time.monotonic()
    simulate(
        SimulationConfig(
            suppliers=SIM_SUPPLIERS,
            days=SIM_DAYS,
            seed=4,
            start=SIM_START,
            truth_paths=2,
            interventions=_policy(lift),
        ),
        folder,
    )
    seconds = time.monotonic() - started
    contacts = pd.read_parquet(folder / "truth_intervention_contacts.parquet")
    suppliers = pd.read_parquet(folder / "raw" / "suppliers.parquet")
    cancellations = pd.read_parquet(folder / "raw" / "cancellations.parquet")
    # decided at a week's start from the data up to the day before: that day is the decision
    contacts["day"] = (contacts["sent_at"].dt.normalize() - pd.Timedelta(days=1)).dt.date
    contacts["true_effect"] = contacts["p_churn_30d_withheld"] - contacts["p_churn_30d_sent"]
    executions = contacts.rename(columns={"held_out": "control_group", "rule": "rule_id"})
    directory = suppliers[["supplier_id"]].merge(
        cancellations[["supplier_id", "cancelled_at"]], on="supplier_id", how="left"
    )
    as_of = SIM_START + timedelta(days=SIM_DAYS - 1)
    units = uplift_units(executions, directory, as_of)
    units = units[units["matured"]].drop(columns="matured").astype({"y": np.int64})
    units = units.merge(suppliers, on="supplier_id")
    tier = pd.Categorical(units["subscription_tier"], categories=SUBSCRIPTION_TIERS)
    vendor = pd.Categorical(units["vendor_type"], categories=VENDOR_TYPES)
    X = pd.concat(
        [
            pd.get_dummies(tier, prefix="tier", dtype=float),
            pd.get_dummies(vendor, prefix="vendor", dtype=float),
        ],
        axis=1,
    ).set_index(units.index)
    decided = pd.to_datetime(units["day"]).dt.tz_localize(UTC)
    X["tenure_days"] = (decided - units["signup_at"]).dt.days.astype(float)
    X["monthly_revenue"] = units["monthly_revenue"]
    frame = pd.concat([units[["supplier_id", "day", "treatment", "y"]], X], axis=1)
    outcome = evaluate_type(frame, list(X.columns), "phone_call")
    assert outcome.model is not None, outcome.record["reason"]
    judged = outcome.judged.merge(
        contacts[["supplier_id", "day", "true_effect"]], on=["supplier_id", "day"], how="left"
    )
    assert judged["true_effect"].notna().all() and len(judged) == outcome.record["n_test"]
    return judged, outcome.record, seconds


@pytest.mark.integration
def test_the_uplift_ranking_finds_the_true_effects_and_beats_random(tmp_path: Path) -> None:
    started = time.monotonic()
    judged, record, seconds = _judged(tmp_path / "effect", lift=3.0)
    rho = spearmanr(judged["uplift"], judged["true_effect"]).statistic
    order = np.argsort(-judged["uplift"].to_numpy(), kind="stable")
    half = len(order) // 2
    effect = judged["true_effect"].to_numpy()
    top, bottom = effect[order[:half]].mean(), effect[order[half:]].mean()
    print(
        f"heterogeneous effect: {record['n_train']} train / {record['n_test']} judged units, "
        f"Spearman {rho:.3f}, true effect top half {top:.3f} bottom half {bottom:.3f}, "
        f"Qini {record['qini_coefficient']:.4f} [{record['ci_low']:.4f}, "
        f"{record['ci_high']:.4f}]; simulation {seconds:.1f} s, "
        f"all {time.monotonic() - started:.1f} s"
    )
    assert record["n_test"] > 800 and record["n_train_held_out"] > 500
    assert rho > 0.3
    assert top > 2 * bottom and top - bottom > 0.1
    assert record["beats_random"] is True and record["targeting"] is True
    assert record["reason"].endswith("above random targeting")


@pytest.mark.integration
def test_with_no_effect_the_uplift_ranking_does_not_beat_random(tmp_path: Path) -> None:
    started = time.monotonic()
    judged, record, seconds = _judged(tmp_path / "null", lift=0.0)
    print(
        f"no effect: {record['n_test']} judged units, Qini {record['qini_coefficient']:.4f} "
        f"[{record['ci_low']:.4f}, {record['ci_high']:.4f}]; simulation {seconds:.1f} s, "
        f"all {time.monotonic() - started:.1f} s"
    )
    assert (judged["true_effect"] == 0).all()  # the truth: a call changes nothing
    assert record["n_test"] > 800 and record["ci_low"] <= 0
    assert record["beats_random"] is False and record["targeting"] is False
    assert record["reason"].endswith("not better than random: ranking by risk")
