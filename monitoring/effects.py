"""The measured effect of interventions: the suppliers a rule fired on, contacted or held out at
random (the control group), compared on what followed. Pure functions over frames: the monitoring
job and the ``/api/customer-success/interventions/effect`` route read the executions, the
supplier directory, the logins and the health scores, and render what these return.

The analysis unit. Per rule, each supplier's *first* decided execution of that rule (intention to
treat: the unit is "the rule fired on this supplier", and the treatment is being contacted by
the rule with whatever followed, later contacts of the same rule included). Its group is that
execution's ``held_out``: the control group is a fixed random share of suppliers, so the
contacted and the held-out units of a rule differ only by chance. A contact that did not reach
the supplier stays in the contacted group (``delivery_rate`` says how many did): dropping it
would compare the reachable suppliers with everybody. Per intervention type, the units are each
supplier's first execution of the type, whichever rule decided it.

The outcomes, measured from the unit's ``at`` (when the contact was, or would have been, made):

* ``login_7d``: the supplier logged in within ``(at, at + 7 days]``; a supplier that cancelled
  in between stays in, as a no (needs ``logins``).
* ``health_change_14d``: the health score of the day of ``at + 14 days`` (or of the latest
  stored day up to 3 days before it) minus that of the last stored day before ``at`` (a day
  ``d`` is scored as of its end, so it is before ``at`` when ``d + 1 day <= at``). A unit
  missing either score is left out of this outcome and counted in ``n_missing``; as cancelled
  suppliers are no longer scored, this compares the suppliers still there, not the randomised
  groups (needs ``health``).
* ``retained_30d`` and ``retained_60d``: not cancelled by ``at + 30 / 60 days``. A supplier
  cancelled at or before ``at`` (a delayed contact to a supplier that left in between) counts
  as not retained rather than being dropped, so that no group loses its early leavers.

Only units whose window has ended by the end of ``as_of`` (the instant ``as_of + 1 day, 00:00
UTC``; for the health change, when the day of ``at + 14 days`` is at most ``as_of``) are
measured; the younger ones are counted in ``n_pending``. The ``n`` of each outcome may therefore
differ from the unit counts and from each other.

The statistics. A proportion's difference (contacted minus held out) has Newcombe's hybrid
score interval (Newcombe 1998, method 10: the two Wilson intervals combined), which keeps its
coverage for small groups and rates near 0 or 1 where the Wald interval does not, and a
two-sided pooled z-test's p-value. A mean's difference has Welch's t interval and test
(unequal variances; ``scipy.stats.ttest_ind``). ``significant`` means the interval excludes 0
(the score interval and the z-test can disagree at the border; the interval decides). With
fewer than ``min_units`` measured units in a group an outcome is not estimable: its values are
None and it is never significant.

The money. ``cost`` sums the contacted executions' costs (the ``cost`` column, else
:data:`DEFAULT_COSTS` by type). ``churn_prevented_30d`` is the 30-day retention difference times
the number of contacted units, so the effect measured on the units whose 30 days have passed is
taken to hold for the recent ones too; ``ltv_protected`` multiplies it by the contacted units'
mean LTV (``serving.advice.ltv``: 18 months of revenue) and ``roi`` divides that by ``cost``.
Their intervals are the retention difference's interval scaled the same way (the revenue and
the cost are taken as known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from features.contract import INTERVENTION_TYPES
from serving.advice import ltv

OutcomeName = Literal["login_7d", "health_change_14d", "retained_30d", "retained_60d"]
Level = Literal["rule", "type"]

# The cost of one contacted execution by type, in the currency of ``monthly_revenue``, used when
# ``assignments`` has no ``cost`` (or a null one): a few cents to send an email or show a message
# or a tour, an agent's time for a call (about half an hour) or a support session (about an
# hour with its preparation).
DEFAULT_COSTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "email_sequence": 0.5,
        "in_app_message": 0.1,
        "feature_tour": 0.2,
        "phone_call": 25.0,
        "personalized_support": 40.0,
    }
)
MIN_UNITS_PER_GROUP: Final = 10
CONFIDENCE: Final = 0.95
LOGIN_WINDOW_DAYS: Final = 7
HEALTH_WINDOW_DAYS: Final = 14
# The after score may come from a stored day up to this many days before the day of at + 14.
HEALTH_TOLERANCE_DAYS: Final = 3
RETENTION_HORIZONS: Final = (30, 60)
PROPORTIONS: Final[tuple[OutcomeName, ...]] = ("login_7d", "retained_30d", "retained_60d")
# How a verdict names each outcome, and its unit.
_WORDING: Final[dict[str, tuple[str, str]]] = {
    "login_7d": ("logged in within 7 days", "pp"),
    "health_change_14d": ("health score change over 14 days", "points"),
    "retained_30d": ("retained at 30 days", "pp"),
    "retained_60d": ("retained at 60 days", "pp"),
}
# Per-unit outcome states (``unit_outcomes``' ``<outcome>_status`` columns).
MEASURED: Final = "measured"
PENDING: Final = "pending"  # the window has not ended by the end of as_of
MISSING: Final = "missing"  # the window has ended but a score is not stored

REQUIRED_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "assignments": (
        "supplier_id",
        "rule",
        "intervention_type",
        "at",
        "held_out",
        "delivered",
    ),
    "suppliers": ("supplier_id", "cancelled_at", "monthly_revenue"),
    "logins": ("supplier_id", "at"),
    "health": ("supplier_id", "day", "score"),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OutcomeEffect(_Frozen):
    """One outcome compared between the contacted (treated) and the held-out (control) units.

    Attributes:
        outcome: ``login_7d``, ``health_change_14d``, ``retained_30d`` or ``retained_60d``.
        kind: ``proportion`` (values are shares, 0..1) or ``mean`` (health points).
        n_treated, n_control: units measured in each group.
        n_pending: units (both groups) whose window had not ended by the end of ``as_of``.
        n_missing: units (both groups) whose window had ended but lacked a health score.
        estimable: both groups have at least ``min_units`` measured units; when not, every value
            below is None.
        treated, control: the share or mean in each group.
        difference: treated minus control.
        ci_low, ci_high: the difference's confidence interval (None when it has none: a mean
            without variation in either group).
        p_value: two-sided.
        significant: the interval excludes 0.
        verdict: one line for a report, starting with ``significant``, ``not significant`` or
            ``not estimable``.
    """

    outcome: OutcomeName
    kind: Literal["proportion", "mean"]
    n_treated: int
    n_control: int
    n_pending: int
    n_missing: int
    estimable: bool
    treated: float | None
    control: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool
    verdict: str


class InterventionEffect(_Frozen):
    """The effect of one rule (``rule`` set) or of one intervention type (``rule`` None, all its
    rules pooled).

    Attributes:
        intervention_type, rule: what is measured.
        n_treated, n_control: contacted and held-out units (each supplier's first execution),
            measured or not yet.
        delivery_rate: share of the contacted units whose first execution reached the supplier
            (None without contacted units).
        outcomes: by name, in the order ``login_7d``, ``health_change_14d``, ``retained_30d``,
            ``retained_60d``; the first two only when logins / health scores were given.
        verdict: the headline, ``outcomes["retained_30d"].verdict``.
        cost: the summed cost of the contacted executions (every execution, not only the
            units' first); None when a type has no cost.
        mean_ltv: mean LTV (18 months of revenue) of the contacted units' suppliers.
        churn_prevented_30d: the 30-day retention difference times ``n_treated``: cancellations
            avoided among the contacted (negative: caused); with ``_ci_low`` / ``_ci_high``,
            the difference's interval scaled alike.
        ltv_protected: ``churn_prevented_30d`` times ``mean_ltv`` (and its interval).
        roi: ``ltv_protected`` over ``cost`` (and its interval); None when the cost is 0 or
            unknown.
        The money figures are None while the 30-day retention is not estimable.
    """

    intervention_type: str
    rule: str | None
    n_treated: int
    n_control: int
    delivery_rate: float | None
    outcomes: dict[OutcomeName, OutcomeEffect]
    verdict: str
    cost: float | None
    mean_ltv: float | None
    churn_prevented_30d: float | None
    churn_prevented_30d_ci_low: float | None
    churn_prevented_30d_ci_high: float | None
    ltv_protected: float | None
    ltv_protected_ci_low: float | None
    ltv_protected_ci_high: float | None
    roi: float | None
    roi_ci_low: float | None
    roi_ci_high: float | None


# -- inputs ----------------------------------------------------------------------------------
def _checked(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the required columns present, ``supplier_id`` as text and times in UTC."""
    columns = REQUIRED_COLUMNS[table]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{table}.{missing[0]}: column missing (needs {', '.join(columns)})")
    out = frame.copy()
    out["supplier_id"] = out["supplier_id"].astype(str)
    for column in ("at", "cancelled_at"):
        if column in columns:
            out[column] = _instants(table, column, out[column])
    return out


def _instants(table: str, column: str, values: pd.Series) -> pd.Series:
    """Time-zone-aware instants in UTC (any zones, mixed ones too); naive ones are refused rather
    than guessed, as a guessed zone would move an event across a window's edge."""
    if values.isna().all():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if values.dtype == object:  # datetime objects or ISO strings, e.g. read from a database
        try:
            naive = any(pd.Timestamp(v).tz is None for v in values.dropna())
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{table}.{column} must hold time-zone-aware instants: {err}"
            ) from err
        if not naive:
            return pd.to_datetime(values, utc=True)
    raise ValueError(f"{table}.{column} holds naive times: give them a time zone (UTC)")


def _flags(table: str, column: str, values: pd.Series) -> pd.Series:
    if values.isna().any():
        raise ValueError(f"{table}.{column} has {int(values.isna().sum())} missing value(s)")
    if not values.isin([True, False]).all():
        wrong = values[~values.isin([True, False])].iloc[0]
        raise ValueError(f"{table}.{column} must hold booleans, not e.g. {wrong!r}")
    return values.astype(bool)


def _assignments(assignments: pd.DataFrame) -> pd.DataFrame:
    out = _checked("assignments", assignments.reset_index(drop=True))
    if out["at"].isna().any():
        raise ValueError(f"assignments.at has {int(out['at'].isna().sum())} missing time(s)")
    out["held_out"] = _flags("assignments", "held_out", out["held_out"])
    out["delivered"] = _flags("assignments", "delivered", out["delivered"])
    wrong = out["held_out"] & out["delivered"]
    if wrong.any():
        raise ValueError(
            f"assignments.delivered: {int(wrong.sum())} held-out row(s) marked delivered, "
            f"e.g. supplier {out.loc[wrong, 'supplier_id'].iloc[0]}"
        )
    return out


def _directory(suppliers: pd.DataFrame) -> pd.DataFrame:
    """The supplier directory indexed by ``supplier_id`` (one row each)."""
    out = _checked("suppliers", suppliers)
    repeated = out["supplier_id"][out["supplier_id"].duplicated()]
    if len(repeated):
        raise ValueError(
            f"suppliers.supplier_id: more than one row for supplier(s) {sorted(set(repeated))[:5]}"
        )
    out["monthly_revenue"] = pd.to_numeric(out["monthly_revenue"])
    return out.set_index("supplier_id")[["cancelled_at", "monthly_revenue"]]


def _health(health: pd.DataFrame) -> pd.DataFrame:
    """Stored scores with ``day`` as a naive midnight (the UTC calendar day)."""
    out = _checked("health", health)
    days = pd.to_datetime(out["day"])
    if isinstance(days.dtype, pd.DatetimeTZDtype):
        days = days.dt.tz_convert("UTC").dt.tz_localize(None)
    out["day"] = days.dt.normalize().astype("datetime64[ns]")
    out["score"] = pd.to_numeric(out["score"])
    out = out.dropna(subset=["day", "score"])
    repeated = out.duplicated(["supplier_id", "day"])
    if repeated.any():
        first = out[repeated].iloc[0]
        raise ValueError(
            f"health.day: more than one score for supplier {first['supplier_id']} on "
            f"{first['day']:%Y-%m-%d}"
        )
    return out[["supplier_id", "day", "score"]]


def _end_of(as_of: date) -> pd.Timestamp:
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise TypeError(f"as_of must be a calendar day (datetime.date), not {as_of!r}")
    return pd.Timestamp(as_of + timedelta(days=1), tz="UTC")


# -- units and their outcomes ----------------------------------------------------------------
def _level_keys(level: Level) -> list[str]:
    if level not in ("rule", "type"):
        raise ValueError(f"level must be 'rule' or 'type', not {level!r}")
    return ["intervention_type", "rule"] if level == "rule" else ["intervention_type"]


def _first(checked: pd.DataFrame, level: Level) -> pd.DataFrame:
    keys = [*_level_keys(level), "supplier_id"]
    ordered = checked.sort_values("at", kind="stable")
    first = ordered.drop_duplicates(keys, keep="first")
    return first.sort_index(kind="stable").reset_index(drop=True)


def first_executions(assignments: pd.DataFrame, level: Level = "rule") -> pd.DataFrame:
    """The analysis units: per rule (``level="rule"``) or per intervention type
    (``level="type"``), each supplier's earliest execution (by ``at``; a tie goes to the
    earlier row). Every column of ``assignments`` is kept (``at`` in UTC), in input order.

    Raises:
        KeyError: a required column is missing (named ``assignments.column``).
        ValueError: naive or missing times, non-boolean flags, a held-out row marked delivered.
    """
    return _first(_assignments(assignments), level)


def _logged_in(units: pd.DataFrame, logins: pd.DataFrame) -> np.ndarray:
    """Whether each unit's supplier logged in within ``(at, at + 7 days]``: its first login
    after ``at`` comes by ``at + 7 days``."""
    left = pd.DataFrame(
        {"supplier_id": units["supplier_id"].to_numpy(), "at": _nanoseconds(units["at"])}
    ).assign(_unit=units.index)
    right = pd.DataFrame(
        {"supplier_id": logins["supplier_id"].to_numpy(), "at": _nanoseconds(logins["at"])}
    ).dropna()
    right["_login"] = right["at"]
    joined = pd.merge_asof(
        left.sort_values("at", kind="stable"),
        right.sort_values("at", kind="stable"),
        on="at",
        by="supplier_id",
        direction="forward",
        allow_exact_matches=False,
    )
    inside = joined["_login"] <= joined["at"] + pd.Timedelta(days=LOGIN_WINDOW_DAYS)
    return inside.set_axis(joined["_unit"]).reindex(units.index).to_numpy(bool)


def _nanoseconds(instants: pd.Series) -> pd.api.extensions.ExtensionArray:
    """UTC instants at one resolution (``merge_asof`` wants both keys alike)."""
    return instants.astype("datetime64[ns, UTC]").array


def _score_on_or_before(
    units: pd.DataFrame, day: pd.Series, health: pd.DataFrame, tolerance: pd.Timedelta | None
) -> np.ndarray:
    """Each unit's score of the latest stored day ``<= day`` (within ``tolerance`` if given);
    NaN when there is none."""
    left = pd.DataFrame(
        {
            "supplier_id": units["supplier_id"].to_numpy(),
            "day": day.to_numpy(),
            "_unit": units.index,
        }
    ).sort_values("day", kind="stable")
    right = health.sort_values("day", kind="stable")
    joined = pd.merge_asof(
        left, right, on="day", by="supplier_id", direction="backward", tolerance=tolerance
    )
    return joined.set_index("_unit")["score"].reindex(units.index).to_numpy(float)


def _health_change(units: pd.DataFrame, health: pd.DataFrame) -> np.ndarray:
    at = units["at"].dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    # the last day d before at: d + 1 day <= at
    before = (at - pd.Timedelta(days=1)).dt.floor("D")
    after = (at + pd.Timedelta(days=HEALTH_WINDOW_DAYS)).dt.floor("D")
    baseline = _score_on_or_before(units, before, health, None)
    later = _score_on_or_before(units, after, health, pd.Timedelta(days=HEALTH_TOLERANCE_DAYS))
    return later - baseline


def unit_outcomes(
    units: pd.DataFrame,
    suppliers: pd.DataFrame,
    as_of: date,
    *,
    logins: pd.DataFrame | None = None,
    health: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each unit's outcomes (see the module's docstring).

    Args:
        units: analysis units (``first_executions``), or any rows of the assignments' shape.
        suppliers: the directory: ``supplier_id``, ``cancelled_at`` (UTC or NaT),
            ``monthly_revenue``; every unit's supplier must be in it.
        as_of: the last day whose cancellations, logins and scores are known.
        logins: ``supplier_id``, ``at`` (UTC) login events; None leaves ``login_7d`` out.
        health: ``supplier_id``, ``day``, ``score`` (0..100); None leaves
            ``health_change_14d`` out.

    Returns:
        ``units`` (fresh index) with ``monthly_revenue`` and, per outcome, a column of its value
        (1.0/0.0 for the proportions, points for the health change; NaN unless measured) and
        ``<outcome>_status``: ``measured``, ``pending`` (window not ended) or ``missing`` (no
        score).

    Raises:
        KeyError: a required column is missing (named ``table.column``).
        ValueError: naive times, a supplier missing from the directory or listed twice, two
            scores of one supplier on one day.
        TypeError: ``as_of`` is not a ``date``.
    """
    end = _end_of(as_of)
    out = _assignments(units).reset_index(drop=True)
    directory = _directory(suppliers)
    unknown = ~out["supplier_id"].isin(directory.index)
    if unknown.any():
        raise ValueError(
            f"assignments.supplier_id: {int(unknown.sum())} row(s) of supplier(s) not in "
            f"suppliers, e.g. {sorted(set(out.loc[unknown, 'supplier_id']))[:5]}"
        )
    cancelled_at = out["supplier_id"].map(directory["cancelled_at"])
    out["monthly_revenue"] = out["supplier_id"].map(directory["monthly_revenue"]).to_numpy()

    def record(name: str, value: np.ndarray, ended: np.ndarray) -> None:
        measured = ended & ~np.isnan(value)
        out[name] = np.where(measured, value, np.nan)
        out[f"{name}_status"] = np.where(measured, MEASURED, np.where(ended, MISSING, PENDING))

    if logins is not None:
        ended = (out["at"] + pd.Timedelta(days=LOGIN_WINDOW_DAYS) <= end).to_numpy()
        record("login_7d", _logged_in(out, _checked("logins", logins)).astype(float), ended)
    if health is not None:
        after = (out["at"] + pd.Timedelta(days=HEALTH_WINDOW_DAYS)).dt.floor("D")
        ended = (after + pd.Timedelta(days=1) <= end).to_numpy()
        record("health_change_14d", _health_change(out, _health(health)), ended)
    for days in RETENTION_HORIZONS:
        horizon_end = out["at"] + pd.Timedelta(days=days)
        retained = (cancelled_at.isna() | (cancelled_at > horizon_end)).to_numpy()
        record(f"retained_{days}d", retained.astype(float), (horizon_end <= end).to_numpy())
    return out


# -- statistics ------------------------------------------------------------------------------
def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    from scipy import stats  # (scipy.stats takes a second to import: only when measuring)

    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for a proportion ``successes / n`` (``n >= 1``)."""
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, not {successes}/{n}")
    z = _z(confidence)
    centre = (successes + z * z / 2) / (n + z * z)
    half = z * math.sqrt(successes * (n - successes) / n + z * z / 4) / (n + z * z)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10) for ``x1/n1 - x2/n2``, two
    independent proportions: each proportion's distance to its Wilson limits, combined.

    Newcombe's example (b): 56/70 - 48/80 = 0.2000, interval 0.0524 to 0.3339.
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled z-test of ``x1/n1 == x2/n2`` (1.0 when every unit has
    the same outcome, so nothing differs)."""
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    from scipy import stats

    return float(2 * stats.norm.sf(abs((x1 / n1 - x2 / n2) / se)))


def welch(
    treated: np.ndarray, control: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float | None, float | None, float | None]:
    """(difference of means, CI low, CI high, two-sided p) of Welch's t-test; the interval and
    p are None when neither group varies (no standard error). Needs two values per group."""
    treated, control = np.asarray(treated, float), np.asarray(control, float)
    if len(treated) < 2 or len(control) < 2:
        raise ValueError("Welch's test needs at least two values per group")
    difference = float(treated.mean() - control.mean())
    if treated.var() == 0 and control.var() == 0:
        return difference, None, None, None
    from scipy import stats

    result = stats.ttest_ind(treated, control, equal_var=False)
    interval = result.confidence_interval(confidence_level=confidence)
    return difference, float(interval.low), float(interval.high), float(result.pvalue)


def _p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _verdict(
    outcome: str,
    difference: float,
    low: float | None,
    high: float | None,
    p: float | None,
    significant: bool,
    confidence: float,
) -> str:
    words, unit = _WORDING[outcome]
    scale = 100.0 if unit == "pp" else 1.0
    if low is None or high is None or p is None:
        return f"not significant (no variation in either group): {words} {difference:+.1f} {unit}"
    what = (
        f"{words} {scale * difference:+.1f} {unit} "
        f"({confidence:.0%} CI {scale * low:.1f} to {scale * high:.1f})"
    )
    if significant:
        return f"significant: {what}, {_p_text(p)}"
    return f"not significant ({_p_text(p)}): {what}"


def outcome_effect(
    outcome: OutcomeName,
    treated: np.ndarray,
    control: np.ndarray,
    *,
    n_pending: int = 0,
    n_missing: int = 0,
    min_units: int = MIN_UNITS_PER_GROUP,
    confidence: float = CONFIDENCE,
) -> OutcomeEffect:
    """Compare one outcome's measured values (0/1 for a proportion) between the groups."""
    kind: Literal["proportion", "mean"] = "proportion" if outcome in PROPORTIONS else "mean"
    treated, control = np.asarray(treated, float), np.asarray(control, float)
    counts = {
        "outcome": outcome,
        "kind": kind,
        "n_treated": len(treated),
        "n_control": len(control),
        "n_pending": n_pending,
        "n_missing": n_missing,
    }
    if min(len(treated), len(control)) < min_units:
        return OutcomeEffect(
            **counts,
            estimable=False,
            **dict.fromkeys(("treated", "control", "difference", "ci_low", "ci_high", "p_value")),
            significant=False,
            verdict=(
                f"not estimable: {len(treated)} contacted and {len(control)} held-out unit(s) "
                f"measured, fewer than {min_units} in a group"
            ),
        )
    if kind == "proportion":
        x1, n1, x2, n2 = int(treated.sum()), len(treated), int(control.sum()), len(control)
        difference = x1 / n1 - x2 / n2
        low, high = newcombe_interval(x1, n1, x2, n2, confidence)
        p: float | None = two_proportion_p_value(x1, n1, x2, n2)
    else:
        difference, low, high, p = welch(treated, control, confidence)
    significant = low is not None and high is not None and (low > 0 or high < 0)
    return OutcomeEffect(
        **counts,
        estimable=True,
        treated=float(treated.mean()),
        control=float(control.mean()),
        difference=float(difference),
        ci_low=low,
        ci_high=high,
        p_value=p,
        significant=significant,
        verdict=_verdict(outcome, difference, low, high, p, significant, confidence),
    )


