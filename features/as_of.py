"""The contract tables as an export taken at an instant ``t`` would have held them.

Used to check point-in-time correctness (features from the full data at ``t`` must equal features
from the export at ``t``) and to replay history (one more day of data). Rows stamped before
``t`` are kept (dates before ``t``'s day: every grid instant is a midnight); tickets resolved
later are still open and unrated; the subscription tier is the one held at ``t``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.catalog import TIERS

_DATED = ("activity_daily", "feature_usage_daily", "clients_daily")
_STAMPED = {
    "billing_events": "occurred_at",
    "milestones": "achieved_at",
    "interventions_log": "sent_at",
}


def export_at(tables: Mapping[str, pd.DataFrame], t: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Contract tables restricted to what was known at ``t`` (a UTC timestamp)."""
    t = pd.Timestamp(t).tz_convert("UTC") if pd.Timestamp(t).tzinfo else pd.Timestamp(t, tz="UTC")
    out: dict[str, pd.DataFrame] = {}
    day = t.date()
    for name in _DATED:
        frame = tables[name]
        out[name] = frame[frame["date"].to_numpy() < np.datetime64(day)].reset_index(drop=True)
    for name, column in _STAMPED.items():
        frame = tables[name]
        out[name] = frame[(frame[column] < t).fillna(False)].reset_index(drop=True)
    tickets = tables["support_tickets"]
    tickets = tickets[(tickets["created_at"] < t).fillna(False)].copy()
    later = (tickets["resolved_at"] >= t).fillna(False)
    tickets.loc[later, "resolved_at"] = pd.NA
    tickets.loc[later, "satisfaction_rating"] = pd.NA
    out["support_tickets"] = tickets.reset_index(drop=True)
    cancellations = tables["cancellations"]
    out["cancellations"] = cancellations[
        (cancellations["cancelled_at"] <= t).fillna(False)
    ].reset_index(drop=True)
    out["suppliers"] = _suppliers_at(tables["suppliers"], tables["billing_events"], t)
    return out


def _suppliers_at(suppliers: pd.DataFrame, billing: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    """Suppliers signed up by ``t``, with the tier they held then (later plan changes undone)."""
    later = billing[(billing["occurred_at"] >= t).fillna(False)]
    change = (later["event_type"] == "plan_upgraded").astype(int) - (
        later["event_type"] == "plan_downgraded"
    ).astype(int)
    net = change.groupby(later["supplier_id"].astype(str)).sum()
    kept = suppliers[(suppliers["signup_at"] <= t).fillna(False)].copy()
    rank = kept["subscription_tier"].astype(str).map({k: i for i, k in enumerate(TIERS)})
    undone = rank - kept["supplier_id"].astype(str).map(net).fillna(0).astype(int)
    tier = np.asarray(TIERS, dtype=object)[undone.clip(0, len(TIERS) - 1).to_numpy(int)]
    kept["subscription_tier"] = pd.array(tier, dtype=kept["subscription_tier"].dtype)
    return kept.reset_index(drop=True)
