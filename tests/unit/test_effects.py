"""Intervention effects against the control group: the analysis units, each outcome and its
window on eight suppliers worked out by hand, the intervals against published and scipy
figures, and randomised trials simulated with a known effect.

The hand frame: one email rule fired on suppliers a, b, c, d (contacted) and e, f, g, h (held
out), all at ``T`` = 2024-03-01 10:00 UTC. The last health day before ``T`` is 2024-02-29 (a
day is scored as of its end); the day of ``T + 14 days`` is 2024-03-15.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitoring.effects import (
    DEFAULT_COSTS,
    MEASURED,
    MISSING,
    PENDING,
    InterventionEffect,
    first_executions,
    intervention_effects,
    newcombe_interval,
    outcome_effect,
    true_retention_effect,
    two_proportion_p_value,
    unit_outcomes,
    welch,
    wilson_interval,
)

TOL = 1e-9
T = pd.Timestamp("2024-03-01 10:00", tz="UTC")
AS_OF = date(2024, 6, 30)  # every window of the hand frame has ended
CONTACTED = ["a", "b", "c", "d"]
HELD_OUT = ["e", "f", "g", "h"]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def execution(
    sid: str,
    at: pd.Timestamp = T,
    *,
    rule: str = "quiet-email",
    kind: str = "email_sequence",
    held_out: bool | None = None,
    delivered: bool | None = None,
) -> dict:
    held = sid in HELD_OUT if held_out is None else held_out
    return {
        "supplier_id": sid,
        "rule": rule,
        "intervention_type": kind,
        "at": at,
        "held_out": held,
        "delivered": (not held and sid != "d") if delivered is None else delivered,
    }


def hand_assignments() -> pd.DataFrame:
    rows = [execution(s) for s in CONTACTED + HELD_OUT]
    # f again, listed first: later, so not its unit (from then it would count as not retained)
    rows.insert(0, execution("f", T + timedelta(days=40)))
    return pd.DataFrame(rows)


CANCELLED = {
    "b": T + timedelta(days=12),  # within 30 days
    "c": T + timedelta(days=45),  # retained at 30, not at 60
    "d": T + timedelta(days=30),  # exactly at the 30-day edge: within it
    "f": T + timedelta(days=30, seconds=1),  # just after it
    "h": T + timedelta(days=70),  # after 60 days
}
REVENUE = {"a": 100.0, "b": 200.0, "c": 300.0, "d": 400.0}


def hand_suppliers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "supplier_id": CONTACTED + HELD_OUT,
            "cancelled_at": [CANCELLED.get(s, pd.NaT) for s in CONTACTED + HELD_OUT],
            "monthly_revenue": [REVENUE.get(s, 50.0) for s in CONTACTED + HELD_OUT],
        }
    )


def hand_logins() -> pd.DataFrame:
    logins = [
        ("a", T - timedelta(days=2)),  # before the contact
        ("a", T + timedelta(hours=1)),  # inside
        ("b", T + timedelta(days=7)),  # the window's last instant: inside
        ("c", T + timedelta(days=7, seconds=1)),  # just after
        ("d", T - timedelta(hours=1)),  # before the contact ...
        ("d", T + timedelta(days=8)),  # ... and after the window
        ("e", T + timedelta(days=3)),  # inside, twice
        ("e", T + timedelta(days=1)),
        ("g", T),  # at the contact itself: not after it
        ("h", T + timedelta(days=6)),  # inside
        ("zz", T + timedelta(days=1)),  # a supplier without units
    ]
    return pd.DataFrame(logins, columns=["supplier_id", "at"])


def hand_health() -> pd.DataFrame:
    scores = [
        ("a", "2024-02-29", 50.0),
        ("a", "2024-03-01", 99.0),  # the day of the contact ends after it: not the baseline
        ("a", "2024-03-15", 60.0),  # +10
        ("b", "2024-02-27", 40.0),  # the last day before T
        ("b", "2024-03-12", 45.0),  # 3 days before the 15th: close enough, +5
        ("c", "2024-02-29", 70.0),
        ("c", "2024-03-11", 80.0),  # 4 days before: too old, missing
        ("d", "2024-03-15", 30.0),  # no baseline: missing
        ("e", "2024-02-29", 50.0),
        ("e", "2024-03-15", 52.0),  # +2
        ("f", "2024-02-28", 60.0),
        ("f", "2024-03-14", 55.0),  # -5
        ("g", "2024-02-29", 80.0),
        ("g", "2024-03-15", 80.0),  # 0
        ("g", "2024-03-16", 10.0),  # after the 15th: not used
        ("h", "2024-02-29", 30.0),
        ("h", "2024-03-13", 33.0),  # +3
    ]
    return pd.DataFrame(
        [{"supplier_id": s, "day": date.fromisoformat(d), "score": v} for s, d, v in scores]
    )


def hand_outcomes(as_of: date = AS_OF) -> pd.DataFrame:
    units = first_executions(hand_assignments())
    out = unit_outcomes(units, hand_suppliers(), as_of, logins=hand_logins(), health=hand_health())
    return out.set_index("supplier_id")


# -- units -----------------------------------------------------------------------------------
def test_the_unit_is_each_suppliers_first_execution_per_rule_or_per_type() -> None:
    rows = pd.DataFrame(
        [
            execution("a", T + timedelta(days=9), rule="r1"),
            execution("a", T, rule="r1"),  # a's first of r1
            execution("a", T - timedelta(days=5), rule="r2"),  # a's first of the type
            execution("b", T, rule="r2"),
            execution("b", T, rule="r2", delivered=False),  # a tie: the earlier row
            execution("b", T, rule="r3", kind="phone_call"),
        ]
    )
    by_rule = first_executions(rows, "rule")
    assert list(zip(by_rule["supplier_id"], by_rule["rule"], strict=True)) == [
        ("a", "r1"),
        ("a", "r2"),
        ("b", "r2"),
        ("b", "r3"),
    ]
    assert list(by_rule["at"]) == [T, T - timedelta(days=5), T, T]
    assert list(by_rule["delivered"]) == [True, True, True, True]
    by_type = first_executions(rows, "type")
    assert list(zip(by_type["supplier_id"], by_type["rule"], strict=True)) == [
        ("a", "r2"),
        ("b", "r2"),
        ("b", "r3"),
    ]


# -- outcomes --------------------------------------------------------------------------------
def test_each_outcome_of_the_hand_frame() -> None:
    out = hand_outcomes()
    assert out.loc["f", "at"] == T  # its first execution, not the later one
    assert out["login_7d"].to_dict() == {
        "a": 1,
        "b": 1,
        "c": 0,
        "d": 0,
        "e": 1,
        "f": 0,
        "g": 0,
        "h": 1,
    }
    changes = out["health_change_14d"]
    assert changes[["a", "b", "e", "f", "g", "h"]].to_list() == [10, 5, 2, -5, 0, 3]
    assert changes[["c", "d"]].isna().all()
    assert out["health_change_14d_status"][["c", "d"]].to_list() == [MISSING, MISSING]
    assert out["retained_30d"].to_dict() == dict.fromkeys("acefgh", 1) | dict.fromkeys("bd", 0)
    assert out["retained_60d"].to_dict() == dict.fromkeys("aegh", 1) | dict.fromkeys("bcdf", 0)
    for outcome in ("login_7d", "retained_30d", "retained_60d"):
        assert (out[f"{outcome}_status"] == MEASURED).all()


def test_a_supplier_cancelled_before_its_contact_counts_as_not_retained() -> None:
    suppliers = hand_suppliers()
    suppliers.loc[suppliers["supplier_id"] == "a", "cancelled_at"] = T - timedelta(hours=2)
    units = first_executions(hand_assignments())
    out = unit_outcomes(units, suppliers, AS_OF).set_index("supplier_id")
    assert (out.loc["a", "retained_30d"], out.loc["a", "retained_60d"]) == (0, 0)


@pytest.mark.parametrize(
    ("as_of", "pending"),
    [
        # T + 7 days is 2024-03-08 10:00: ended by the end of the 8th, not of the 7th
        (date(2024, 3, 7), {"login_7d", "health_change_14d", "retained_30d", "retained_60d"}),
        (date(2024, 3, 8), {"health_change_14d", "retained_30d", "retained_60d"}),
        # the 15th's score is known at its end
        (date(2024, 3, 14), {"health_change_14d", "retained_30d", "retained_60d"}),
        (date(2024, 3, 15), {"retained_30d", "retained_60d"}),
        (date(2024, 3, 30), {"retained_30d", "retained_60d"}),  # T + 30 days: the 31st
        (date(2024, 3, 31), {"retained_60d"}),
        (date(2024, 4, 29), {"retained_60d"}),  # T + 60 days: April 30th
        (date(2024, 4, 30), set()),
    ],
)
def test_an_outcome_is_measured_only_once_its_window_has_ended(
    as_of: date, pending: set[str]
) -> None:
    out = hand_outcomes(as_of)
    for outcome in ("login_7d", "health_change_14d", "retained_30d", "retained_60d"):
        status = out[f"{outcome}_status"]
        if outcome in pending:
            assert (status == PENDING).all(), outcome
            assert out[outcome].isna().all(), outcome
        else:
            assert (status != PENDING).all(), outcome


def test_a_retention_window_ending_at_midnight_ends_with_the_day_before() -> None:
    midnight = ts("2024-03-01 00:00")
    assignments = pd.DataFrame([execution("a", midnight)])
    suppliers = hand_suppliers()
    ended = unit_outcomes(assignments, suppliers, date(2024, 3, 30))
    assert ended["retained_30d_status"].iloc[0] == MEASURED  # ends 2024-03-31 00:00
    young = unit_outcomes(assignments, suppliers, date(2024, 3, 29))
    assert young["retained_30d_status"].iloc[0] == PENDING


# -- the effect rows -------------------------------------------------------------------------
def hand_effects(**options) -> list[InterventionEffect]:
    return intervention_effects(
        hand_assignments(),
        hand_suppliers(),
        AS_OF,
        logins=hand_logins(),
        health=hand_health(),
        **({"min_units": 2} | options),
    )


def test_the_hand_frames_effects() -> None:
    rows = hand_effects()
    assert [(r.intervention_type, r.rule) for r in rows] == [
        ("email_sequence", None),
        ("email_sequence", "quiet-email"),
    ]
    pooled, rule = rows
    assert pooled.model_dump(exclude={"rule"}) == rule.model_dump(exclude={"rule"})
    assert (rule.n_treated, rule.n_control) == (4, 4)
    assert rule.delivery_rate == pytest.approx(3 / 4)  # d was not reached

    assert list(rule.outcomes) == ["login_7d", "health_change_14d", "retained_30d", "retained_60d"]
    login = rule.outcomes["login_7d"]
    assert (login.treated, login.control, login.difference) == (0.5, 0.5, 0.0)
    assert (login.n_treated, login.n_control, login.n_pending, login.n_missing) == (4, 4, 0, 0)
    assert login.p_value == pytest.approx(1.0)
    assert not login.significant
    assert login.verdict.startswith("not significant (p=1)")

    retained = rule.outcomes["retained_30d"]
    assert (retained.treated, retained.control, retained.difference) == (0.5, 1.0, -0.5)
    low, high = newcombe_interval(2, 4, 4, 4)
    assert (retained.ci_low, retained.ci_high) == pytest.approx((low, high), abs=TOL)
    # pooled 6/8: z = -0.5 / sqrt(0.75 * 0.25 * (1/4 + 1/4))
    z = -0.5 / np.sqrt(0.75 * 0.25 * 0.5)
    assert retained.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), abs=TOL)
    assert retained.significant == (high < 0)
    assert rule.verdict == retained.verdict
    r60 = rule.outcomes["retained_60d"]
    assert (r60.treated, r60.control, r60.difference) == (0.25, 0.75, -0.5)

    health = rule.outcomes["health_change_14d"]
    assert health.kind == "mean"
    assert (health.n_treated, health.n_control, health.n_missing) == (2, 4, 2)
    assert (health.treated, health.control, health.difference) == (7.5, 0.0, 7.5)

    # a, b, c, d contacted once each at 0.5: no cost column
    assert rule.cost == pytest.approx(4 * DEFAULT_COSTS["email_sequence"])
    assert rule.mean_ltv == pytest.approx(250.0 * 18)
    # the retention difference and its interval, times 4 contacted units, times 4500, over 2.0
    for name, factor in (
        ("churn_prevented_30d", 4),
        ("ltv_protected", 4 * 4500.0),
        ("roi", 4 * 4500.0 / 2.0),
    ):
        figures = [getattr(rule, f"{name}{s}") for s in ("", "_ci_low", "_ci_high")]
        assert figures == pytest.approx([-0.5 * factor, low * factor, high * factor]), name


def test_welch_matches_scipy_and_the_health_row() -> None:
    treated, control = np.array([10.0, 5.0]), np.array([2.0, -5.0, 0.0, 3.0])
    reference = stats.ttest_ind(treated, control, equal_var=False)
    interval = reference.confidence_interval(confidence_level=0.95)
    difference, low, high, p = welch(treated, control)
    assert difference == pytest.approx(7.5, abs=TOL)
    assert (low, high, p) == pytest.approx((interval.low, interval.high, reference.pvalue))
    health = hand_effects()[1].outcomes["health_change_14d"]
    assert (health.ci_low, health.ci_high, health.p_value) == pytest.approx((low, high, p))
    assert health.significant == (low > 0 or high < 0)
    flat = welch(np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    assert flat == (0.0, None, None, None)


def test_costs_come_from_the_cost_column_else_the_table() -> None:
    assignments = hand_assignments()
    assignments["cost"] = np.nan
    assignments.loc[assignments["supplier_id"] == "a", "cost"] = 3.0
    assignments.loc[assignments["supplier_id"] == "e", "cost"] = 99.0  # held out: not spent
    suppliers = hand_suppliers()
    rule = intervention_effects(assignments, suppliers, AS_OF, min_units=2)[1]
    assert rule.cost == pytest.approx(3.0 + 3 * 0.5)
    cheap = intervention_effects(
        hand_assignments(), suppliers, AS_OF, costs={"email_sequence": 2.0}, min_units=2
    )
    assert cheap[1].cost == pytest.approx(8.0)
    unknown = intervention_effects(hand_assignments(), suppliers, AS_OF, costs={}, min_units=2)
    assert unknown[1].cost is None and unknown[1].roi is None


def test_types_pool_their_rules_with_each_suppliers_first_execution_of_the_type() -> None:
    second = [execution(s, T + timedelta(days=1), rule="quiet-email-2") for s in ("a", "e", "z")]
    tour = [execution("a", T, rule="tour", kind="feature_tour", delivered=True)]
    call = [execution("h", T, rule="call", kind="phone_call")]  # held out only
    assignments = pd.concat([hand_assignments(), pd.DataFrame(second + tour + call)])
    suppliers = pd.concat(
        [hand_suppliers(), pd.DataFrame([{"supplier_id": "z", "monthly_revenue": 1.0}])]
    )
    suppliers["cancelled_at"] = pd.to_datetime(suppliers["cancelled_at"], utc=True)
    rows = intervention_effects(assignments, suppliers, AS_OF, min_units=2)
    assert [(r.intervention_type, r.rule, r.n_treated, r.n_control) for r in rows] == [
        ("email_sequence", None, 5, 4),  # a..d and z contacted; e..h held out
        ("email_sequence", "quiet-email", 4, 4),
        ("email_sequence", "quiet-email-2", 2, 1),
        ("phone_call", None, 0, 1),
        ("phone_call", "call", 0, 1),
        ("feature_tour", None, 1, 0),
        ("feature_tour", "tour", 1, 0),
    ]
    # every contacted email execution: a..d, then a and z again
    assert rows[0].cost == pytest.approx(6 * 0.5)
    assert not rows[3].outcomes["retained_30d"].estimable  # nobody contacted
    assert (rows[3].delivery_rate, rows[3].cost, rows[3].mean_ltv) == (None, 0.0, None)
    assert not rows[5].outcomes["retained_30d"].estimable  # nobody held out


def test_too_few_units_are_not_estimable_rather_than_an_error() -> None:
    for row in hand_effects(min_units=10):  # the default
        assert len(row.outcomes) == 4
        for outcome in row.outcomes.values():
            assert not outcome.estimable and not outcome.significant
            assert outcome.difference is None and outcome.ci_low is None
            assert outcome.treated is None and outcome.p_value is None
            assert outcome.verdict.startswith("not estimable")
        assert row.churn_prevented_30d is None and row.ltv_protected is None and row.roi is None
        assert row.churn_prevented_30d_ci_low is None and row.roi_ci_high is None
        assert row.verdict.startswith("not estimable")
        assert row.outcomes["retained_30d"].n_treated == 4  # the counts are still given


def test_empty_inputs_give_no_rows() -> None:
    empty = hand_assignments().iloc[0:0]
    assert intervention_effects(empty, hand_suppliers(), AS_OF) == []
    assert intervention_effects(pd.DataFrame(), hand_suppliers(), AS_OF) == []


def test_outcomes_without_logins_or_health_are_left_out() -> None:
    rule = intervention_effects(hand_assignments(), hand_suppliers(), AS_OF, min_units=2)[1]
    assert list(rule.outcomes) == ["retained_30d", "retained_60d"]
    assert rule.outcomes["retained_30d"].estimable


def test_the_rows_render_to_json() -> None:
    payload = hand_effects()[1].model_dump(mode="json")
    assert payload["outcomes"]["retained_30d"]["outcome"] == "retained_30d"
    assert payload["verdict"] == payload["outcomes"]["retained_30d"]["verdict"]
    assert payload["churn_prevented_30d"] == -2.0


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("assignments", "held_out"),
        ("assignments", "at"),
        ("suppliers", "cancelled_at"),
        ("logins", "at"),
        ("health", "score"),
    ],
)
def test_a_missing_column_is_named(table: str, column: str) -> None:
    frames = {
        "assignments": hand_assignments(),
        "suppliers": hand_suppliers(),
        "logins": hand_logins(),
        "health": hand_health(),
    }
    frames[table] = frames[table].drop(columns=column)
    with pytest.raises(KeyError, match=rf"{table}\.{column}"):
        intervention_effects(
            frames["assignments"],
            frames["suppliers"],
            AS_OF,
            logins=frames["logins"],
            health=frames["health"],
        )


@pytest.mark.parametrize(
    ("table", "column"),
    [("assignments", "at"), ("suppliers", "cancelled_at"), ("logins", "at")],
)
def test_naive_times_are_refused_with_the_column_named(table: str, column: str) -> None:
    frames = {
        "assignments": hand_assignments(),
        "suppliers": hand_suppliers(),
        "logins": hand_logins(),
    }
    naive = pd.to_datetime(frames[table][column], utc=True).dt.tz_localize(None)
    frames[table][column] = naive
    with pytest.raises(ValueError, match=rf"{table}\.{column}"):
        intervention_effects(
            frames["assignments"], frames["suppliers"], AS_OF, logins=frames["logins"]
        )


def test_other_zones_are_converted_to_utc() -> None:
    assignments = hand_assignments()
    assignments["at"] = assignments["at"].dt.tz_convert("Australia/Sydney").astype(object)
    rows = intervention_effects(assignments, hand_suppliers(), AS_OF, min_units=2)
    assert rows == intervention_effects(hand_assignments(), hand_suppliers(), AS_OF, min_units=2)


def test_inconsistent_inputs_are_refused() -> None:
    wrong = hand_assignments()
    wrong.loc[wrong["supplier_id"] == "e", "delivered"] = True
    with pytest.raises(ValueError, match=r"assignments\.delivered"):
        intervention_effects(wrong, hand_suppliers(), AS_OF)
    stranger = pd.concat([hand_assignments(), pd.DataFrame([execution("zz")])])
    with pytest.raises(ValueError, match=r"assignments\.supplier_id.*zz"):
        intervention_effects(stranger, hand_suppliers(), AS_OF)
    with pytest.raises(TypeError, match="as_of"):
        intervention_effects(hand_assignments(), hand_suppliers(), pd.Timestamp(AS_OF))


# -- the intervals ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
    ],
)
def test_newcombes_published_intervals(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    assert newcombe_interval(x1, n1, x2, n2) == pytest.approx((low, high), abs=5e-5)


def test_wilson_and_the_pooled_z_test() -> None:
    for x, n in ((56, 70), (48, 80), (0, 10), (10, 10), (1, 3)):
        reference = stats.binomtest(x, n).proportion_ci(0.95, method="wilson")
        assert wilson_interval(x, n) == pytest.approx((reference.low, reference.high), abs=TOL)
    assert wilson_interval(0, 10)[0] == 0.0
    pooled = 104 / 150
    z = 0.2 / np.sqrt(pooled * (1 - pooled) * (1 / 70 + 1 / 80))
    assert two_proportion_p_value(56, 70, 48, 80) == pytest.approx(2 * stats.norm.sf(z))
    assert two_proportion_p_value(0, 10, 0, 20) == 1.0


def test_a_proportion_verdict_marks_significance() -> None:
    effect = outcome_effect(
        "retained_30d", np.repeat([1, 0], [56, 14]), np.repeat([1, 0], [48, 32])
    )
    assert effect.significant
    assert (
        effect.verdict == "significant: retained at 30 days +20.0 pp (95% CI 5.2 to 33.4), p=0.008"
    )
    null = outcome_effect("retained_30d", np.repeat([1, 0], [45, 25]), np.repeat([1, 0], [48, 32]))
    assert not null.significant
    assert null.verdict.startswith(f"not significant (p={null.p_value:.2g}): retained at 30 days")


# -- simulated trials ------------------------------------------------------------------------
START = pd.Timestamp("2024-01-01", tz="UTC")


def simulated_trial(
    seed: int, n: int, effects: dict[str, float], health_effect: float = 0.0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per rule, ``n`` suppliers split at random in half: 30-day churn drawn with probability
    ``p_withheld`` (held out) or ``p_withheld - effect`` (contacted); the health score moves by
    noise plus ``health_effect`` when contacted. Returns (assignments, suppliers, health)."""
    rng = np.random.default_rng(seed)
    frames, directory, health = [], [], []
    for rule, effect in effects.items():
        ids = np.array([f"{rule}-{i}" for i in range(n)])
        at = START + pd.to_timedelta(rng.uniform(0, 60, n), unit="D")
        held = rng.random(n) < 0.5
        p_withheld = rng.uniform(0.15, 0.45, n)
        p_sent = p_withheld - effect
        churned = rng.random(n) < np.where(held, p_withheld, p_sent)
        cancelled = at + pd.to_timedelta(rng.uniform(0.01, 30, n), unit="D")
        frames.append(
            pd.DataFrame(
                {
                    "supplier_id": ids,
                    "rule": rule,
                    "intervention_type": "email_sequence",
                    "at": at,
                    "held_out": held,
                    "delivered": ~held,
                    "p_churn_30d_sent": p_sent,
                    "p_churn_30d_withheld": p_withheld,
                }
            )
        )
        directory.append(
            pd.DataFrame(
                {
                    "supplier_id": ids,
                    "cancelled_at": cancelled.where(churned),
                    "monthly_revenue": 100.0,
                }
            )
        )
        before = rng.uniform(20, 80, n)
        after = before + rng.normal(0, 8, n) + np.where(held, 0.0, health_effect)
        days = at.floor("D")
        health.append(
            pd.DataFrame(
                {
                    "supplier_id": np.concatenate([ids, ids]),
                    "day": np.concatenate(
                        [days - pd.Timedelta(days=1), days + pd.Timedelta(days=14)]
                    ),
                    "score": np.concatenate([before, after]),
                }
            )
        )
    return pd.concat(frames), pd.concat(directory), pd.concat(health)


