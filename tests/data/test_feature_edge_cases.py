"""Feature edge cases on hand-built tables, with exact expectations."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pytest

from features.feature_table import (
    Cadence,
    build_feature_table,
    connect,
    data_span,
    feature_rows_for,
)
from tests.conftest import good_tables, ts


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    t = good_tables()
    suppliers = t["suppliers"].to_pylist()
    suppliers.append(dict(suppliers[1], supplier_id="s3", signup_at=ts(2024, 2, 10, 12)))
    billing = t["billing_events"].to_pylist()
    billing[2]["amount"] = 49.0  # s2 paid the professional price at signup ...
    billing.append(
        dict(
            billing[2],
            event_id="e4",
            occurred_at=ts(2024, 2, 10, 9),
            event_type="plan_upgraded",
            amount=99.0,
        )
    )  # ... then moved to scale
    t["suppliers"] = pa.Table.from_pylist(suppliers, schema=t["suppliers"].schema)
    t["billing_events"] = pa.Table.from_pylist(billing, schema=t["billing_events"].schema)
    return t


def _row(frame: pd.DataFrame, supplier: str, day: date) -> pd.Series:
    stamp = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    rows = frame[(frame.supplier_id == supplier) & (frame.event_timestamp == stamp)]
    assert len(rows) == 1, f"{supplier} has {len(rows)} rows at {day}"
    return rows.iloc[0]


def _has(frame: pd.DataFrame, supplier: str, day: date) -> bool:
    stamp = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)
    return bool(((frame.supplier_id == supplier) & (frame.event_timestamp == stamp)).any())


DAYS = [
    date(2024, 1, 2),
    date(2024, 1, 3),
    date(2024, 1, 4),
    date(2024, 1, 5),
    date(2024, 1, 6),
    date(2024, 2, 5),
    date(2024, 2, 15),
    date(2024, 2, 20),
    date(2024, 2, 29),
    date(2024, 3, 1),
    date(2024, 3, 2),
]


@pytest.fixture(scope="module")
def frame(tables) -> pd.DataFrame:
    return build_feature_table(tables, DAYS)


def test_nobody_before_the_first_signup(frame) -> None:
    assert not (frame.event_timestamp == pd.Timestamp("2024-01-03", tz="UTC")).any()


def test_signup_day_has_a_row_with_that_days_activity(frame) -> None:
    row = _row(frame, "s1", date(2024, 1, 3))
    assert row.tenure_days == 0 and row.logins_7d == 2 and row.days_since_last_login == 0
    assert row.health_segment == "new_user"


def test_supplier_with_no_activity_at_all(frame) -> None:
    row = _row(frame, "s3", date(2024, 2, 20))
    assert row.logins_90d == 0 and pd.isna(row.days_since_last_login)
    assert row.features_used_ever == 0 and row.client_management_stage == "never_used"
    assert row.total_clients == 0 and pd.isna(row.active_client_ratio)
    assert row.milestones_achieved == 0 and row.account_setup_days_behind == 10 - 1
    assert pd.isna(row.monthly_revenue) and row.login_frequency == 0
    assert 0 <= row.health_score < 50


def test_login_trend_ratios_and_shares(frame) -> None:
    # s1 logged in twice on its signup day (Jan 3) and once on Jan 4
    row = _row(frame, "s1", date(2024, 1, 4))
    assert (row.logins_7d_share_of_30d, row.logins_30d_share_of_60d) == (1.0, 1.0)

    def rate(h: float) -> float:  # the per-day EWM rate: a weight 2^(-age/h), normalised
        return (1 - 2 ** (-1 / h)) * (2 * 2 ** (-1 / h) + 1)

    assert row.login_ewm_ratio_7d_90d == pytest.approx(rate(7) / rate(90), rel=1e-12)
    assert row.login_ewm_ratio_7d_90d > row.login_ewm_ratio_30d_90d > 1  # a fresh burst
    # a month later the logins have left the 30-day window but not the 60- and 90-day ones
    later = _row(frame, "s1", date(2024, 2, 5))
    assert later.logins_30d == 0 and later.logins_90d == 3
    assert later.logins_30d_share_of_60d == 0 and later.logins_30d_share_of_90d == 0
    assert later.logins_7d_share_of_30d == 0  # no logins in 30 days: the lowest share
    assert 0 < later.login_ewm_ratio_7d_90d < later.login_ewm_ratio_30d_90d  # old logins: faded
    # never logged in: every ratio and share is 0
    never = _row(frame, "s3", date(2024, 2, 20))
    for name in (
        "login_ewm_ratio_7d_90d",
        "login_ewm_ratio_30d_90d",
        "logins_7d_share_of_30d",
        "logins_30d_share_of_60d",
        "logins_30d_share_of_90d",
    ):
        assert never[name] == 0, name


def test_first_use_of_a_feature(frame) -> None:
    before, on = _row(frame, "s1", date(2024, 1, 3)), _row(frame, "s1", date(2024, 1, 4))
    assert before.client_management_stage == "never_used" and before.features_used_ever == 0
    assert on.client_management_stage == "trial" and on.features_used_ever == 1
    assert on.client_management_days_30d == 1 and on.features_used_30d == 1


def test_cancelled_suppliers_leave_the_grid_at_cancellation(frame) -> None:
    assert _has(frame, "s1", date(2024, 2, 29))  # cancels 2024-03-01 15:00: active at 03-01 0:00
    assert not _has(frame, "s1", date(2024, 3, 1))  # the end of its cancellation day
    assert not _has(frame, "s1", date(2024, 3, 2))  # cancelled yesterday


def test_tickets_stay_open_until_resolved_and_ratings_count_once_known(frame) -> None:
    created, resolved = _row(frame, "s1", date(2024, 1, 5)), _row(frame, "s1", date(2024, 1, 6))
    assert created.open_tickets == 1 and pd.isna(created.mean_satisfaction_90d)
    assert resolved.open_tickets == 0 and resolved.mean_satisfaction_90d == 5
    assert resolved.mean_resolution_hours_90d == pytest.approx(24.0)
    assert _row(frame, "s2", date(2024, 2, 15)).open_tickets == 1  # never resolved


def test_payment_failure_not_yet_followed_by_success(frame) -> None:
    row = _row(frame, "s1", date(2024, 2, 15))
    assert row.unresolved_payment_failure == 1 and row.failed_payments_30d == 1
    assert row.billing_health == 0
    assert _row(frame, "s1", date(2024, 1, 6)).unresolved_payment_failure == 0


def test_tier_and_revenue_are_those_held_at_the_time(frame) -> None:
    before, after = _row(frame, "s2", date(2024, 2, 5)), _row(frame, "s2", date(2024, 2, 15))
    assert (before.subscription_tier, before.monthly_revenue) == ("professional", 49.0)
    assert (after.subscription_tier, after.monthly_revenue) == ("scale", 99.0)
    assert after.upgrades_90d == 1 and before.upgrades_90d == 0


def test_cadence_covers_the_end_of_the_data(tables) -> None:
    con = connect(tables)
    first, last = data_span(con)
    assert (first, last) == (date(2024, 1, 3), date(2024, 3, 1))
    days = Cadence(history_every_days=7, recent_days=3).days(first, last, [date(2024, 1, 20)])
    assert days[-3:] == [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]
    assert date(2024, 1, 7) in days and date(2024, 1, 20) in days  # Sundays and extras
    assert all(first <= d <= last for d in days)


def test_an_empty_grid_gives_an_empty_table_with_the_catalogue_columns(tables) -> None:
    empty = build_feature_table(tables, [date(2023, 6, 1)])
    assert empty.empty and "health_score" in empty.columns


def test_rows_for_some_pairs_equal_the_full_table_on_the_edge_cases(tables, frame) -> None:
    # signups and cancellations inside a day, a supplier with no activity, upgrades: the rows
    # computed for some pairs alone (cohort means from events) are the full table's rows
    pairs = pd.DataFrame(
        {
            "supplier_id": frame["supplier_id"],
            "day": (frame["event_timestamp"] - pd.Timedelta(days=1)).dt.date,
        }
    ).iloc[::2]
    got = feature_rows_for(tables, pairs)
    expected = frame.iloc[::2].sort_values(["event_timestamp", "supplier_id"])
    pd.testing.assert_frame_equal(
        got, expected.reset_index(drop=True), check_exact=False, rtol=1e-12
    )


def test_a_repeated_feature_usage_row_counts_once(tables, frame) -> None:
    # the contract has one row per supplier, day and feature; a repeated one changes nothing,
    # in the full table or in rows computed for some pairs (cohort means from events)
    usage = tables["feature_usage_daily"]
    assert usage.num_rows > 0
    repeated = dict(tables, feature_usage_daily=pa.concat_tables([usage, usage.slice(0, 2)]))
    again = build_feature_table(repeated, DAYS)
    pd.testing.assert_frame_equal(again, frame, check_exact=False, rtol=1e-12)
    pairs = pd.DataFrame(
        {
            "supplier_id": frame["supplier_id"],
            "day": (frame["event_timestamp"] - pd.Timedelta(days=1)).dt.date,
        }
    )
    got = feature_rows_for(repeated, pairs)
    expected = frame.sort_values(["event_timestamp", "supplier_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
