"""The simulator's output: contract conformity, determinism, and the behaviour it promises."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features import contract
from features.raw_reader import load_raw
from simulator import SimulationConfig, SimulationSummary, simulate
from simulator.dynamics import (
    Static,
    WeekContext,
    draw,
    initial_state,
    transition,
    weekly_churn_hazard,
)
from simulator.population import draw_population
from simulator.truth import true_churn_probability
from wedsync_cs.cli import app
from wedsync_cs.settings import get_settings

START = date(2024, 1, 1)
DAYS = 730


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp("sim") / "set"
    summary = simulate(
        SimulationConfig(suppliers=3000, days=DAYS, seed=11, start=START, truth_paths=16), out
    )
    return out, summary


def _sql(out: Path, query: str) -> list[tuple]:
    con = duckdb.connect()
    for table in contract.TABLES:
        con.execute(
            f"create view {table.name} as select * from "
            f"read_parquet('{out}/raw/{table.name}.parquet')"
        )
    con.execute(f"create view truth as select * from read_parquet('{out}/truth.parquet')")
    return con.execute(query).fetchall()


def test_output_follows_the_contract(sim) -> None:
    out, summary = sim
    tables = load_raw(out / "raw")
    assert tables.report.ok
    for spec in contract.TABLES:
        assert pq.read_schema(out / "raw" / f"{spec.name}.parquet").equals(spec.schema)
        assert len(tables[spec.name]) == summary.rows[spec.name]
    assert summary.rows["suppliers"] == 3000
    assert all(
        summary.rows[t] > 0
        for t in (
            "activity_daily",
            "support_tickets",
            "billing_events",
            "milestones",
            "cancellations",
        )
    )


def _arrow(out: Path, query: str) -> pa.Table:
    con = duckdb.connect()
    for table in [*(t.name for t in contract.TABLES), "truth"]:
        path = out / ("truth.parquet" if table == "truth" else f"raw/{table}.parquet")
        con.execute(f"create view {table} as select * from read_parquet('{path}')")
    return con.sql(query).to_arrow_table()


def test_monthly_churn_is_in_the_2_to_6_percent_band(sim) -> None:
    out, summary = sim
    assert 0.02 <= summary.monthly_churn_rate <= 0.06
    (n_cancelled,) = _sql(out, "select count(*) from cancellations")[0]
    assert n_cancelled == summary.cancellations


def test_truth_rows_are_active_suppliers_with_fully_observed_labels(sim) -> None:
    out, _ = sim
    bad = _sql(
        out,
        """
        select count(*) from truth t join suppliers s using (supplier_id)
        left join cancellations c using (supplier_id)
        where s.signup_at > t.as_of or c.cancelled_at <= t.as_of
           or t.as_of + interval 30 day > timestamp '2024-01-01' + interval 730 day
           or t.label != (c.cancelled_at > t.as_of
                          and c.cancelled_at <= t.as_of + interval 30 day)::int
        """,
    )[0][0]
    assert bad == 0
    weekdays = _sql(out, "select distinct dayofweek(as_of) from truth")
    assert weekdays == [(1,)]  # every Monday 00:00, the end of each Sunday (weekly snapshots)


def test_truth_is_calibrated_and_not_read_off_the_future(sim) -> None:
    out, _ = sim
    mean_p, rate, p_pos, p_neg = _sql(
        out,
        """
        select avg(p_true), avg(label), avg(p_true) filter (label = 1),
               avg(p_true) filter (label = 0) from truth""",
    )[0]
    assert abs(mean_p - rate) < 0.15 * rate
    # a probability given the present state, not the outcome: churners were not certain
    assert p_pos < 0.6 and p_neg > 0.0 and p_pos > 5 * p_neg


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    def run(seed: int, name: str) -> Path:
        out = tmp_path / name
        simulate(SimulationConfig(suppliers=150, days=120, seed=seed, truth_paths=8), out)
        return out

    a, b, c = run(5, "a"), run(5, "b"), run(6, "c")
    for name in [t.name for t in contract.TABLES]:
        ta, tb = (pq.read_table(x / "raw" / f"{name}.parquet") for x in (a, b))
        assert ta.equals(tb), name
    assert pq.read_table(a / "truth.parquet").equals(pq.read_table(b / "truth.parquet"))
    assert not pq.read_table(a / "raw/activity_daily.parquet").equals(
        pq.read_table(c / "raw/activity_daily.parquet")
    )


def _logins_per_present_day(out: Path, months: tuple[int, ...], southern: bool) -> float:
    """Logins per day a photographer was signed up, over the given calendar months."""
    countries = "('AU', 'NZ', 'ZA')"
    where = f"country {'in' if southern else 'not in'} {countries}"
    month_list = ", ".join(map(str, months))
    logins, present = _sql(
        out,
        f"""
        with sup as (
            select supplier_id, signup_at::date as first_day,
                   coalesce(c.cancelled_at::date, date '2025-12-31') as last_day
            from suppliers s left join cancellations c using (supplier_id)
            where vendor_type in ('photographer', 'videographer', 'florist', 'hair_makeup')
              and {where}),
        cal as (select unnest(range(date '2024-07-01', date '2025-12-31', interval 1 day))::date
                as day)
        select (select sum(logins) from activity_daily a join sup using (supplier_id)
                where month(a.date) in ({month_list}) and a.date >= date '2024-07-01'),
               (select count(*) from sup join cal on cal.day between first_day and last_day
                where month(cal.day) in ({month_list}))
        """,
    )[0]
    return logins / present


def test_season_sign_differs_by_hemisphere(sim) -> None:
    out, _ = sim
    north_summer, north_winter = (6, 7, 8, 9), (12, 1, 2)
    assert _logins_per_present_day(out, north_summer, False) > 1.1 * _logins_per_present_day(
        out, north_winter, False
    )
    assert _logins_per_present_day(out, north_winter, True) > 1.1 * _logins_per_present_day(
        out, north_summer, True
    )


def test_engagement_decays_before_most_cancellations(sim) -> None:
    out, _ = sim
    rows = _sql(
        out,
        """
        with cc as (
            select c.supplier_id, c.cancelled_at::date as cd
            from cancellations c join suppliers s using (supplier_id)
            where c.cancelled_at - s.signup_at > interval 150 day)
        select cc.supplier_id,
               coalesce(sum(logins) filter (where cd - a.date between 1 and 30), 0) / 30.0,
               coalesce(sum(logins) filter (where cd - a.date between 91 and 120), 0) / 30.0
        from cc left join activity_daily a using (supplier_id) group by 1""",
    )
    last30 = np.array([r[1] for r in rows])
    before = np.array([r[2] for r in rows])
    assert len(rows) > 100
    # relative to each supplier's own level (normal activity differs tenfold between suppliers)
    assert np.median(np.log((last30 + 0.1) / (before + 0.1))) < np.log(0.5)
    assert (last30 < before).mean() > 0.6  # most cancellations, not only on average


# -- options: exports shaped unlike the default simulator ------------------------------------

OPT_SUPPLIERS, OPT_DAYS, OPT_SEED, HISTORY_START = 1500, 500, 21, 200
MONTHLY_PRICES = (19.0, 49.0, 99.0, 249.0)
YEARLY_PRICES = tuple(10 * p for p in MONTHLY_PRICES)
EXIT_FEATURES = "('document_library', 'analytics')"


def _simulate_option(tmp_path_factory, name: str, **options) -> tuple[Path, SimulationSummary]:
    out = tmp_path_factory.mktemp(name) / "set"
    config = SimulationConfig(
        suppliers=OPT_SUPPLIERS, days=OPT_DAYS, seed=OPT_SEED, truth_paths=8, **options
    )
    return out, simulate(config, out)


@pytest.fixture(scope="module")
def full_sim(tmp_path_factory) -> tuple[Path, SimulationSummary]:
    return _simulate_option(tmp_path_factory, "full")


@pytest.fixture(scope="module")
def history_sim(tmp_path_factory) -> tuple[Path, SimulationSummary]:
    return _simulate_option(tmp_path_factory, "history", history_start_days=HISTORY_START)


@pytest.fixture(scope="module")
def renewal_sim(tmp_path_factory) -> tuple[Path, SimulationSummary]:
    return _simulate_option(tmp_path_factory, "renewal", yearly_share=0.3, cancel_at_renewal=True)


@pytest.fixture(scope="module")
def feature_sim(tmp_path_factory) -> tuple[Path, SimulationSummary]:
    return _simulate_option(tmp_path_factory, "features", feature_effects=True)


def test_history_start_cuts_events_but_keeps_true_signups(history_sim, full_sim) -> None:
    out, summary = history_sim
    cut = f"timestamp '2024-01-01' + interval {HISTORY_START} day"
    for table, column in [
        ("activity_daily", "date"),
        ("feature_usage_daily", "date"),
        ("clients_daily", "date"),
        ("support_tickets", "created_at"),
        ("billing_events", "occurred_at"),
        ("milestones", "achieved_at"),
        ("cancellations", "cancelled_at"),
        ("truth", "as_of"),
    ]:
        n_rows, n_early = _sql(
            out, f"select count(*), count(*) filter ({column} < {cut}) from {table}"
        )[0]
        assert n_rows > 0 and n_early == 0, table
    n_suppliers, n_older = _sql(
        out, f"select count(*), count(*) filter (signup_at < {cut}) from suppliers"
    )[0]
    assert n_suppliers == summary.suppliers == summary.rows["suppliers"]
    assert n_older == summary.signed_up_before_history > 0.25 * n_suppliers
    # Suppliers who cancelled before the history start are left out altogether.
    (left_out,) = _sql(
        full_sim[0], f"select count(*) from cancellations where cancelled_at < {cut}"
    )[0]
    assert left_out == summary.cancelled_before_history > 0
    assert n_suppliers == OPT_SUPPLIERS - left_out
    assert summary.history_start_day == HISTORY_START
    assert 0.02 <= summary.monthly_churn_rate <= 0.06
    assert load_raw(out / "raw").report.ok


def test_history_start_is_the_same_simulation_cut(history_sim, full_sim) -> None:
    """The option only cuts: what remains is the full run's rows from the history start on."""
    out, full = history_sim[0], full_sim[0]
    cut = f"timestamp '2024-01-01' + interval {HISTORY_START} day"
    for table, column, key in [
        ("activity_daily", "date", "supplier_id, date"),
        ("feature_usage_daily", "date", "supplier_id, date, feature_key"),
        ("support_tickets", "created_at", "supplier_id, created_at"),
        ("cancellations", "cancelled_at", "supplier_id"),
        ("truth", "as_of", "supplier_id, as_of"),
    ]:
        columns = "* exclude (ticket_id)" if table == "support_tickets" else "*"
        query = f"select {columns} from {table} where {column} >= {cut} order by {key}"
        assert _arrow(out, query).equals(_arrow(full, query)), table


