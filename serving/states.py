"""What the intervention rules look at: suppliers' states made from a scored day (pure), and
the randomised control group (a salted hash of the supplier id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.catalog import HEALTH_FACTORS, MILESTONE_TARGET_DAYS
from features.contract import CORE_FEATURES
from serving.due import SupplierState

# The columns of a day's feature rows a state is made from.
STATE_FEATURES = (
    "supplier_id",
    "tenure_days",
    "days_since_last_login",
    "unresolved_payment_failure",
    "failed_payments_30d",
    "health_segment",
    "subscription_tier",
    "vendor_type",
    *[f"{m}_days_behind" for m in MILESTONE_TARGET_DAYS],
    *[f"{f}_stage" for f in CORE_FEATURES],
)
# The columns of the scores (serving.scorer.SCORE_COLUMNS) a state reads.
STATE_SCORES = ("health_score", "health_risk", "churn_probability", "churn_risk")


def _ints(column: pd.Series) -> np.ndarray:
    """Counts with missing as 0 (a count the export cannot tell is not evidence)."""
    return pd.to_numeric(column).fillna(0).to_numpy(np.int64)


def supplier_states(
    features: pd.DataFrame, scores: pd.DataFrame, trends: Sequence[str]
) -> list[SupplierState]:
    """One state per scored row: ``features`` the rows' features (:data:`STATE_FEATURES`),
    ``scores`` their scores (:data:`STATE_SCORES`), ``trends`` their health trends, all in the
    same order.

    A milestone is overdue when the row is days behind its target (unknown is not overdue);
    a core feature is abandoned in the ``churned`` adoption stage; a supplier never seen
    logging in has ``days_since_last_login`` None.

    Raises:
        KeyError: a column is missing (named).
        ValueError: the three inputs do not have the same length.
    """
    missing = [c for c in STATE_FEATURES if c not in features.columns]
    missing += [c for c in STATE_SCORES if c not in scores.columns]
    if missing:
        raise KeyError(f"supplier states need the columns {missing}")
    if not len(features) == len(scores) == len(trends):
        raise ValueError(
            f"{len(features)} feature rows, {len(scores)} score rows and {len(trends)} trends"
        )
    behind = {m: _ints(features[f"{m}_days_behind"]) > 0 for m in MILESTONE_TARGET_DAYS}
    abandoned = {
        f: (features[f"{f}_stage"].astype(object) == "churned").to_numpy() for f in CORE_FEATURES
    }
    login = pd.to_numeric(features["days_since_last_login"]).to_numpy(np.float64)
    tenure = _ints(features["tenure_days"])
    unresolved = _ints(features["unresolved_payment_failure"]) > 0
    failed = _ints(features["failed_payments_30d"])
    columns = {
        c: features[c].astype(object).to_numpy()
        for c in ("supplier_id", "health_segment", "subscription_tier", "vendor_type")
    }
    health = scores["health_score"].to_numpy(np.float64)
    probability = scores["churn_probability"].to_numpy(np.float64)
    health_risk = scores["health_risk"].to_numpy(object)
    churn_risk = scores["churn_risk"].to_numpy(object)
    return [
        SupplierState(
            supplier_id=str(columns["supplier_id"][i]),
            health_score=float(health[i]),
            health_risk=health_risk[i],
            churn_probability=float(probability[i]),
            churn_risk=churn_risk[i],
            trend=trends[i],
            tenure_days=int(tenure[i]),
            days_since_last_login=None if np.isnan(login[i]) else int(login[i]),
            unresolved_payment_failure=bool(unresolved[i]),
            failed_payments_30d=int(failed[i]),
            overdue_milestones=frozenset(m for m, late in behind.items() if late[i]),
            abandoned_features=frozenset(f for f, gone in abandoned.items() if gone[i]),
            segment=columns["health_segment"][i],
            tier=columns["subscription_tier"][i],
            vendor_type=columns["vendor_type"][i],
        )
        for i in range(len(features))
    ]


# Adoption stages of a core feature in use.
IN_USE_STAGES = ("adopting", "power_user")


def message_facts(features: pd.DataFrame) -> list[dict[str, object]]:
    """What an intervention's message may mention of each row's supplier (stored with the
    execution, so delivery needs no feature store): the core features in use and abandoned,
    and the weakest health factor (None when no factor is known).

    Raises:
        KeyError: a stage or health-factor column is missing (named).
    """
    needed = [f"{f}_stage" for f in CORE_FEATURES] + list(HEALTH_FACTORS)
    missing = [c for c in needed if c not in features.columns]
    if missing:
        raise KeyError(f"message facts need the columns {missing}")
    stages = {f: features[f"{f}_stage"].astype(object).to_numpy() for f in CORE_FEATURES}
    factors = features[list(HEALTH_FACTORS)].apply(pd.to_numeric).to_numpy(np.float64)
    known = ~np.isnan(factors)
    weakest = np.argmin(np.where(known, factors, np.inf), axis=1)
    return [
        {
            "recent_features": [f for f in CORE_FEATURES if stages[f][i] in IN_USE_STAGES],
            "abandoned_features": [f for f in CORE_FEATURES if stages[f][i] == "churned"],
            "weakest_factor": HEALTH_FACTORS[weakest[i]] if known[i].any() else None,
        }
        for i in range(len(features))
    ]


def in_control_group(supplier_id: str, salt: str, share: float) -> bool:
    """Whether the supplier is in the randomised control group: the first 8 bytes of
    SHA-256(``salt``:``supplier_id``) as a number in [0, 1) fall below ``share``. Stable for a
    salt; another salt draws a new, independent group.

    Raises:
        ValueError: ``share`` is outside [0, 1].
    """
    if not 0 <= share <= 1:
        raise ValueError(f"control-group share {share} is outside [0, 1]")
    digest = hashlib.sha256(f"{salt}:{supplier_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share