# -- the report ------------------------------------------------------------------------------
def _execution_costs(checked: pd.DataFrame, costs: Mapping[str, float]) -> pd.Series:
    """Each row's cost: its ``cost`` when given, else its type's; NaN when neither is known."""
    by_type = checked["intervention_type"].map(dict(costs)).astype(float)
    if "cost" not in checked.columns:
        return by_type
    given = pd.to_numeric(checked["cost"])
    if (given < 0).any():
        raise ValueError(f"assignments.cost has {int((given < 0).sum())} negative value(s)")
    return given.fillna(by_type)


def _row(
    intervention_type: str,
    rule: str | None,
    units: pd.DataFrame,
    cost: float | None,
    min_units: int,
    confidence: float,
) -> InterventionEffect:
    contacted = units[~units["held_out"]]
    held = units["held_out"].to_numpy()

    def effect(name: OutcomeName) -> OutcomeEffect:
        status = units[f"{name}_status"].to_numpy()
        values = units[name].to_numpy(float)
        measured = status == MEASURED
        return outcome_effect(
            name,
            values[measured & ~held],
            values[measured & held],
            n_pending=int((status == PENDING).sum()),
            n_missing=int((status == MISSING).sum()),
            min_units=min_units,
            confidence=confidence,
        )

    outcomes = {
        name: effect(name)
        for name in ("login_7d", "health_change_14d", "retained_30d", "retained_60d")
        if name in units.columns
    }
    retained = outcomes["retained_30d"]
    revenue = contacted["monthly_revenue"].dropna()
    mean_ltv = float(ltv(revenue).mean()) if len(revenue) else None
    money: dict[str, float | None] = {}
    difference, low, high = retained.difference, retained.ci_low, retained.ci_high
    if difference is not None and low is not None and high is not None:
        n = len(contacted)
        factors = {
            "churn_prevented_30d": n,
            "ltv_protected": None if mean_ltv is None else n * mean_ltv,
            "roi": None if mean_ltv is None or not cost else n * mean_ltv / cost,
        }
        for name, factor in factors.items():
            if factor is not None:
                bounds = sorted((low * factor, high * factor))  # a negative revenue flips them
                money |= {
                    name: difference * factor,
                    f"{name}_ci_low": bounds[0],
                    f"{name}_ci_high": bounds[1],
                }
    return InterventionEffect(
        intervention_type=intervention_type,
        rule=rule,
        n_treated=len(contacted),
        n_control=int(held.sum()),
        delivery_rate=float(contacted["delivered"].mean()) if len(contacted) else None,
        outcomes=outcomes,
        verdict=retained.verdict,
        cost=cost,
        mean_ltv=mean_ltv,
        **{
            f"{name}{suffix}": money.get(f"{name}{suffix}")
            for name in ("churn_prevented_30d", "ltv_protected", "roi")
            for suffix in ("", "_ci_low", "_ci_high")
        },
    )


