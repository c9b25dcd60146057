"""An agent's worklist: the suppliers of the agent's book that need a person, ranked by
expected loss (churn probability x LTV), or by expected saved LTV (uplift x LTV) when uplift
targeting is on for calls, cut at the agent's daily capacity.

A supplier needs a person when the newest day's prediction recommends an intervention (churn
risk medium or above) or when a call or support session is booked for the agent. Each item
says why (the factor families pushing the churn probability up most), what to do (the booked
call, else the action of the strongest factor) and what has already been done (the last
contact that reached or was to reach the supplier; held-out executions are not contacts).

The ranking. ``wedsync-cs monitor uplift`` (``wedsync_cs/uplift_job.py``) writes, in the folder
given as ``uplift_folder``, ``decision.json`` (per intervention type: targeting on or off, and
why) and ``scores-<day>.parquet`` (per active supplier and type: the predicted uplift, the LTV
and their product, the expected saved LTV). A worklist is for calls, so it reads the decision
of :data:`WORKLIST_INTERVENTION` (``phone_call``) only: when that type's targeting is on and
the scores of the worklist's day (the newest scored day) are there, the items are ranked by
the call's expected saved LTV, highest first (a supplier without a score after those with
one, by expected loss); otherwise by expected loss, as without uplift. The response says which
ranking it used and why (``ranking``, ``rankingReason``). No folder (a service not wired to
one), no decision yet, an unreadable decision or missing scores all fall back to risk, saying
so. Scores are files rather than a table so that no migration is needed; ``monitor uplift`` is
run after each ``score-daily`` to write the new day's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final, Literal

import pyarrow.parquet as pq
from sqlalchemy import Engine, and_, false, func, or_, select

from serving.advice import FAMILY_ACTIONS
from serving.api import schemas
from serving.db.models import (
    ChurnPrediction,
    ControlGroupMember,
    CsAgent,
    InterventionExecution,
    Supplier,
    SupportInteraction,
)
from serving.errors import NotFoundError

log = logging.getLogger(__name__)

TOP_FACTORS = 3
# Uplift targeting's files (written by wedsync_cs/uplift_job.py, read here).
UPLIFT_DECISION_FILE: Final = "decision.json"
UPLIFT_DECISION_FORMAT: Final = "wedsync-uplift-decision/1"
UPLIFT_SCORES_GLOB: Final = "scores-*.parquet"
WORKLIST_INTERVENTION: Final = "phone_call"  # a worklist is for calls
RankingName = Literal["uplift_x_ltv", "risk"]


def uplift_scores_name(day: date) -> str:
    """The scores file of one scored day, in the uplift folder."""
    return f"scores-{day.isoformat()}.parquet"


@dataclass(frozen=True)
class Ranking:
    """How a worklist is ordered: ``uplift_x_ltv`` with each supplier's expected saved LTV, or
    ``risk`` (expected loss); ``reason`` says why, for the response."""

    name: RankingName
    reason: str
    saved_ltv: Mapping[str, float] = field(default_factory=dict)


def _risk(why: str) -> Ranking:
    return Ranking("risk", f"ranked by risk (churn probability x LTV): {why}")


def read_ranking(
    folder: Path | None, day: date | None, intervention_type: str = WORKLIST_INTERVENTION
) -> Ranking:
    """The ranking the uplift decision in ``folder`` allows for ``day``'s worklist."""
    if folder is None:
        return _risk("uplift targeting is not set up for this service")
    path = Path(folder) / UPLIFT_DECISION_FILE
    if not path.is_file():
        return _risk("no uplift decision yet (`wedsync-cs monitor uplift` makes one)")
    try:
        decision = json.loads(path.read_text())
        if decision.get("format") != UPLIFT_DECISION_FORMAT:
            raise ValueError(f"format {decision.get('format')!r}")
        entry = decision["types"].get(intervention_type)
    except (OSError, ValueError, KeyError, AttributeError) as err:
        log.warning("unreadable uplift decision %s: %s", path, err)
        return _risk(f"the uplift decision cannot be read ({err})")
    if not entry:
        return _risk(f"the uplift decision has no {intervention_type} model")
    if entry.get("targeting") is not True:
        return _risk(f"{intervention_type} uplift targeting is off: {entry.get('reason')}")
    scores = None if day is None else Path(folder) / uplift_scores_name(day)
    if scores is None or not scores.is_file():
        return _risk(
            f"the {intervention_type} uplift model beats random targeting, but there are no "
            f"uplift scores of {day} (run `wedsync-cs monitor uplift` after score-daily)"
        )
    try:
        table = pq.read_table(
            scores,
            columns=["supplier_id", "expected_saved_ltv"],
            filters=[("intervention_type", "==", intervention_type)],
        )
    except (OSError, ValueError) as err:  # pyarrow's errors are OSError / ValueError kinds
        log.warning("unreadable uplift scores %s: %s", scores, err)
        return _risk(f"the uplift scores of {day} cannot be read ({err})")
    saved = {
        supplier: value
        for supplier, value in zip(
            table.column("supplier_id").to_pylist(),
            table.column("expected_saved_ltv").to_pylist(),
            strict=True,
        )
        if value is not None and value == value  # not NaN
    }
    return Ranking(
        "uplift_x_ltv",
        f"ranked by expected saved LTV ({intervention_type} uplift x LTV): {entry.get('reason')}",
        saved,
    )


