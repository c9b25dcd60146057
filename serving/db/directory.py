"""The supplier directory: the export's suppliers and their CS agents, upserted into the
operational database as they were at an instant (what the service may name and reach).

:func:`directory_rows` is the pure part (the contract's rule of who is active at ``as_of``; a
cancellation after it is not known yet); :func:`sync_directory` writes them in batches inside
one transaction, so a directory is never half-updated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, select

from serving.db.migrate import insert_for
from serving.db.models import CsAgent, SuccessMilestone, Supplier

_COLUMNS = (
    "supplier_id",
    "business_name",
    "first_name",
    "email",
    "vendor_type",
    "subscription_tier",
    "monthly_revenue",
    "country",
    "signup_at",
    "cancelled_at",
    "status",
    "agent_id",
    "synced_at",
)
# what a sync compares to decide whether a stored row changed (all but the key and synced_at)
_COMPARED = _COLUMNS[1:-1]


@dataclass(frozen=True)
class DirectorySync:
    suppliers: int
    inserted: int
    updated: int  # stored rows that changed
    unchanged: int  # stored rows left as they were
    active: int
    agents_added: int


def _none(value: Any) -> Any:
    return None if pd.isna(value) else value


def directory_rows(
    suppliers: pd.DataFrame, cancellations: pd.DataFrame, as_of: datetime
) -> list[dict[str, Any]]:
    """One directory row per supplier signed up by ``as_of``: ``active``, or ``cancelled`` when
    its cancellation is at or before ``as_of`` (a later one is not known yet and is left out)."""
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of} is naive: give it a time zone (UTC)")
    at = pd.Timestamp(as_of).tz_convert(UTC)
    frame = suppliers.merge(
        cancellations[["supplier_id", "cancelled_at"]], how="left", on="supplier_id"
    )
    frame = frame[pd.to_datetime(frame["signup_at"], utc=True) <= at]
    cancelled_at = pd.to_datetime(frame["cancelled_at"], utc=True)
    known = cancelled_at.notna() & (cancelled_at <= at)
    rows = []
    for row, is_cancelled, when in zip(
        frame.itertuples(index=False), known.to_numpy(), cancelled_at, strict=True
    ):
        rows.append(
            {
                "supplier_id": str(row.supplier_id),
                "business_name": _none(row.business_name),
                "first_name": _none(row.first_name),
                "email": _none(row.email),
                "vendor_type": row.vendor_type,
                "subscription_tier": row.subscription_tier,
                "monthly_revenue": float(row.monthly_revenue),
                "country": _none(row.country),
                "signup_at": pd.Timestamp(row.signup_at).tz_convert(UTC).to_pydatetime(),
                "cancelled_at": when.to_pydatetime() if is_cancelled else None,
                "status": "cancelled" if is_cancelled else "active",
                "agent_id": _none(row.cs_agent_id),
                "synced_at": at.to_pydatetime(),
            }
        )
    return rows


def sync_directory(
    engine: Engine,
    suppliers: pd.DataFrame,
    cancellations: pd.DataFrame,
    as_of: datetime,
    batch_rows: int = 5000,
) -> DirectorySync:
    """Upsert the directory as of ``as_of`` (see :func:`write_directory`)."""
    return write_directory(engine, directory_rows(suppliers, cancellations, as_of), batch_rows)


def _compared(row: dict[str, Any]) -> tuple:
    return tuple(row[c] for c in _COMPARED)


def write_directory(
    engine: Engine, rows: list[dict[str, Any]], batch_rows: int = 5000
) -> DirectorySync:
    """Upsert directory ``rows`` (of :func:`directory_rows`), and any agent they name that is
    not known yet, in one transaction: a rerun replaces the rows, never duplicates them.

    Only new rows and rows that differ from the stored ones are written (a day changes a few
    hundred of 100,000 suppliers); a row's ``synced_at`` is the sync that last wrote it.
    """
    insert = insert_for(engine)
    agents = sorted({r["agent_id"] for r in rows if r["agent_id"] is not None})
    with engine.begin() as connection:
        known_agents = set(connection.scalars(select(CsAgent.agent_id)))
        new_agents = [a for a in agents if a not in known_agents]
        if new_agents:
            connection.execute(
                insert(CsAgent).on_conflict_do_nothing(),
                [
                    {"agent_id": a, "name": a, "capacity_per_day": 20, "active": True}
                    for a in new_agents
                ],
            )
        columns = [getattr(Supplier, c) for c in ("supplier_id", *_COMPARED)]
        stored = {r[0]: tuple(r[1:]) for r in connection.execute(select(*columns))}
        changed = [r for r in rows if stored.get(r["supplier_id"]) != _compared(r)]
        statement = insert(Supplier)
        upsert = statement.on_conflict_do_update(
            index_elements=[Supplier.supplier_id],
            set_={c: statement.excluded[c] for c in _COLUMNS if c != "supplier_id"},
        )
        for start in range(0, len(changed), batch_rows):
            connection.execute(upsert, changed[start : start + batch_rows])
    updated = sum(r["supplier_id"] in stored for r in changed)
    return DirectorySync(
        suppliers=len(rows),
        inserted=len(changed) - updated,
        updated=updated,
        unchanged=len(rows) - len(changed),
        active=sum(r["status"] == "active" for r in rows),
        agents_added=len(new_agents),
    )


def sync_milestones(
    engine: Engine, milestones: pd.DataFrame, as_of: datetime, batch_rows: int = 5000
) -> int:
    """Copy the export's milestones reached by ``as_of`` into ``success_milestones`` (one row
    per supplier and milestone: one already there, from the export or the API, is kept).

    Returns:
        The milestones the export holds up to ``as_of``.
    """
    at = pd.Timestamp(as_of).tz_convert(UTC)
    frame = milestones[pd.to_datetime(milestones["achieved_at"], utc=True) <= at]
    rows = [
        {
            "supplier_id": str(r.supplier_id),
            "milestone_type": r.milestone_type,
            "achieved_at": pd.Timestamp(r.achieved_at).tz_convert(UTC).to_pydatetime(),
            "source": "export",
        }
        for r in frame.itertuples(index=False)
    ]
    insert = insert_for(engine)
    with engine.begin() as connection:
        known = set(connection.scalars(select(Supplier.supplier_id)))
        rows = [r for r in rows if r["supplier_id"] in known]
        pair = select(SuccessMilestone.supplier_id, SuccessMilestone.milestone_type)
        stored = {tuple(r) for r in connection.execute(pair)}
        new = [r for r in rows if (r["supplier_id"], r["milestone_type"]) not in stored]
        for start in range(0, len(new), batch_rows):
            connection.execute(
                insert(SuccessMilestone).on_conflict_do_nothing(
                    index_elements=["supplier_id", "milestone_type"]
                ),
                new[start : start + batch_rows],
            )
    return len(rows)


def export_execution_id(supplier: str, sent_at: datetime, kind: str) -> str:
    """The stable id of an export's delivered intervention (the same row, the same id)."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"wedsync-export:{supplier}:{sent_at.isoformat()}:{kind}")
    )