def _total(values: pd.Series) -> float | None:
    return None if values.isna().any() else float(values.sum())


def _type_order(types: list[str]) -> list[str]:
    known = [t for t in INTERVENTION_TYPES if t in types]
    return known + sorted(set(types) - set(known))


def intervention_effects(
    assignments: pd.DataFrame,
    suppliers: pd.DataFrame,
    as_of: date,
    *,
    logins: pd.DataFrame | None = None,
    health: pd.DataFrame | None = None,
    costs: Mapping[str, float] = DEFAULT_COSTS,
    min_units: int = MIN_UNITS_PER_GROUP,
    confidence: float = CONFIDENCE,
) -> list[InterventionEffect]:
    """The effect of each intervention type and of each of its rules, contacted against held
    out (see the module's docstring for the units, outcomes and statistics).

    Args:
        assignments: one row per execution the rules decided: ``supplier_id``, ``rule``,
            ``intervention_type``, ``at`` (UTC), ``held_out``, ``delivered`` (False for held-out
            rows) and optionally ``cost``. Manual and export executions do not belong here: they
            have no held-out counterpart.
        suppliers: ``supplier_id``, ``cancelled_at`` (UTC or NaT), ``monthly_revenue``.
        as_of: the last day whose cancellations, logins and scores are known.
        logins: ``supplier_id``, ``at`` login events, or None (then no ``login_7d``).
        health: ``supplier_id``, ``day``, ``score``, or None (then no ``health_change_14d``).
        costs: the cost of a contacted execution by intervention type, for rows without a
            ``cost``.
        min_units: fewer measured units than this in a group make an outcome not estimable.
        confidence: of the intervals.

    Returns:
        Per intervention type (in the contract's order) its pooled row (``rule`` None), then one
        row per rule (by name); empty when ``assignments`` has no rows.

    Raises:
        KeyError: a required column is missing (named ``table.column``).
        ValueError: naive or missing times, a supplier missing from the directory or listed
            twice, a held-out row marked delivered, a negative cost, ``min_units`` below 2.
        TypeError: ``as_of`` is not a ``date``.
    """
    if min_units < 2:
        raise ValueError(f"min_units must be at least 2 (Welch's test needs two), not {min_units}")
    _z(confidence)
    if assignments.empty and len(assignments.columns) == 0:
        return []
    checked = _assignments(assignments)
    _end_of(as_of)
    if checked.empty:
        return []
    checked["_cost"] = _execution_costs(checked, costs)
    contacted = checked[~checked["held_out"]]
    rows: list[InterventionEffect] = []
    by_level = {
        level: unit_outcomes(
            _first(checked, level), suppliers, as_of, logins=logins, health=health
        )
        for level in ("type", "rule")
    }
    for kind in _type_order(list(checked["intervention_type"].unique())):
        type_units = by_level["type"]
        type_cost = _total(contacted.loc[contacted["intervention_type"] == kind, "_cost"])
        rows.append(
            _row(
                kind,
                None,
                type_units[type_units["intervention_type"] == kind],
                type_cost,
                min_units,
                confidence,
            )
        )
        rule_units = by_level["rule"][by_level["rule"]["intervention_type"] == kind]
        for rule in sorted(rule_units["rule"].unique()):
            of_rule = (contacted["intervention_type"] == kind) & (contacted["rule"] == rule)
            rows.append(
                _row(
                    kind,
                    rule,
                    rule_units[rule_units["rule"] == rule],
                    _total(contacted.loc[of_rule, "_cost"]),
                    min_units,
                    confidence,
                )
            )
    return rows