TRIAL_AS_OF = date(2024, 6, 1)  # every window has ended


def test_a_planted_effect_is_recovered_within_its_interval() -> None:
    assignments, suppliers, health = simulated_trial(7, 4000, {"effect": 0.1}, health_effect=3.0)
    rule = intervention_effects(assignments, suppliers, TRIAL_AS_OF, health=health)[1]
    retained = rule.outcomes["retained_30d"]
    truth = true_retention_effect(first_executions(assignments), 30, TRIAL_AS_OF)
    assert truth == pytest.approx(0.1)
    assert retained.significant and retained.difference is not None
    assert retained.ci_low is not None and retained.ci_high is not None
    assert retained.ci_low < truth < retained.ci_high
    assert abs(retained.difference - truth) < 0.03
    assert rule.churn_prevented_30d == pytest.approx(retained.difference * rule.n_treated)
    change = rule.outcomes["health_change_14d"]
    assert change.significant
    assert change.ci_low is not None and change.ci_high is not None
    assert change.ci_low < 3.0 < change.ci_high


def test_a_zero_effect_is_not_significant_in_most_seeds_and_intervals_cover_the_truth() -> None:
    seeds = range(40)
    false_alarms = covered = 0
    for seed in seeds:
        assignments, suppliers, _ = simulated_trial(seed, 400, {"null": 0.0, "planted": 0.08})
        rows = {r.rule: r for r in intervention_effects(assignments, suppliers, TRIAL_AS_OF)}
        false_alarms += rows["null"].outcomes["retained_30d"].significant
        planted = rows["planted"].outcomes["retained_30d"]
        units = first_executions(assignments[assignments["rule"] == "planted"])
        truth = true_retention_effect(units, 30)
        assert truth is not None and planted.ci_low is not None and planted.ci_high is not None
        covered += planted.ci_low <= truth <= planted.ci_high
    # 95% intervals: about 2 false alarms and 38 covered in 40 expected
    assert false_alarms <= 5
    assert covered >= 34


def test_the_true_effect_needs_its_columns_and_can_keep_ended_windows_only() -> None:
    units = pd.DataFrame(
        {
            "at": [T, T + timedelta(days=10)],
            "p_churn_30d_sent": [0.1, 0.2],
            "p_churn_30d_withheld": [0.3, 0.3],
        }
    )
    assert true_retention_effect(units) == pytest.approx(0.15)
    # T + 30 days is 2024-03-31 10:00; the second unit's window ends on April 10th
    assert true_retention_effect(units, 30, date(2024, 4, 5)) == pytest.approx(0.2)
    assert true_retention_effect(units, 30, date(2024, 3, 1)) is None
    with pytest.raises(KeyError, match=r"units\.p_churn_60d_sent"):
        true_retention_effect(units, 60)