def suggested_action(factors: dict[str, float], booked: tuple[datetime, str] | None) -> str:
    """The booked call when there is one, else what addresses the strongest factor."""
    if booked is not None:
        at, kind = booked
        return f"{kind.replace('_', ' ')} booked for {at:%Y-%m-%d %H:%M} UTC"
    pushing = [f for f, v in sorted(factors.items(), key=lambda kv: -kv[1]) if v > 0]
    for family in pushing:
        if family in FAMILY_ACTIONS:
            return FAMILY_ACTIONS[family]
    return FAMILY_ACTIONS["health"]


def top_factors(factors: dict[str, float]) -> dict[str, float]:
    """The families that raise the churn probability most (positive attributions only)."""
    ranked = sorted(((f, v) for f, v in factors.items() if v > 0), key=lambda kv: -kv[1])
    return {f: round(v, 4) for f, v in ranked[:TOP_FACTORS]}


class Worklists:
    """Agents' worklists over the operational database.

    Args:
        engine: the operational database.
        clock: now (tests pass a fixed one).
        uplift_folder: where ``wedsync-cs monitor uplift`` writes its decision and scores
            (``CS_HOME/models/uplift``); None ranks by risk always.
    """

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime] | None = None,
        uplift_folder: Path | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self.uplift_folder = uplift_folder

    def for_agent(self, agent_id: str, limit: int | None = None) -> schemas.WorklistResponse:
        """The agent's worklist (at most its capacity, and ``limit`` when smaller).

        Raises:
            NotFoundError: no such agent.
        """
        now = self.clock()
        P, S = ChurnPrediction, Supplier
        with self.engine.connect() as connection:
            agent = connection.execute(
                select(CsAgent.agent_id, CsAgent.capacity_per_day).where(
                    CsAgent.agent_id == agent_id
                )
            ).first()
            if agent is None:
                raise NotFoundError(f"unknown agentId {agent_id!r}")
            day = connection.scalar(select(func.max(P.day)))
            booked = {
                r.supplier_id: (r.occurred_at, r.kind)
                for r in connection.execute(
                    select(
                        SupportInteraction.supplier_id,
                        SupportInteraction.occurred_at,
                        SupportInteraction.kind,
                    )
                    .where(
                        SupportInteraction.agent_id == agent_id,
                        SupportInteraction.outcome == "scheduled",
                        SupportInteraction.occurred_at >= now - timedelta(days=1),
                    )
                    .order_by(SupportInteraction.occurred_at.desc())
                )
            }
            ranking = read_ranking(self.uplift_folder, day)
            size = min(agent.capacity_per_day, limit or agent.capacity_per_day)
            query = (
                select(
                    S.supplier_id,
                    S.business_name,
                    S.monthly_revenue,
                    P.churn_probability,
                    P.ltv_at_risk,
                    P.factors,
                    ControlGroupMember.in_control,
                )
                .join(P, and_(P.supplier_id == S.supplier_id, P.day == day))
                .outerjoin(ControlGroupMember, ControlGroupMember.supplier_id == S.supplier_id)
                .where(
                    S.status == "active",
                    or_(
                        and_(S.agent_id == agent_id, P.intervention_recommended.is_(True)),
                        S.supplier_id.in_(list(booked)) if booked else false(),
                    ),
                )
                .order_by(P.ltv_at_risk.desc(), S.supplier_id)
            )
            if ranking.name == "risk":
                rows = connection.execute(query.limit(size)).all()
            else:  # the whole book's candidates, ordered by the call's expected saved LTV
                rows = ranked_by_saved_ltv(connection.execute(query).all(), ranking)[:size]
            ids = [r.supplier_id for r in rows]
            E = InterventionExecution
            last: dict[str, schemas.LastContact] = {}
            for r in connection.execute(
                select(
                    E.supplier_id, E.scheduled_at, E.intervention_type, E.status, E.triggered_by
                )
                .where(E.supplier_id.in_(ids), E.status != "held_out", E.scheduled_at <= now)
                .order_by(E.scheduled_at)
            ):
                last[r.supplier_id] = schemas.LastContact(
                    at=r.scheduled_at,
                    intervention_type=r.intervention_type,
                    status=r.status,
                    triggered_by=r.triggered_by,
                )
        items = [
            schemas.WorklistItem(
                user_id=r.supplier_id,
                business_name=r.business_name,
                churn_probability=round(r.churn_probability, 6),
                ltv_at_risk=round(r.ltv_at_risk, 2),
                expected_loss=round(r.ltv_at_risk, 2),
                factors=top_factors(r.factors or {}),
                suggested_action=suggested_action(r.factors or {}, booked.get(r.supplier_id)),
                booked_call=booked[r.supplier_id][0] if r.supplier_id in booked else None,
                last_contact=last.get(r.supplier_id),
                control_group=bool(r.in_control),
            )
            for r in rows
        ]
        return schemas.WorklistResponse(
            agent_id=agent_id,
            capacity=agent.capacity_per_day,
            items=items,
            ranking=ranking.name,
            ranking_reason=ranking.reason,
        )


def ranked_by_saved_ltv(rows: list, ranking: Ranking) -> list:
    """``rows`` (in expected-loss order) by expected saved LTV, highest first; rows without a
    score keep their expected-loss order after those with one (a stable sort)."""
    saved = ranking.saved_ltv
    return sorted(
        rows,
        key=lambda r: (r.supplier_id not in saved, -saved.get(r.supplier_id, 0.0)),
    )
