"""The directions the churn model may not contradict, enforced as XGBoost monotone constraints.

A supplier who logs in less, whose payment fails or whose ratings drop must never look less
likely to churn. Learned trees can bend such a relation where data is thin; a monotone
constraint makes it hold by construction for every prediction, and the isotonic calibrator
(increasing) keeps the order. Features without a listed direction are left free.

Every feature of the login family is listed, so adding one to the catalogue without deciding
its direction fails ``tests/model/test_directional.py``.

Per-feature usage (``<feature>_uses_*``) is deliberately free: which features signal loyalty and
which the opposite (exporting documents before leaving, checking analytics to judge the
subscription) differs by source, and a wrong direction costs accuracy silently. ``train``
reports a fit without any constraint beside the constrained one, so the price of the
constraints is measured on every holdout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

Direction = Literal[-1, 1]
RISES: Final = 1  # churn rises with the feature
FALLS: Final = -1  # churn falls as the feature rises

CHURN_DIRECTIONS: Final[dict[str, Direction]] = {
    # login: recency raises churn, every measure of activity lowers it
    "days_since_last_login": RISES,
    "logins_7d": FALLS,
    "logins_30d": FALLS,
    "logins_90d": FALLS,
    "active_days_7d": FALLS,
    "active_days_30d": FALLS,
    "active_days_90d": FALLS,
    "session_minutes_30d": FALLS,
    "logins_30d_change": FALLS,
    "logins_30d_ratio_prev_30d": FALLS,
    "login_ewm_rate_7d": FALLS,
    "login_ewm_rate_30d": FALLS,
    "login_ewm_rate_90d": FALLS,
    "login_ewm_ratio_7d_90d": FALLS,
    "login_ewm_ratio_30d_90d": FALLS,
    "logins_7d_share_of_30d": FALLS,
    "logins_30d_share_of_60d": FALLS,
    "logins_30d_share_of_90d": FALLS,
    "logins_30d_vs_cohort": FALLS,
    # billing; logins since the last payment, for a given position in the cycle
    "logins_this_period": FALLS,
    "failed_payments_30d": RISES,
    "failed_payments_90d": RISES,
    "unresolved_payment_failure": RISES,
    # support
    "bad_ratings_90d": RISES,
    "mean_satisfaction_90d": FALLS,
}


def monotone_constraints(columns: Sequence[str]) -> dict[str, Direction]:
    """The directions of the constrained features among ``columns``, in their order.

    XGBoost takes this dict keyed by feature name when it fits a DataFrame, and refuses names
    the frame lacks, so the dict holds only the model's own columns.
    """
    return {c: CHURN_DIRECTIONS[c] for c in columns if c in CHURN_DIRECTIONS}