def test_renewal_cancellations_fall_on_renewal_days(renewal_sim) -> None:
    out, summary = renewal_sim
    rows = _sql(
        out,
        f"""
        with plan as (
            select supplier_id, bool_or(amount in {YEARLY_PRICES}) as yearly,
                   bool_or(amount in {MONTHLY_PRICES}) as monthly
            from billing_events where event_type in ('payment_succeeded', 'payment_failed')
            group by 1)
        select p.yearly, p.monthly,
               date_diff('day', s.signup_at::date, c.cancelled_at::date) as since_signup
        from cancellations c join suppliers s using (supplier_id)
        left join plan p using (supplier_id)""",
    )
    assert len(rows) == summary.cancellations > 100
    for yearly, monthly, since_signup in rows:
        assert not (yearly and monthly)
        assert since_signup > 0
        cycles = (365,) if yearly else (30,) if monthly else (30, 365)
        assert any(since_signup % c == 0 for c in cycles), (yearly, monthly, since_signup)
    assert sum(bool(r[0]) for r in rows) > 5  # yearly suppliers did cancel (at a renewal)
    assert 0.01 <= summary.monthly_churn_rate <= 0.06


def test_yearly_plans_pay_ten_months_once_a_year(renewal_sim) -> None:
    out, _ = renewal_sim
    gaps = _sql(
        out,
        f"""
        with pay as (
            select supplier_id, occurred_at, amount in {YEARLY_PRICES} as yearly,
                   amount in {MONTHLY_PRICES} as monthly
            from billing_events where event_type = 'payment_succeeded'),
        gap as (
            select yearly, monthly, date_diff('day', lag(occurred_at) over (
                partition by supplier_id order by occurred_at), occurred_at) as days
            from pay)
        select yearly, monthly, count(*), median(days),
               avg((abs(days - case when yearly then 365 else 30 end) <= 7)::int)
        from gap where days is not null group by 1, 2 order by 1""",
    )
    assert [(y, m) for y, m, *_ in gaps] == [(False, True), (True, False)]  # 10x or 1x a price
    (_, _, n_monthly, median_monthly, near_monthly), (_, _, n_yearly, median_yearly, near) = gaps
    assert n_monthly > 1000 and median_monthly == 30 and near_monthly > 0.9
    assert n_yearly > 20 and median_yearly == 365 and near > 0.9
    # The plan of suppliers who signed up in the first 120 days, all past a renewal by the end
    # (a payment due on the signup day before the signup time is not written, so a yearly
    # supplier who signed up late in the day shows no payment until its first renewal).
    (yearly_share,) = _sql(
        out,
        f"""select avg(yearly::int) from (
                select bool_or(amount in {YEARLY_PRICES}) as yearly
                from billing_events b join suppliers s using (supplier_id)
                where event_type in ('payment_succeeded', 'payment_failed')
                  and s.signup_at < timestamp '2024-01-01' + interval 120 day
                group by supplier_id)""",
    )[0]
    assert 0.2 < yearly_share < 0.4  # yearly_share=0.3
    # the plan changes how a supplier pays, not its monthly revenue
    (bad,) = _sql(
        out, f"select count(*) from suppliers where monthly_revenue not in {MONTHLY_PRICES}"
    )[0]
    assert bad == 0