# -- checking against a known truth ----------------------------------------------------------
def true_retention_effect(
    units: pd.DataFrame, horizon_days: int = 30, as_of: date | None = None
) -> float | None:
    """The true average effect of the contact on retention at ``horizon_days`` over these
    units, for checking an estimate against a simulation that knows each unit's churn
    probability both ways: the mean of ``p_churn_<H>d_withheld - p_churn_<H>d_sent`` (a
    retention difference, contacted minus held out, as ``OutcomeEffect.difference``).

    Args:
        units: analysis units (``first_executions``) carrying the two probability columns.
        horizon_days: ``H``.
        as_of: when given, only the units whose window has ended by the end of ``as_of`` (the
            units the estimate is measured on).

    Returns:
        The mean, or None without units.

    Raises:
        KeyError: a probability column is missing (named ``units.column``).
    """
    columns = (f"p_churn_{horizon_days}d_sent", f"p_churn_{horizon_days}d_withheld")
    for column in columns:
        if column not in units.columns:
            raise KeyError(f"units.{column}: column missing (needs {', '.join(columns)})")
    if as_of is not None:
        if "at" not in units.columns:
            raise KeyError("units.at: column missing (needed with as_of)")
        ends = _instants("units", "at", units["at"]) + pd.Timedelta(days=horizon_days)
        units = units[(ends <= _end_of(as_of)).to_numpy()]
    if units.empty:
        return None
    sent, withheld = (pd.to_numeric(units[c]).to_numpy(float) for c in columns)
    return float(np.mean(withheld - sent))
