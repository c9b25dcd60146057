"""Reading what the measured effect of interventions needs from the operational database: the
rules' executions (contacted and held out), the directory, and from the stored health rows the
scores and each day's last login. :func:`monitoring.effects.intervention_effects` does the rest.

Logins. The database keeps, per scored day, the supplier's last login day
(``customer_health.last_login_day``, from the day's features), not login instants. A login
on day ``L`` is taken at the end of ``L`` (23:59:59.999999 UTC), so ``login_7d`` reads "logged
in on the contact's day or one of the 7 days after it": both groups are contacted (or held out)
at the same hours, so the day's rounding shifts them alike.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

import pandas as pd
from sqlalchemy import Engine, func, select

from monitoring.effects import InterventionEffect, intervention_effects
from serving.db.models import CustomerHealth, InterventionExecution, Supplier
from serving.errors import BadRequestError

DELIVERED = ("sent", "completed")
LOOK_BACK_DAYS = 7  # health before the first contact, for the score change's baseline


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


class EffectBook:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def measure(
        self, since: date | None = None, as_of: date | None = None
    ) -> tuple[date | None, list[InterventionEffect]]:
        """The effect of each type and rule over the executions the rules decided from
        ``since`` on (by default all), judged with what is known by ``as_of`` (by default the
        latest scored day); the day used and the rows.

        Raises:
            BadRequestError: ``since`` after ``as_of``.
        """
        E, H = InterventionExecution, CustomerHealth
        with self.engine.connect() as c:
            as_of = as_of or c.scalar(select(func.max(H.day)))
            if as_of is None:
                return None, []
            if since is not None and since > as_of:
                raise BadRequestError(f"since ({since}) is after the last scored day ({as_of})")
            query = select(
                E.supplier_id,
                E.rule_id.label("rule"),
                E.intervention_type,
                E.scheduled_at.label("at"),
                E.control_group.label("held_out"),
                E.status,
            ).where(E.rule_id.is_not(None), E.day <= as_of)
            if since is not None:
                query = query.where(E.day >= since)
            assignments = pd.read_sql(query, c)
            if assignments.empty:
                return as_of, []
            decided = select(E.supplier_id).where(E.rule_id.is_not(None)).distinct()
            suppliers = pd.read_sql(
                select(
                    Supplier.supplier_id, Supplier.cancelled_at, Supplier.monthly_revenue
                ).where(Supplier.supplier_id.in_(decided)),
                c,
            )
            first = _utc(assignments["at"]).min().date() - timedelta(days=LOOK_BACK_DAYS)
            health = pd.read_sql(
                select(H.supplier_id, H.day, H.score, H.last_login_day).where(
                    H.supplier_id.in_(decided), H.day >= first, H.day <= as_of
                ),
                c,
            )
        assignments["at"] = _utc(assignments["at"])
        assignments["held_out"] = assignments["held_out"].astype(bool)
        assignments["delivered"] = assignments["status"].isin(DELIVERED) & ~assignments["held_out"]
        suppliers["cancelled_at"] = _utc(suppliers["cancelled_at"])
        health["day"] = pd.to_datetime(health["day"]).dt.date
        logins = (
            health.dropna(subset=["last_login_day"])
            .drop_duplicates(["supplier_id", "last_login_day"])[["supplier_id", "last_login_day"]]
            .rename(columns={"last_login_day": "at"})
        )
        logins["at"] = (
            pd.to_datetime(logins["at"]).dt.tz_localize(UTC)
            + pd.Timedelta(days=1)
            - pd.Timedelta(microseconds=1)
        )
        effects = intervention_effects(
            assignments.drop(columns=["status"]),
            suppliers,
            as_of,
            logins=logins,
            health=health[["supplier_id", "day", "score"]].dropna(subset=["score"]),
        )
        return as_of, effects