@pytest.mark.parametrize("fixture", ["renewal_sim", "feature_sim", "history_sim"])
def test_truth_stays_calibrated_with_options(fixture: str, request) -> None:
    out, summary = request.getfixturevalue(fixture)
    mean_p, rate, p_pos, p_neg = _sql(
        out,
        """
        select avg(p_true), avg(label), avg(p_true) filter (label = 1),
               avg(p_true) filter (label = 0) from truth""",
    )[0]
    assert abs(mean_p - rate) < 0.15 * rate
    assert p_pos > 3 * p_neg
    assert summary.truth_rows > 10_000


def _renewal_context(n: int, week: int, rng: np.random.Generator) -> WeekContext:
    return WeekContext(
        season=np.full(n, 0.3 + 0.05 * week, np.float32),
        tenure_weeks=np.full(n, 10 + week, np.int32),
        bills=rng.random(n) < 0.25,
        card_expires=rng.random(n) < 0.02,
        renews=rng.random(n) < 0.4,
        period_weeks=np.where(rng.random(n) < 0.5, 30 / 7, 365 / 7).astype(np.float32),
        renew_offset=rng.integers(0, 7, n).astype(np.int32),
    )


def test_truth_estimator_is_exact_when_cancelling_at_renewal() -> None:
    """Against a plain Monte Carlo that samples the cancellation day itself: a renewal in the
    horizon's last partial week counts only when its day is inside the horizon."""
    rng = np.random.default_rng(3)
    n = 60
    pop = draw_population(n, 400, rng)
    static = Static.of(pop, feature_effects=True)
    state = initial_state(pop)
    for week in range(12):
        state, _ = transition(state, static, _renewal_context(n, week, rng), draw(rng, (n,)))
    contexts = [_renewal_context(n, 12 + j, np.random.default_rng(j)) for j in range(5)]
    p, se = true_churn_probability(
        state, static, contexts, 30, np.random.default_rng(9), paths=512, threads=2
    )

    paths = 6000
    rows = np.repeat(np.arange(n), paths)
    s, st, ctx = state.take(rows), static.take(rows), [c.take(rows) for c in contexts]
    sim_rng = np.random.default_rng(10)
    churned = np.zeros(n * paths, bool)
    for j in range(len(contexts)):
        h = weekly_churn_hazard(s, st, ctx[j])
        day = 7 * j + ctx[j].renew_offset + sim_rng.random(n * paths)
        churned |= (sim_rng.random(n * paths) < h) & (day <= 30)
        s, _ = transition(s, st, ctx[j], draw(sim_rng, (n * paths,)))
    naive = churned.reshape(n, paths).mean(axis=1)
    naive_se = np.sqrt(naive * (1 - naive) / paths)

    assert p.std() > 0.01
    tolerance = 4 * np.sqrt(naive_se**2 + se**2) + 2e-3
    assert np.all(np.abs(p - naive) < tolerance), np.c_[p, naive, tolerance]


