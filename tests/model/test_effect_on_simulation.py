"""The measured effect of interventions against the simulator's truth: the policy contacts the
suppliers a rule fires on and holds out a random half; :func:`monitoring.effects.
intervention_effects` on its contacts and the export's cancellations must find the true effect
(the truth's mean of p_withheld - p_sent over the same units) inside its confidence interval,
call it significant, and find nothing when the effect is zero."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from monitoring.effects import first_executions, intervention_effects, true_retention_effect
from simulator import SimulationConfig, simulate
from simulator.interventions import (
    Conditions,
    InterventionPolicy,
    Rule,
    TierMultiplier,
    TypeCaps,
    TypeEffects,
)
from simulator.run import INTERVENTION_CONTACTS_FILE

START, DAYS, SUPPLIERS, SEED = date(2024, 1, 1), 365, 20000, 11


def _policy(effect: float) -> InterventionPolicy:
    """One call rule, half held out, a second call no sooner than 70 days: within 60 days of
    its first call a contacted supplier gets nothing else, as the truth's probabilities say."""
    return InterventionPolicy(
        held_out_share=0.5,
        non_responder_share=0.3,
        effects=TypeEffects(phone_call=effect),
        tier_multiplier=TierMultiplier(starter=0.6, professional=1.0, scale=1.2, enterprise=1.4),
        cap_days=TypeCaps(phone_call=70),
        rules=(
            Rule(
                name="silent-call",
                intervention_type="phone_call",
                when=Conditions(tenure_days_at_least=42, days_since_last_login_at_least=7),
            ),
        ),
    )


def _measured(tmp_path_factory, effect: float) -> tuple[list, pd.DataFrame, date]:
    out: Path = tmp_path_factory.mktemp(f"effect-{effect}") / "set"
    simulate(
        SimulationConfig(
            suppliers=SUPPLIERS, days=DAYS, seed=SEED, truth_paths=8, interventions=_policy(effect)
        ),
        out,
    )
    contacts = pq.read_table(out / INTERVENTION_CONTACTS_FILE).to_pandas()
    assignments = contacts.rename(columns={"sent_at": "at"})
    assignments["at"] = pd.to_datetime(assignments["at"], utc=True)
    assignments["delivered"] = ~assignments["held_out"]
    suppliers = pq.read_table(
        out / "raw" / "suppliers.parquet", columns=["supplier_id", "monthly_revenue"]
    ).to_pandas()
    cancellations = pq.read_table(out / "raw" / "cancellations.parquet").to_pandas()
    suppliers = suppliers.merge(
        cancellations[["supplier_id", "cancelled_at"]], on="supplier_id", how="left"
    )
    suppliers["cancelled_at"] = pd.to_datetime(suppliers["cancelled_at"], utc=True)
    as_of = START + timedelta(days=DAYS - 1)  # the export's last day
    return intervention_effects(assignments, suppliers, as_of), assignments, as_of


@pytest.fixture(scope="module")
def with_effect(tmp_path_factory):
    return _measured(tmp_path_factory, 1.0)


@pytest.fixture(scope="module")
def without_effect(tmp_path_factory):
    return _measured(tmp_path_factory, 0.0)


@pytest.mark.parametrize("horizon", [30, 60])
def test_the_measured_effect_covers_the_true_effect(with_effect, horizon) -> None:
    effects, assignments, as_of = with_effect
    rule = next(e for e in effects if e.rule == "silent-call")
    measured = rule.outcomes[f"retained_{horizon}d"]
    assert measured.estimable and min(measured.n_treated, measured.n_control) > 100
    truth = true_retention_effect(first_executions(assignments), horizon, as_of=as_of)
    assert truth is not None and truth > 0.03  # a real effect to find
    assert measured.ci_low <= truth <= measured.ci_high, (measured, truth)
    assert measured.significant and measured.difference > 0
    # the type's pooled row is the same units here (one rule of the type)
    pooled = next(e for e in effects if e.rule is None and e.intervention_type == "phone_call")
    assert pooled.outcomes[f"retained_{horizon}d"].difference == pytest.approx(measured.difference)
    assert rule.churn_prevented_30d is not None and rule.churn_prevented_30d > 0


def test_no_effect_is_reported_as_not_significant(without_effect) -> None:
    effects, assignments, as_of = without_effect
    rule = next(e for e in effects if e.rule == "silent-call")
    truth = true_retention_effect(first_executions(assignments), 30, as_of=as_of)
    assert truth == pytest.approx(0.0, abs=1e-12)
    for outcome in ("retained_30d", "retained_60d"):
        measured = rule.outcomes[outcome]
        assert measured.estimable and measured.ci_low <= 0 <= measured.ci_high
        assert not measured.significant and measured.verdict.startswith("not significant")
