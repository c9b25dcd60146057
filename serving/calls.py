"""Booking calls into CS agents' days (pure): each agent has ``capacity_per_day`` call slots
spread evenly over the business hours of Monday to Friday; a call goes to the supplier's own
agent at its first free slot, and a supplier without an agent to the agent with the most free
capacity on the first day any agent has a slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

WEEKDAYS = frozenset(range(5))  # Monday to Friday


@dataclass(frozen=True)
class Agent:
    agent_id: str
    capacity_per_day: int
    active: bool = True


@dataclass(frozen=True)
class Booking:
    agent_id: str
    at: datetime
    own_agent: bool  # the supplier's own agent (else assigned by free capacity)


@dataclass(frozen=True)
class BusinessHours:
    """Working hours in UTC, [start, end), on ``weekdays`` (0 is Monday)."""

    start_hour: int = 9
    end_hour: int = 17
    weekdays: frozenset[int] = WEEKDAYS

    def __post_init__(self) -> None:
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise ValueError(f"business hours {self.start_hour}-{self.end_hour} are not a span")


class CallBook:
    """The agents' booked slots over the coming days, and booking into them.

    Args:
        agents: every agent (inactive ones take no calls).
        booked: (agent, instant) of the calls already booked; each fills the slot it falls in
            (or, outside the hours, one slot of its day).
        horizon_days: how many days ahead a call may be booked.
    """

    def __init__(
        self,
        agents: Sequence[Agent],
        booked: Iterable[tuple[str, datetime]],
        hours: BusinessHours = BusinessHours(),
        horizon_days: int = 14,
    ) -> None:
        self.agents = {a.agent_id: a for a in agents if a.active and a.capacity_per_day > 0}
        self.hours = hours
        self.horizon_days = horizon_days
        self._taken: dict[tuple[str, date], set[int]] = defaultdict(set)
        self._count: dict[tuple[str, date], int] = defaultdict(int)
        for agent, at in booked:
            if agent in self.agents:
                self._take(agent, at.astimezone(UTC))

    def _slot_length(self, agent: str) -> timedelta:
        span = timedelta(hours=self.hours.end_hour - self.hours.start_hour)
        return span / self.agents[agent].capacity_per_day

    def _opening(self, day: date) -> datetime:
        return datetime.combine(day, time(self.hours.start_hour), tzinfo=UTC)

    def _take(self, agent: str, at: datetime) -> None:
        key = (agent, at.date())
        self._count[key] += 1
        index = (at - self._opening(at.date())) // self._slot_length(agent)
        if 0 <= index < self.agents[agent].capacity_per_day:
            self._taken[key].add(int(index))
        else:  # booked outside the hours: it still uses a slot of the day
            free = self._free_slots(agent, at.date(), None)
            if free:
                self._taken[key].add(free[0])

    def _free_slots(self, agent: str, day: date, earliest: datetime | None) -> list[int]:
        capacity = self.agents[agent].capacity_per_day
        key = (agent, day)
        if self._count[key] >= capacity:
            return []
        length = self._slot_length(agent)
        opening = self._opening(day)
        return [
            i
            for i in range(capacity)
            if i not in self._taken[key] and (earliest is None or opening + i * length >= earliest)
        ]

    def free_capacity(self, agent: str, day: date) -> int:
        """Calls ``agent`` can still take on ``day``."""
        return max(self.agents[agent].capacity_per_day - self._count[(agent, day)], 0)

    def _days(self, earliest: datetime) -> list[date]:
        first = earliest.astimezone(UTC).date()
        days = (first + timedelta(days=k) for k in range(self.horizon_days + 1))
        return [d for d in days if d.weekday() in self.hours.weekdays]

    def book(self, own_agent: str | None, earliest: datetime) -> Booking | None:
        """Book a call at or after ``earliest``: with ``own_agent`` when it is an active agent,
        else with the agent of most free capacity on the first day with a free slot. None
        when no slot is free within the horizon."""
        earliest = earliest.astimezone(UTC)
        own = own_agent if own_agent in self.agents else None
        for day in self._days(earliest):
            candidates = [own] if own else sorted(self.agents)
            options = [(a, self._free_slots(a, day, earliest)) for a in candidates]
            options = [(a, free) for a, free in options if free]
            if not options:
                continue
            # the most free capacity; among equals the first id (max keeps the first maximum)
            agent, free = max(options, key=lambda o: self.free_capacity(o[0], day))
            at = self._opening(day) + free[0] * self._slot_length(agent)
            self._taken[(agent, day)].add(free[0])
            self._count[(agent, day)] += 1
            return Booking(agent_id=agent, at=at, own_agent=own is not None)
        return None
