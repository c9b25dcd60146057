"""Where a supplier stands in onboarding: current step, blockers, expected completion."""

from __future__ import annotations

from datetime import date, timedelta

from serving.onboarding import STEPS, progress

SIGNUP = date(2025, 3, 1)


def test_steps_are_in_due_order() -> None:
    assert STEPS[0] == "account_setup" and STEPS[-1] == "ten_clients" and len(STEPS) == 6


def test_a_new_supplier_on_schedule_has_no_blockers() -> None:
    p = progress("s1", SIGNUP, {"account_setup": SIGNUP}, SIGNUP + timedelta(days=3))
    assert p.current_step == "first_client" and p.milestones_completed == 1
    assert p.blockers == [] and p.days_in_onboarding == 3
    assert p.expected_completion_date == SIGNUP + timedelta(days=60)
    assert p.next_actions and "client" in p.next_actions[0]


def test_overdue_milestones_are_blockers_with_how_late_and_shift_the_expected_date() -> None:
    today = SIGNUP + timedelta(days=20)
    p = progress("s1", SIGNUP, {"account_setup": SIGNUP}, today)
    assert [b.milestone for b in p.blockers] == ["first_client", "first_form"]
    assert [b.days_late for b in p.blockers] == [13, 6]
    # the remaining schedule (first_client due day 7 .. ten_clients day 60) restarts today
    assert p.expected_completion_date == today + timedelta(days=60 - 7)
    assert any("onboarding call" in a for a in p.next_actions)


def test_a_supplier_with_every_milestone_is_completed() -> None:
    reached = {m: SIGNUP + timedelta(days=i) for i, m in enumerate(STEPS)}
    p = progress("s1", SIGNUP, reached, SIGNUP + timedelta(days=200))
    assert p.current_step == "completed" and p.milestones_completed == p.total_milestones == 6
    assert p.expected_completion_date == SIGNUP + timedelta(days=5)
    assert p.days_in_onboarding == 5 and p.blockers == [] and p.next_actions == []
