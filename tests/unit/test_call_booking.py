"""Booking calls into agents' days: own agent first, inside business hours on weekdays, within
daily capacity; no agent -> the agent with the most free capacity; nothing free -> None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from serving.calls import Agent, BusinessHours, CallBook

THURSDAY = datetime(2026, 12, 3, 15, 10, tzinfo=UTC)
HOURS = BusinessHours(9, 17)


def test_a_call_goes_to_the_own_agents_first_free_slot_after_the_earliest_instant() -> None:
    book = CallBook([Agent("a1", 8), Agent("a2", 8)], [], HOURS)
    booking = book.book("a1", THURSDAY)  # 8 slots of one hour: 15:00 has begun, so 16:00
    assert booking is not None and booking.agent_id == "a1" and booking.own_agent
    assert booking.at == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    after = book.book("a1", THURSDAY)  # the day is full after 16:00: Friday 09:00
    assert after is not None and after.at == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def test_weekends_are_skipped_and_capacity_is_kept() -> None:
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    book = CallBook([Agent("a1", 2)], [], HOURS)
    slots = [book.book("a1", friday_evening) for _ in range(5)]
    assert all(s is not None for s in slots)
    days = [s.at.date() for s in slots]
    assert days[:2] == [datetime(2026, 12, 7).date()] * 2  # Monday, twice (capacity 2)
    assert days[2:4] == [datetime(2026, 12, 8).date()] * 2
    assert all(9 <= s.at.hour < 17 and s.at.weekday() < 5 for s in slots)


def test_without_an_agent_the_one_with_most_free_capacity_takes_it() -> None:
    monday = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    booked = [("a1", monday.replace(hour=9))] * 1 + [("a2", monday.replace(hour=10))] * 3
    book = CallBook([Agent("a1", 4), Agent("a2", 8), Agent("gone", 20, active=False)], booked)
    booking = book.book(None, monday)
    assert booking is not None and booking.agent_id == "a2" and not booking.own_agent
    assert book.free_capacity("a2", monday.date()) == 4  # 8 - 3 booked - this one
    # an inactive own agent: assigned by capacity instead
    assert book.book("gone", monday).agent_id in {"a1", "a2"}


def test_booked_calls_fill_their_slots_and_nothing_free_is_none() -> None:
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    booked = [("a1", monday + timedelta(hours=h)) for h in range(8)]
    book = CallBook([Agent("a1", 8)], booked, HOURS, horizon_days=0)
    assert book.book("a1", monday) is None
    wider = CallBook([Agent("a1", 8)], booked, HOURS, horizon_days=1)
    assert wider.book("a1", monday).at == monday + timedelta(days=1)
    assert CallBook([], [], HOURS).book(None, monday) is None