def test_renewal_hazard_accumulates_the_period() -> None:
    n = 4
    pop = draw_population(n, 400, np.random.default_rng(0))
    state, static = initial_state(pop), Static.of(pop)
    base = WeekContext(
        season=np.full(n, 0.2, np.float32),
        tenure_weeks=np.full(n, 20, np.int32),
        bills=np.zeros(n, bool),
        card_expires=np.zeros(n, bool),
    )
    h = weekly_churn_hazard(state, static, base).astype(np.float64)
    period = np.array([30 / 7, 30 / 7, 365 / 7, 365 / 7], np.float32)
    renewal = replace(
        base,
        renews=np.array([True, False, True, False]),
        period_weeks=period,
        renew_offset=np.zeros(n, np.int32),
    )
    got = weekly_churn_hazard(state, static, renewal)
    expected = np.where(renewal.renews, 1 - (1 - h) ** period, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[2] > got[0] > h[0]


def test_adopted_features_shift_the_hazard() -> None:
    """One supplier in one state, three times over, with a different second feature adopted:
    the document library raises the hazard, payments lower it, reviews carry no signal, and
    without the option the features carry none at all."""
    pop = draw_population(1, 400, np.random.default_rng(0))
    three = np.zeros(3, np.int64)
    static, state = Static.of(pop).take(three), initial_state(pop).take(three)
    state = replace(state, engagement=state.engagement - 1.0, features=np.full(3, 2, np.int8))
    first = contract.CORE_FEATURES.index("calendar")
    second = [contract.CORE_FEATURES.index(f) for f in ("document_library", "payments", "reviews")]
    orders = [[first, f] + [g for g in range(8) if g not in (first, f)] for f in second]
    static = replace(static, feature_rank=np.argsort(orders, axis=1).astype(np.int8))
    ctx = WeekContext(
        season=np.full(3, 0.3, np.float32),
        tenure_weeks=np.full(3, 30, np.int32),
        bills=np.zeros(3, bool),
        card_expires=np.zeros(3, bool),
    )
    with_doc, with_pay, with_reviews = weekly_churn_hazard(
        state, replace(static, feature_effects=True), ctx
    )
    assert with_doc > 1.6 * with_reviews and with_pay < 0.7 * with_reviews
    off = weekly_churn_hazard(state, static, ctx)
    assert off[0] == off[1] == off[2]


def _exit_share_before_cancellation(out: Path) -> tuple[float, float]:
    """Share of document-library and analytics use in the 8 weeks before a cancellation, and in
    all feature use."""
    return _sql(
        out,
        f"""
        select avg((f.feature_key in {EXIT_FEATURES})::int)
                   filter (where c.cancelled_at::date - f.date between 1 and 56),
               avg((f.feature_key in {EXIT_FEATURES})::int)
        from feature_usage_daily f left join cancellations c using (supplier_id)""",
    )[0]


def test_feature_effects_show_in_churn_and_usage(feature_sim, sim) -> None:
    out, summary = feature_sim
    assert 0.02 <= summary.monthly_churn_rate <= 0.06
    before, overall = _exit_share_before_cancellation(out)
    assert before > 1.15 * overall  # leaving suppliers export files and check their reports
    before, overall = _exit_share_before_cancellation(sim[0])
    assert before < 1.05 * overall  # not so without the option


def test_option_values_are_checked() -> None:
    for share in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="yearly_share must be in"):
            SimulationConfig(yearly_share=share)
    with pytest.raises(ValueError, match="history_start_days must be >= 0"):
        SimulationConfig(history_start_days=-7)
    with pytest.raises(ValueError, match="at least 60"):
        SimulationConfig(days=400, history_start_days=341)
    assert SimulationConfig(days=400, history_start_days=340).history_start_days == 340
    assert SimulationConfig(yearly_share=1.0, cancel_at_renewal=True).yearly_share == 1.0


def test_simulate_command_passes_the_options(tmp_path: Path) -> None:
    out = tmp_path / "set"
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            [
                "simulate",
                "--out",
                str(out),
                "--suppliers",
                "300",
                "--days",
                "200",
                "--truth-paths",
                "2",
                "--seed",
                "4",
                "--history-start-days",
                "60",
                "--yearly-share",
                "0.5",
                "--cancel-at-renewal",
                "--feature-effects",
            ],
            env={"CS_HOME": str(tmp_path / "home")},
            catch_exceptions=False,
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    (early, yearly) = _sql(
        out,
        f"""select (select count(*) from activity_daily
                    where date < date '2024-01-01' + interval 60 day),
                   (select count(*) from billing_events where amount in {YEARLY_PRICES})""",
    )[0]
    assert early == 0 and yearly > 0
