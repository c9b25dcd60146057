"""The simulator's output: contract conformity, determinism, and the behaviour it promises."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from features import contract
from features.raw_reader import load_raw
from features.simulator import SimulationConfig, SimulationSummary, simulate

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
