"""Reading the stored KPIs and agents' performance back for the API (``/kpis``, ``/agents``)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, func, select

from serving.api import schemas
from serving.db.metrics import AGENT_COLUMNS
from serving.db.models import CsAgent, CsKpi, CsPerformanceMetric
from serving.errors import BadRequestError

MAX_DAYS = 366
# the answer's fields read from a cs_performance_metrics row (and the agent's name)
AGENT_FIELDS = tuple(f for f in schemas.AgentPerformanceOut.model_fields if f not in {"date"})


class PerformanceBook:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def kpis(self, first: date | None, last: date | None) -> list[schemas.KpiOut]:
        """The stored KPIs of the days from ``first`` to ``last`` (both included; by default
        the latest stored day), oldest day first, each day in the registry's order.

        Raises:
            BadRequestError: ``from`` after ``to``, or more than a year asked.
        """
        if first is None and last is None:
            with self.engine.connect() as c:
                first = last = c.execute(select(func.max(CsKpi.day))).scalar()
            if last is None:
                return []
        first = first or last
        last = last or first
        assert first is not None and last is not None
        if first > last:
            raise BadRequestError(f"from ({first}) is after to ({last})")
        if (last - first).days >= MAX_DAYS:
            raise BadRequestError(f"ask for at most {MAX_DAYS} days at once")
        from monitoring.kpis import KPIS

        order = {d.name: i for i, d in enumerate(KPIS)}
        with self.engine.connect() as c:
            rows = c.execute(
                select(CsKpi.name, CsKpi.definition, CsKpi.value, CsKpi.unit, CsKpi.day).where(
                    CsKpi.day >= first, CsKpi.day <= last
                )
            ).all()
        rows = sorted(rows, key=lambda r: (r.day, order.get(r.name, len(order)), r.name))
        return [
            schemas.KpiOut(
                name=r.name, definition=r.definition, value=r.value, unit=r.unit, date=r.day
            )
            for r in rows
        ]

    def agents(self, day: date | None, agent_id: str | None) -> list[schemas.AgentPerformanceOut]:
        """The agents' rows of ``day`` (by default the latest stored), or one agent's."""
        M = CsPerformanceMetric
        with self.engine.connect() as c:
            if day is None:
                day = c.execute(select(func.max(M.day))).scalar()
                if day is None:
                    return []
            query = (
                select(*M.__table__.c, CsAgent.name)
                .join(CsAgent, CsAgent.agent_id == M.agent_id)
                .where(M.day == day)
                .order_by(M.agent_id)
            )
            if agent_id is not None:
                query = query.where(M.agent_id == agent_id)
            rows = c.execute(query).all()
        out = []
        for row in rows:
            values = dict(row._mapping)
            fields = {f: values[AGENT_COLUMNS.get(f, f)] for f in AGENT_FIELDS}
            out.append(schemas.AgentPerformanceOut(**fields, date=values["day"]))
        return out
