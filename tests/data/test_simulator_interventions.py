"""The simulator's intervention policy: off changes nothing, on it fills ``interventions_log``
by its rules and caps, holds out a control group, and its effects are real and known."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from features import contract
from features.raw_reader import load_raw
from simulator import SimulationConfig, SimulationSummary, simulate
from simulator.dynamics import Static, WeekContext, initial_state, transition, weekly_churn_hazard
from simulator.files import INTERVENTION_CONTACTS_FILE, INTERVENTION_EFFECTS_FILE
from simulator.interventions import (
    WINDOW_WEEKS,
    Conditions,
    InterventionPolicy,
    Observed,
    Rule,
    TierMultiplier,
    TypeCaps,
    TypeEffects,
    load_policy,
    observables,
    observe,
    parse_policy,
)
from simulator.population import draw_population
from simulator.run import CONTACT_HORIZON_DAYS, INTERVENTION_CONTACTS_SCHEMA
from wedsync_cs.cli import app
from wedsync_cs.settings import get_settings

REPO = Path(__file__).resolve().parents[2]
POLICY_FILE = REPO / "experiments" / "sim_interventions.yaml"
SUPPLIERS, DAYS, SEED = 2500, 365, 7
END = f"timestamp '2024-01-01' + interval {DAYS} day"
FLAT_TIERS = TierMultiplier(starter=1.0, professional=1.0, scale=1.0, enterprise=1.0)


def _effects(size: float) -> TypeEffects:
    return TypeEffects(**dict.fromkeys(contract.INTERVENTION_TYPES, size))


def _experiment(size: float) -> InterventionPolicy:
    """Half held out and half non-responders (for power); every type with the same effect."""
    return InterventionPolicy(
        held_out_share=0.5,
        non_responder_share=0.5,
        effects=_effects(size),
        tier_multiplier=FLAT_TIERS,
    )


# One strong rule, half held out, everyone responding; no second call within 60 days, so the
# contacted group gets no further contact in the window the contacts' truth describes.
SILENT_CALL = InterventionPolicy(
    held_out_share=0.5,
    non_responder_share=0.0,
    effects=TypeEffects(phone_call=1.0),
    tier_multiplier=FLAT_TIERS,
    cap_days=TypeCaps(phone_call=70),
    rules=(
        Rule(
            name="silent-call",
            intervention_type="phone_call",
            when=Conditions(tenure_days_at_least=42, days_since_last_login_at_least=7),
        ),
    ),
)


def _run(tmp_path_factory, name: str, policy: InterventionPolicy | None) -> Path:
    out = tmp_path_factory.mktemp(name) / "set"
    config = SimulationConfig(
        suppliers=SUPPLIERS, days=DAYS, seed=SEED, truth_paths=4, interventions=policy
    )
    simulate(config, out)
    return out


@pytest.fixture(scope="module")
def off_sim(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "off", None)


@pytest.fixture(scope="module")
def default_sim(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "default", load_policy(POLICY_FILE))


@pytest.fixture(scope="module")
def strong_sim(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "strong", _experiment(1.5))


@pytest.fixture(scope="module")
def zero_sim(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "zero", _experiment(0.0))


@pytest.fixture(scope="module")
def silent_call_sim(tmp_path_factory) -> Path:
    return _run(tmp_path_factory, "silent-call", SILENT_CALL)


def _sql(out: Path, query: str) -> list[tuple]:
    con = duckdb.connect()
    for table in contract.TABLES:
        con.execute(
            f"create view {table.name} as select * from "
            f"read_parquet('{out}/raw/{table.name}.parquet')"
        )
    for view, file in [
        ("truth", "truth.parquet"),
        ("effects", INTERVENTION_EFFECTS_FILE),
        ("contacts", INTERVENTION_CONTACTS_FILE),
    ]:
        if (out / file).exists():
            con.execute(f"create view {view} as select * from read_parquet('{out / file}')")
    return con.execute(query).fetchall()


def _files(out: Path) -> dict[str, str]:
    """md5 of every file the simulation wrote, by path within the folder."""
    return {
        str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*.parquet"))
    }


# -- off ---------------------------------------------------------------------------------------


def test_the_policy_is_off_by_default_and_off_changes_nothing(off_sim, tmp_path) -> None:
    assert SimulationConfig().interventions is None and SimulationConfig().policy is None
    disabled = tmp_path / "disabled"
    config = SimulationConfig(
        suppliers=SUPPLIERS,
        days=DAYS,
        seed=SEED,
        truth_paths=4,
        interventions=InterventionPolicy(enabled=False),
    )
    simulate(config, disabled)
    assert _files(disabled) == _files(off_sim)  # byte for byte, and no intervention truth
    assert set(_files(off_sim)) == {"truth.parquet"} | {
        f"raw/{t.name}.parquet" for t in contract.TABLES
    }
    assert pq.read_table(off_sim / "raw/interventions_log.parquet").num_rows == 0


def test_zero_effects_change_nothing_but_the_log(zero_sim, off_sim) -> None:
    """The policy draws from its own stream, so without effects the simulation is the same."""
    on, off = _files(zero_sim), _files(off_sim)
    changed = {name for name in off if on[name] != off[name]}
    assert changed == {"raw/interventions_log.parquet"}
    assert set(on) - set(off) == {INTERVENTION_EFFECTS_FILE, INTERVENTION_CONTACTS_FILE}
    assert pq.read_table(zero_sim / "raw/interventions_log.parquet").num_rows > 500
    contacts = pq.read_table(zero_sim / INTERVENTION_CONTACTS_FILE).to_pandas()
    for h in CONTACT_HORIZON_DAYS:  # no effect: delivered or not, the same future
        assert (contacts[f"p_churn_{h}d_sent"] == contacts[f"p_churn_{h}d_withheld"]).all()


# -- on: the log follows the contract and the policy -------------------------------------------


def test_interventions_log_follows_the_contract_and_the_policy(default_sim) -> None:
    out = default_sim
    tables = load_raw(out / "raw")
    assert tables.report.ok
    log = pq.read_table(out / "raw/interventions_log.parquet")
    assert log.schema.equals(contract.INTERVENTIONS_LOG.schema)
    assert log.num_rows > 1000
    assert set(log["intervention_type"].to_pylist()) == set(contract.INTERVENTION_TYPES)
    (bad,) = _sql(
        out,
        f"""
        select count(*) from interventions_log l left join suppliers s using (supplier_id)
        left join cancellations c using (supplier_id) left join effects e using (supplier_id)
        where s.supplier_id is null or e.held_out
           or l.sent_at < timestamp '2024-01-01' or l.sent_at >= {END}
           or l.sent_at <= s.signup_at or l.sent_at >= c.cancelled_at""",
    )[0]
    assert bad == 0
    # The log is exactly the contacts delivered: the truth's contacts outside the held-out group.
    (delivered, only_log, only_truth) = _sql(
        out,
        """
        with d as (select supplier_id, sent_at, intervention_type from contacts
                   where not held_out)
        select (select count(*) from d),
               (select count(*) from (from interventions_log except all from d)),
               (select count(*) from (from d except all from interventions_log))""",
    )[0]
    assert delivered == log.num_rows and only_log == only_truth == 0


def test_each_type_respects_its_cap(default_sim) -> None:
    """The caps count withheld contacts too, so the held-out group is capped alike."""
    caps = TypeCaps()
    rows = _sql(
        default_sim,
        """
        with gaps as (
            select intervention_type, held_out, epoch(sent_at - lag(sent_at) over (
                partition by supplier_id, intervention_type order by sent_at)) / 86400 as days
            from contacts)
        select intervention_type, min(days), count(days) from gaps
        where days is not null group by 1""",
    )
    assert {kind for kind, *_ in rows} >= {"email_sequence", "in_app_message", "feature_tour"}
    for kind, shortest, repeats in rows:
        assert repeats > 0 and shortest >= getattr(caps, kind), kind
    # and the policy did run up against the caps: some repeats come at the cap itself
    (at_cap,) = _sql(
        default_sim,
        """
        select count(*) from (
            select intervention_type, epoch(sent_at - lag(sent_at) over (
                partition by supplier_id, intervention_type order by sent_at)) / 86400 as days
            from contacts) where intervention_type = 'email_sequence' and days < 15""",
    )[0]
    assert at_cap > 0


def test_the_held_out_share_is_the_configured_one(default_sim, strong_sim) -> None:
    def share(out: Path) -> tuple[float, int, int]:
        return _sql(
            out,
            """select avg(held_out::int),
                      (select count(*) from contacts where held_out),
                      (select count(*) from contacts c join effects e using (supplier_id)
                       where c.held_out != e.held_out) from effects""",
        )[0]

    for out, configured in [(default_sim, 0.1), (strong_sim, 0.5)]:
        held, withheld, mismatched = share(out)
        tolerance = 3.5 * np.sqrt(configured * (1 - configured) / SUPPLIERS)
        assert abs(held - configured) < tolerance, (held, configured)
        assert withheld > 50 and mismatched == 0
    # One draw per supplier from the seed: a larger share holds out a superset.
    (outside,) = _sql(
        default_sim,
        f"""select count(*) from effects d
            join read_parquet('{strong_sim / INTERVENTION_EFFECTS_FILE}') s using (supplier_id)
            where d.held_out and not s.held_out""",
    )[0]
    assert outside == 0


def test_the_truth_states_each_suppliers_true_effect(default_sim) -> None:
    policy = InterventionPolicy()
    effects = pq.read_table(default_sim / INTERVENTION_EFFECTS_FILE).to_pandas()
    assert len(effects) == SUPPLIERS
    assert abs((~effects["responder"]).mean() - policy.non_responder_share) < 0.05
    multiplier = effects["segment"].map(lambda tier: getattr(policy.tier_multiplier, tier))
    for kind in contract.INTERVENTION_TYPES:
        expected = getattr(policy.effects, kind) * multiplier * effects["responder"]
        np.testing.assert_allclose(effects[f"effect_{kind}"], expected, rtol=1e-6)
    assert (effects.loc[~effects["responder"], "effect_phone_call"] == 0).all()
    assert effects["segment"].nunique() == 4


def test_the_policy_works_with_the_other_options(tmp_path: Path) -> None:
    """A cut history cuts the log and the contacts too; plans and feature effects still mix."""
    out, start = tmp_path / "set", 120
    config = SimulationConfig(
        suppliers=800,
        days=DAYS,
        seed=SEED,
        truth_paths=4,
        history_start_days=start,
        yearly_share=0.3,
        cancel_at_renewal=True,
        feature_effects=True,
        interventions=InterventionPolicy(),
    )
    summary = simulate(config, out)
    assert load_raw(out / "raw").report.ok
    cut = f"timestamp '2024-01-01' + interval {start} day"
    n_log, early_log, early_contacts, extra = _sql(
        out,
        f"""select (select count(*) from interventions_log),
                   (select count(*) from interventions_log where sent_at < {cut}),
                   (select count(*) from contacts where sent_at < {cut}),
                   (select count(*) from effects anti join suppliers using (supplier_id))""",
    )[0]
    assert n_log > 100 and early_log == early_contacts == extra == 0
    assert len(pq.read_table(out / INTERVENTION_EFFECTS_FILE)) == summary.suppliers


def _contact_truth(out: Path):
    """The contacts' truth with each supplier's responder flag and true effect of the type."""
    contacts = pq.read_table(out / INTERVENTION_CONTACTS_FILE)
    assert contacts.schema.equals(INTERVENTION_CONTACTS_SCHEMA)
    frame = contacts.to_pandas().merge(
        pq.read_table(out / INTERVENTION_EFFECTS_FILE).to_pandas(),
        on="supplier_id",
        suffixes=("", "_supplier"),
    )
    kind = frame["intervention_type"].map(contract.INTERVENTION_TYPES.index).to_numpy()
    effects = frame[[f"effect_{k}" for k in contract.INTERVENTION_TYPES]].to_numpy()
    frame["effect"] = effects[np.arange(len(frame)), kind]
    return frame


def test_each_contact_states_its_true_churn_if_sent_and_if_withheld(default_sim) -> None:
    contacts = _contact_truth(default_sim)
    columns = [f"p_churn_{h}d_{case}" for h in (30, 60) for case in ("sent", "withheld")]
    values = contacts[columns].to_numpy()
    assert not np.isnan(values).any() and ((values >= 0) & (values <= 1)).all()
    assert contacts["held_out"].sum() > 100  # withheld contacts state what sending would do
    for case in ("sent", "withheld"):  # the same paths: 60 days hold the first 30
        assert (contacts[f"p_churn_60d_{case}"] >= contacts[f"p_churn_30d_{case}"]).all()
    non_responders = contacts[~contacts["responder"]]
    assert len(non_responders) > 500 and (non_responders["effect"] == 0).all()
    for h in CONTACT_HORIZON_DAYS:  # no lift: the same roll-forward, to the bit
        same = non_responders[f"p_churn_{h}d_sent"] == non_responders[f"p_churn_{h}d_withheld"]
        assert same.all(), h
    # Withheld is "no new contact" from the decision on, as p_true is at the week's start: the
    # two agree but for the send time's shift within the day and their Monte Carlo noise.
    (n, corr, mean_p, mean_withheld) = _sql(
        default_sim,
        """select count(*), corr(t.p_true, c.p_churn_30d_withheld), avg(t.p_true),
                  avg(c.p_churn_30d_withheld)
           from contacts c join truth t
             on t.supplier_id = c.supplier_id and t.as_of = date_trunc('day', c.sent_at)""",
    )[0]
    assert n > 2000 and corr > 0.95 and abs(mean_p - mean_withheld) < 0.01, (corr, mean_p)


@pytest.mark.parametrize("fixture", ["default_sim", "strong_sim"])
def test_a_contact_with_an_effect_lowers_the_true_churn(fixture: str, request) -> None:
    contacts = _contact_truth(request.getfixturevalue(fixture))
    responders = contacts[contacts["effect"] > 0]
    assert len(responders) > 1000
    for h in CONTACT_HORIZON_DAYS:
        gain = responders[f"p_churn_{h}d_withheld"] - responders[f"p_churn_{h}d_sent"]
        assert gain.mean() > 0.001 and (gain > 0).mean() > 0.95, (h, gain.describe())


def _after_first_contact(out: Path, horizon: int) -> dict[bool, tuple[int, float, float, float]]:
    """By held_out, over each supplier's first contact of each rule whose window ends within
    the data: contacts, the share cancelled within ``horizon`` days after it (observed), and
    the mean true probability of that if sent and if withheld."""
    rows = _sql(
        out,
        f"""
        with first as (
            select * from contacts
            qualify row_number() over (partition by supplier_id, rule order by sent_at) = 1)
        select f.held_out, count(*),
               avg(coalesce(c.cancelled_at <= f.sent_at + interval {horizon} day, false)::int),
               avg(p_churn_{horizon}d_sent), avg(p_churn_{horizon}d_withheld)
        from first f left join cancellations c using (supplier_id)
        where f.sent_at + interval {horizon} day <= {END}
        group by 1""",
    )
    return {held: (n, observed, sent, withheld) for held, n, observed, sent, withheld in rows}


@pytest.mark.parametrize("horizon", CONTACT_HORIZON_DAYS)
def test_the_contacts_truth_is_the_churn_observed_after_them(silent_call_sim, horizon) -> None:
    """After their first call, held-out suppliers' churn less contacted ones' is the truth's
    mean gap over the same contacts (within 2.5 standard errors of the observed gap; the
    truth's Monte Carlo error is far smaller), and each group's churn the truth's for it
    (within 3)."""
    groups = _after_first_contact(silent_call_sim, horizon)
    (n_t, observed_t, sent_t, withheld_t) = groups[False]
    (n_h, observed_h, sent_h, withheld_h) = groups[True]
    assert min(n_t, n_h) > 100
    gap, se = _gap((n_t, observed_t, 0.0), (n_h, observed_h, 0.0))
    true_gap = ((withheld_t - sent_t) * n_t + (withheld_h - sent_h) * n_h) / (n_t + n_h)
    assert abs(gap - true_gap) < 2.5 * se, (gap, true_gap, se)
    assert true_gap > 2 * se  # the check has teeth: a truth of no effect would fail it
    for n, observed, expected in [(n_t, observed_t, sent_t), (n_h, observed_h, withheld_h)]:
        assert abs(observed - expected) < 3 * np.sqrt(observed * (1 - observed) / n), (
            observed,
            expected,
        )


# -- the effect is real ------------------------------------------------------------------------


def _gap(treated: tuple[int, float, float], held: tuple[int, float, float]) -> tuple[float, float]:
    """Held-out churn less contacted churn, and its standard error."""
    (n_t, p_t, _), (n_h, p_h, _) = treated, held
    return p_h - p_t, float(np.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h))


def _churn_after_first_contact(out: Path) -> dict[tuple[bool, bool], tuple[int, float, float]]:
    """By (held_out, responder): suppliers contacted (or held out) at least once, the share
    of them that cancelled afterwards, and their mean p_true at the last snapshot before the
    first contact (the groups must look alike before it)."""
    rows = _sql(
        out,
        """
        with first as (select supplier_id, min(sent_at) as t0 from contacts group by 1),
        pre as (select f.supplier_id, arg_max(t.p_true, t.as_of) as p_before
                from first f join truth t on t.supplier_id = f.supplier_id and t.as_of <= f.t0
                group by 1)
        select e.held_out, e.responder, count(*), avg((c.supplier_id is not null)::int),
               avg(p_before)
        from first join effects e using (supplier_id) left join pre using (supplier_id)
        left join cancellations c using (supplier_id) group by 1, 2""",
    )
    return {(held, responder): (n, churn, p) for held, responder, n, churn, p in rows}


def test_a_strong_effect_keeps_contacted_suppliers(strong_sim) -> None:
    """Contacted responders against held-out responders who would have been contacted: alike
    before the first contact, far apart after it; for non-responders no gap at all."""
    groups = _churn_after_first_contact(strong_sim)
    n_treated, treated, p_treated = groups[(False, True)]
    n_held, held, p_held = groups[(True, True)]
    assert min(n_treated, n_held) > 400
    assert abs(p_treated - p_held) < 0.01  # randomised: the same risk before the contact
    gap, se = _gap(groups[(False, True)], groups[(True, True)])
    assert gap > 5 * se and treated < 0.4 * held, (treated, held, se)
    gap, se = _gap(groups[(False, False)], groups[(True, False)])
    assert abs(gap) < 2.5 * se, (gap, se)  # non-responders: the contact changes nothing
    # The lift shows in behaviour too: logins in the 4 weeks after the first contact against
    # the 4 weeks before it (a median log-ratio: activity differs tenfold between suppliers).
    rows = _sql(
        strong_sim,
        f"""
        with first as (select supplier_id, min(sent_at)::date as d0 from contacts group by 1
                       having min(sent_at) + interval 28 day <= {END}),
        logins as (
            select f.supplier_id,
                   coalesce(sum(a.logins) filter (where a.date > d0 and a.date <= d0 + 28), 0)
                       as after,
                   coalesce(sum(a.logins) filter (where a.date < d0 and a.date >= d0 - 28), 0)
                       as before
            from first f left join activity_daily a using (supplier_id) group by 1)
        select e.held_out, median(ln((1 + after) / (1 + before)))
        from logins join effects e using (supplier_id) where e.responder group by 1""",
    )
    change = dict(rows)
    assert change[False] > change[True] + 0.3, change


def test_zero_effects_give_no_gap(zero_sim) -> None:
    groups = _churn_after_first_contact(zero_sim)
    for responder in (True, False):
        treated, held = groups[(False, responder)], groups[(True, responder)]
        assert min(treated[0], held[0]) > 400
        gap, se = _gap(treated, held)
        assert abs(gap) < 2.5 * se, (responder, gap, se)
        assert abs(treated[2] - held[2]) < 0.01  # alike before the first contact


# -- the parts -----------------------------------------------------------------------------------


def test_the_lift_lowers_the_hazard_raises_engagement_and_decays() -> None:
    pop = draw_population(3, 400, np.random.default_rng(0))
    state = replace(initial_state(pop, lift=True), engagement=np.full(3, -1.0, np.float32))
    lifted = replace(state, lift=np.array([0.0, 0.5, 1.0], np.float32))
    static = Static.of(pop, lift_decay=0.8, lift_hazard=1.0)
    ctx = WeekContext(
        season=np.full(3, 0.4, np.float32),
        tenure_weeks=np.full(3, 30, np.int32),
        bills=np.zeros(3, bool),
        card_expires=np.zeros(3, bool),
    )
    h0, h = weekly_churn_hazard(state, static, ctx), weekly_churn_hazard(lifted, static, ctx)
    logit = np.log(h / (1 - h)) - np.log(h0 / (1 - h0))
    np.testing.assert_allclose(logit, [0.0, -0.5, -1.0], atol=1e-4)
    draws = {k: np.zeros(3, np.float32) for k in ("engagement", "clients")} | {
        k: np.full(3, 0.5, np.float32)
        for k in ("leave", "pay", "card", "ticket", "bad", "milestone", "feature", "tier")
    }
    (a, _), (b, _) = transition(state, static, ctx, draws), transition(lifted, static, ctx, draws)
    np.testing.assert_allclose(b.engagement - a.engagement, [0.0, 0.15, 0.3], atol=1e-5)
    np.testing.assert_allclose(b.lift, [0.0, 0.4, 0.8], atol=1e-6)
    assert initial_state(pop).lift is None and initial_state(pop).take(np.array([1])).lift is None


def test_the_policy_reads_what_the_app_saw() -> None:
    """Observables over a ring of the last four weeks, from the rows the app received."""
    empty, no_types = np.empty(0, np.int64), np.empty(0, str)

    def rows(**tables: dict) -> dict:
        base = {
            "activity_daily": {"supplier": empty, "day": empty, "logins": empty},
            "feature_usage_daily": {"supplier": empty, "feature": empty},
            "support_tickets": {"supplier": empty, "rating": empty, "rated": empty.astype(bool)},
            "billing_events": {"supplier": empty, "time": empty.astype(float), "type": no_types},
        }
        return base | tables

    obs = Observed.empty(3)
    obs = observe(
        obs,
        0,
        rows(
            activity_daily={
                "supplier": np.array([0, 0, 1]),
                "day": [1, 3, 2],
                "logins": [2, 5, 1],
            },
            feature_usage_daily={"supplier": np.array([0, 0, 0, 1]), "feature": [7, 2, 7, 0]},
            support_tickets={
                "supplier": np.array([1, 2]),
                "rating": np.array([1, 1]),
                "rated": np.array([True, False]),
            },
            billing_events={
                "supplier": np.array([2, 2]),
                "time": np.array([1.5, 4.5]),
                "type": np.array(["payment_succeeded", "payment_failed"]),
            },
        ),
    )
    v = observables(obs, 7, np.array([0.0, 0.5, 6.0]))
    np.testing.assert_array_equal(v["days_since_last_login"], [3, 4, np.inf])
    np.testing.assert_array_equal(v["logins_28d"], [7, 1, 0])
    np.testing.assert_array_equal(v["features_used_28d"], [2, 1, 0])
    np.testing.assert_array_equal(v["bad_ratings_28d"], [0, 1, 0])
    np.testing.assert_array_equal(v["unresolved_payment_failure"], [False, False, True])
    np.testing.assert_allclose(v["tenure_days"], [7.0, 6.5, 1.0])
    # Four quiet weeks later the window is empty, while the last login and the failure remain.
    for week in range(1, 1 + WINDOW_WEEKS):
        obs = observe(obs, week, rows())
    v = observables(obs, 35, np.zeros(3))
    np.testing.assert_array_equal(v["logins_28d"], [0, 0, 0])
    np.testing.assert_array_equal(v["features_used_28d"], [0, 0, 0])
    np.testing.assert_array_equal(v["days_since_last_login"], [31, 32, np.inf])
    assert v["unresolved_payment_failure"][2]


def test_the_policy_file_holds_the_documented_defaults() -> None:
    assert load_policy(POLICY_FILE) == InterventionPolicy()
    assert tuple(TypeEffects.model_fields) == contract.INTERVENTION_TYPES
    assert tuple(TypeCaps.model_fields) == contract.INTERVENTION_TYPES
    assert tuple(TierMultiplier.model_fields) == contract.SUBSCRIPTION_TIERS
    assert parse_policy(None) == InterventionPolicy()  # an empty file: the defaults
    assert InterventionPolicy().lift_decay == pytest.approx(0.5 ** (1 / 3))


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"held_out_share": 1.5}, "held_out_share"),
        ({"held_out_share": float("nan")}, "held_out_share"),
        ({"non_responder_share": -0.1}, "non_responder_share"),
        ({"half_life_weeks": 0}, "half_life_weeks"),
        ({"effects": {"phone_calls": 1.0}}, "effects.phone_calls"),
        ({"effects": {"phone_call": "big"}}, "effects.phone_call"),
        ({"cap_days": {"email_sequence": 0}}, "cap_days.email_sequence"),
        ({"tier_multiplier": {"starter": -1}}, "tier_multiplier.starter"),
        ({"vendor_multiplier": {"wizard": 2.0}}, "vendor_multiplier.wizard"),
        ({"colour": "blue"}, "colour"),
        (
            {
                "rules": [
                    {"name": "r", "intervention_type": "sms", "when": {"tenure_days_at_least": 1}}
                ]
            },
            r"rules\[0\]\.intervention_type",
        ),
        (
            {"rules": [{"name": "r", "intervention_type": "phone_call", "when": {}}]},
            r"rules\[0\]\.when",
        ),
        (
            {
                "rules": [
                    {"name": "r", "intervention_type": "phone_call", "when": {"tenure": 3}},
                ]
            },
            r"rules\[0\]\.when\.tenure",
        ),
        (
            {
                "rules": [
                    {
                        "name": "r",
                        "intervention_type": "email_sequence",
                        "when": {"logins_28d_at_most": 1},
                    },
                    {
                        "name": "r",
                        "intervention_type": "phone_call",
                        "when": {"logins_28d_at_most": 1},
                    },
                ]
            },
            "rules: .*unique",
        ),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(raw: dict, field: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=field):
        parse_policy(raw)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=rf"{path.name} is not a valid intervention policy"):
        load_policy(path)
    if not field.startswith("rules"):  # built in code, the model names the field as well
        with pytest.raises(ValidationError, match=field.split(".")[0]):
            InterventionPolicy(**raw)


def test_the_simulator_imports_neither_serving_nor_training() -> None:
    code = (
        "import sys, simulator, simulator.run, simulator.interventions;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('serving', 'training')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def _cli(tmp_path: Path, *args: str):
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(
            app,
            ["simulate", "--suppliers", "300", "--days", "150", "--truth-paths", "2", *args],
            env={"CS_HOME": str(tmp_path / "home")},
        )
    finally:
        get_settings.cache_clear()


def test_simulate_command_applies_a_policy_file(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = _cli(tmp_path, "--out", str(out), "--interventions", str(POLICY_FILE))
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "raw/interventions_log.parquet").num_rows > 0
    assert (out / INTERVENTION_EFFECTS_FILE).is_file()
    assert (out / INTERVENTION_CONTACTS_FILE).is_file()

    bad = tmp_path / "bad.yaml"
    bad.write_text("held_out_share: 2\n")
    result = _cli(tmp_path, "--out", str(tmp_path / "other"), "--interventions", str(bad))
    assert result.exit_code != 0
    assert "held_out_share" in result.output
    assert not (tmp_path / "other").exists()


def test_summary_counts_the_held_out(strong_sim) -> None:
    """The run's summary and the files agree (what the CLI prints)."""
    summary = simulate(
        SimulationConfig(
            suppliers=SUPPLIERS,
            days=DAYS,
            seed=SEED,
            truth_paths=4,
            interventions=_experiment(1.5),
        ),
        strong_sim.parent / "again",
    )
    assert isinstance(summary, SimulationSummary)
    held, withheld, delivered = _sql(
        strong_sim,
        """select (select count(*) from effects where held_out),
                  (select count(*) from contacts where held_out),
                  (select count(*) from interventions_log)""",
    )[0]
    assert (summary.held_out_suppliers, summary.withheld_contacts) == (held, withheld)
    assert summary.rows["interventions_log"] == delivered
    assert _files(strong_sim.parent / "again") == _files(strong_sim)  # deterministic
