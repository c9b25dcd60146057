"""An export whose event history starts after some accounts signed up, per-feature usage and the
billing cycle, on hand-built tables with exact expectations."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from features import contract
from features.feature_table import build_feature_table, connect, feature_rows_for
from features.history import covered_rows, event_history
from tests.conftest import ts
from training.dataset import within_history

START = date(2024, 1, 1)  # the first activity row: where the export's history starts


def _table(name: str, rows: list[dict]) -> pa.Table:
    schema = contract.TABLES_BY_NAME[name].schema
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()


def _supplier(sid: str, signup) -> dict:
    return dict(
        supplier_id=sid,
        business_name=None,
        first_name="Ava",
        email=f"{sid}@example.com",
        vendor_type="florist",
        subscription_tier="professional",
        monthly_revenue=49.0,
        country="GB",
        signup_at=signup,
        cs_agent_id=None,
    )


def _paid(eid: str, sid: str, when, amount: float = 49.0) -> dict:
    return dict(
        event_id=eid,
        supplier_id=sid,
        occurred_at=when,
        event_type="payment_succeeded",
        amount=amount,
    )


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    used = [
        ("old", date(2024, 1, 5), "analytics", 5),
        ("old", date(2024, 3, 10), "analytics", 2),
        ("old", date(2024, 3, 20), "analytics", 3),
        ("new", date(2024, 1, 1), "calendar", 1),
    ]
    return {
        "suppliers": _table(
            "suppliers",
            [
                _supplier("old", ts(2023, 6, 1, 9)),  # signed up before the history
                _supplier("new", ts(2024, 1, 1, 10)),
                _supplier("annual", ts(2024, 1, 2, 10)),
            ],
        ),
        "activity_daily": _table(
            "activity_daily",
            [
                dict(supplier_id=s, date=d, logins=n, session_minutes=5.0)
                for s, d, n in [
                    ("new", date(2024, 1, 1), 2),
                    ("old", date(2024, 1, 5), 1),
                    ("old", date(2024, 3, 15), 4),
                    ("annual", date(2024, 1, 2), 1),
                ]
            ],
        ),
        "feature_usage_daily": _table(
            "feature_usage_daily",
            [dict(supplier_id=s, date=d, feature_key=f, uses=n) for s, d, f, n in used],
        ),
        "clients_daily": _table("clients_daily", []),
        "support_tickets": _table("support_tickets", []),
        "billing_events": _table(
            "billing_events",
            [
                _paid("e1", "old", ts(2024, 1, 10, 9)),
                _paid("e2", "old", ts(2024, 2, 9, 9)),
                _paid("e3", "old", ts(2024, 3, 10, 9)),
                _paid("e4", "new", ts(2024, 1, 1, 11), 490.0),
                _paid("e5", "annual", ts(2024, 1, 2, 11), 490.0),
                _paid("e6", "annual", ts(2025, 1, 1, 11), 490.0),
            ],
        ),
        "milestones": _table(
            "milestones",
            [dict(supplier_id="new", milestone_type="account_setup", achieved_at=ts(2024, 1, 1))],
        ),
        "cancellations": _table("cancellations", []),
        "interventions_log": _table("interventions_log", []),
    }


DAYS = [date(2024, 1, 20), date(2024, 3, 31), date(2025, 1, 15)]


@pytest.fixture(scope="module")
def frame(tables) -> pd.DataFrame:
    return build_feature_table(tables, DAYS).set_index(["supplier_id", "event_timestamp"])


def _at(frame: pd.DataFrame, supplier: str, day: date) -> pd.Series:
    return frame.loc[(supplier, pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1))]


def test_the_history_is_derived_from_the_data(tables) -> None:
    history = event_history(connect(tables))
    assert history.start == START and history.first_signup == date(2023, 6, 1)
    assert history.signed_up_before == 1 and history.suppliers == 3
    assert history.first_cancellation is None
    assert history.table_first_days["activity_daily"] == START
    assert history.table_first_days["support_tickets"] is None
    assert history.fully_covered_from == date(2024, 3, 30)
    assert "1 of 3 accounts signed up before the event history starts" in history.warning()


def test_an_account_older_than_the_history_has_missing_not_zero_windows(frame) -> None:
    old = _at(frame, "old", date(2024, 1, 20))
    assert old.logins_7d == 0  # Jan 14..20 lies inside the history: a true zero
    for name in (
        "logins_30d",
        "logins_90d",
        "active_days_30d",
        "login_ewm_rate_7d",
        "login_ewm_ratio_7d_90d",
        "logins_7d_share_of_30d",
        "features_used_30d",
        "features_used_ever",
        "analytics_uses_30d",
        "analytics_uses_trend",
        "milestones_achieved",
        "first_form_days_behind",
        "total_clients",
        "login_frequency",
        "health_score",
    ):
        assert pd.isna(old[name]), name
    assert pd.isna(old.analytics_stage) and pd.isna(old.calendar_stage)
    assert old.days_since_last_login == 15  # a login in the data is known exactly
    # an account that signed up inside the history is fully known, zeros included
    new = _at(frame, "new", date(2024, 1, 20))
    assert (new.logins_30d, new.features_used_ever, new.milestones_achieved) == (2, 1, 1)
    assert new.total_clients == 0 and new.analytics_stage == "never_used"
    assert not pd.isna(new.health_score)


def test_once_the_windows_are_inside_the_history_they_are_counted(frame) -> None:
    old = _at(frame, "old", date(2024, 3, 31))
    assert (old.logins_90d, old.logins_30d) == (5, 4)
    assert (old.analytics_uses_90d, old.analytics_uses_30d, old.analytics_uses_7d) == (10, 5, 0)
    assert old.analytics_uses_trend == pytest.approx(1.5)  # 3 x 5 / 10
    assert old.calendar_uses_90d == 0 and pd.isna(old.calendar_uses_trend)
    # lifetime counts stay unknown; the score rests on the factors the export tells
    assert pd.isna(old.features_used_ever) and pd.isna(old.onboarding_progress)
    assert not pd.isna(old.health_score)


def test_the_billing_cycle_and_the_position_in_it(frame) -> None:
    old = _at(frame, "old", date(2024, 3, 31))  # paid Jan 10, Feb 9, Mar 10: monthly
    assert old.billing_cycle_days == 30 and old.days_since_last_payment == 21
    assert old.days_to_next_renewal == 9
    assert old.logins_this_period == 4  # the logins since the Mar 10 payment
    single = _at(frame, "new", date(2024, 3, 31))  # one payment: the cycle is not known yet
    assert pd.isna(single.billing_cycle_days) and pd.isna(single.days_to_next_renewal)
    assert single.days_since_last_payment == 90
    annual = _at(frame, "annual", date(2025, 1, 15))  # paid 2024-01-02 and 2025-01-01
    assert annual.billing_cycle_days == 365 and annual.days_to_next_renewal == 351


def test_rows_computed_for_some_pairs_match_the_table(tables, frame) -> None:
    pairs = pd.DataFrame({"supplier_id": ["old", "new"], "day": [date(2024, 3, 31)] * 2})
    got = feature_rows_for(tables, pairs).set_index(["supplier_id", "event_timestamp"])
    expected = frame.loc[got.index]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_training_rows_start_where_the_history_covers_them(tables) -> None:
    history = event_history(connect(tables))
    # the 90 days up to Mar 30 start on Jan 1, the history's first day
    days = pd.Series(pd.to_datetime(["2024-03-29", "2024-03-30", "2024-01-02", "2024-01-02"]))
    signups = pd.Series(pd.to_datetime(["2023-06-01", "2023-06-01", "2023-06-01", "2024-01-01"]))
    np.testing.assert_array_equal(
        covered_rows(days, signups, history, 30), [False, True, False, True]
    )
    # before cancellations are first recorded, no label can be read
    later = dataclasses.replace(history, first_cancellation=date(2024, 3, 1))
    np.testing.assert_array_equal(
        covered_rows(days, signups, later, 30), [False, True, False, False]
    )
    entities = pd.DataFrame(
        {
            "supplier_id": ["old", "old", "new"],
            "event_timestamp": pd.to_datetime(
                ["2024-02-01", "2024-04-01", "2024-02-01"], utc=True
            ),
        }
    )
    kept, window = within_history(
        entities, tables["suppliers"].to_pandas()[["supplier_id", "signup_at"]], history, 30
    )
    assert kept["supplier_id"].tolist() == ["old", "new"]
    assert (window.rows_kept, window.rows_left_out) == (2, 1)
    assert "1 left out as not covered" in window.describe()