def sync_interventions_log(
    engine: Engine, log: pd.DataFrame, as_of: datetime, batch_rows: int = 5000
) -> int:
    """Copy the export's ``interventions_log`` (interventions delivered outside the engine) up
    to ``as_of`` into ``intervention_executions`` as ``sent`` executions triggered by
    ``export``: the caps count them as contacts, and effect measurement sees them. Each row
    once (a stable id); suppliers not in the directory are left out.

    Returns:
        The rows of the log up to ``as_of``.
    """
    from serving.db.models import InterventionExecution
    from serving.rules import CHANNELS

    at = pd.Timestamp(as_of).tz_convert(UTC)
    sent_at = pd.to_datetime(log["sent_at"], utc=True)
    frame = log[sent_at <= at]
    insert = insert_for(engine)
    with engine.begin() as connection:
        # rows older than the newest one copied, less a day, were copied by an earlier sync
        newest = connection.scalar(
            select(func.max(InterventionExecution.scheduled_at)).where(
                InterventionExecution.triggered_by == "export"
            )
        )
        if newest is not None:
            frame = frame[sent_at[frame.index] > pd.Timestamp(newest) - pd.Timedelta(days=1)]
        known = set(connection.scalars(select(Supplier.supplier_id)))
        rows = []
        for r in frame.itertuples(index=False):
            if str(r.supplier_id) not in known:
                continue
            sent = pd.Timestamp(r.sent_at).tz_convert(UTC).to_pydatetime()
            kind = str(r.intervention_type)
            rows.append(
                {
                    "id": export_execution_id(str(r.supplier_id), sent, kind),
                    "supplier_id": str(r.supplier_id),
                    "intervention_type": kind,
                    "status": "sent",
                    "scheduled_at": sent,
                    "executed_at": sent,
                    "reason": "delivered outside the engine (the export's interventions_log)",
                    "priority": "medium",
                    "triggered_by": "export",
                    "channel": CHANNELS[kind],
                    "created_at": at.to_pydatetime(),
                    "updated_at": at.to_pydatetime(),
                }
            )
        for start in range(0, len(rows), batch_rows):
            connection.execute(
                insert(InterventionExecution).on_conflict_do_nothing(index_elements=["id"]),
                rows[start : start + batch_rows],
            )
    return int((sent_at <= at).sum())
