"""The rules file and which rules are due: small inline states, one rule at a time and
together, with the per-rule and the contact-fatigue caps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from serving.due import Contact, SupplierState, due_interventions
from serving.rules import DEFAULT_RULES, RuleSet, RulesFileError, load_rules, parse_rules

NOW = datetime(2026, 12, 3, 6, tzinfo=UTC)

# a settled, healthy supplier no default rule is for
CALM = SupplierState(
    supplier_id="sup_1",
    health_score=82.0,
    health_risk="healthy",
    churn_probability=0.01,
    churn_risk="low",
    trend="stable",
    tenure_days=400,
    days_since_last_login=1,
    unresolved_payment_failure=False,
    failed_payments_30d=0,
    overdue_milestones=frozenset(),
    abandoned_features=frozenset(),
    segment="established",
    tier="professional",
    vendor_type="photographer",
)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(DEFAULT_RULES)


def _names(state: SupplierState, rules: RuleSet, history=(), now=NOW) -> list[str]:
    return [d.rule.name for d in due_interventions(state, rules, list(history), now).due]


def _only(rules: RuleSet, name: str) -> RuleSet:
    return rules.model_copy(update={"rules": tuple(r for r in rules.rules if r.name == name)})


# one state per default rule: (rule, a state it fires for, a near miss it does not)
QUIET_NEW = replace(CALM, tenure_days=10, days_since_last_login=8, segment="new_user")
CASES = [
    ("new-supplier-quiet-email", QUIET_NEW, replace(QUIET_NEW, days_since_last_login=6)),
    ("new-supplier-quiet-tour", QUIET_NEW, replace(QUIET_NEW, tenure_days=60)),
    (
        "critical-risk-call",
        replace(CALM, churn_probability=0.4, churn_risk="critical"),
        replace(CALM, churn_probability=0.2, churn_risk="high"),
    ),
    (
        "high-risk-support",
        replace(CALM, churn_risk="high", health_risk="at_risk"),
        replace(CALM, churn_risk="high", health_risk="healthy"),
    ),
    (
        "failed-payment",
        replace(CALM, unresolved_payment_failure=True, failed_payments_30d=1),
        replace(CALM, failed_payments_30d=1),  # failed, then paid
    ),
    (
        "abandoned-feature-tour",
        replace(CALM, abandoned_features=frozenset({"calendar"}), churn_risk="medium"),
        replace(CALM, abandoned_features=frozenset({"reviews"}), churn_risk="medium"),
    ),
    (
        "overdue-setup-guide",
        replace(CALM, tenure_days=20, overdue_milestones=frozenset({"first_client"})),
        replace(CALM, tenure_days=20, overdue_milestones=frozenset({"ten_clients"})),
    ),
    (
        "overdue-setup-session",
        replace(
            CALM, tenure_days=20, overdue_milestones=frozenset({"first_client"}), churn_risk="high"
        ),
        replace(CALM, tenure_days=20, overdue_milestones=frozenset({"first_client"})),
    ),
    (
        "declining-health-tips",
        replace(CALM, trend="declining", health_risk="at_risk", health_score=55),
        replace(CALM, trend="stable", health_risk="at_risk", health_score=55),
    ),
]


def test_the_default_rules_parse_and_cover_every_rule_with_a_case(rules) -> None:
    assert {name for name, _, _ in CASES} == {r.name for r in rules.rules}
    assert rules.fatigue.max_contacts == 2 and rules.fatigue.per_days == 7
    assert _names(CALM, rules) == []


@pytest.mark.parametrize(("name", "fires", "misses"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_alone_fires_on_its_state_and_not_on_a_near_miss(
    rules, name, fires, misses
) -> None:
    alone = _only(rules, name)
    assert _names(fires, alone) == [name]
    assert _names(misses, alone) == []


def test_a_delay_schedules_later_and_the_reason_names_the_rule(rules) -> None:
    tour = due_interventions(QUIET_NEW, _only(rules, "new-supplier-quiet-tour"), [], NOW).due[0]
    assert tour.scheduled_at == NOW + timedelta(days=2)
    assert tour.reason.startswith("new-supplier-quiet-tour: new supplier quiet")


def test_the_rule_cap_holds_a_rule_back_until_its_days_have_passed(rules) -> None:
    call = _only(rules, "critical-risk-call")
    state = replace(CALM, churn_probability=0.4, churn_risk="critical")
    last = [Contact(at=NOW - timedelta(days=10), rule="critical-risk-call")]
    held = due_interventions(state, call, last, NOW)
    assert held.due == () and held.capped[0].cap == "rule_cap"
    assert held.capped[0].next_allowed == (NOW + timedelta(days=4)).date()
    assert _names(state, call, last, NOW + timedelta(days=4)) == ["critical-risk-call"]
    # another rule's contact does not count toward this rule's own cap
    other = [Contact(at=NOW - timedelta(days=10), rule="failed-payment")]
    assert _names(state, call, other) == ["critical-risk-call"]


def test_the_fatigue_cap_admits_the_most_urgent_first_and_counts_manual_contacts(rules) -> None:
    # critical churn risk, a failed payment and a quiet new supplier: four rules match
    state = replace(
        QUIET_NEW,
        churn_probability=0.5,
        churn_risk="critical",
        unresolved_payment_failure=True,
        failed_payments_30d=1,
    )
    together = due_interventions(state, rules, [], NOW)
    assert [d.rule.name for d in together.due] == ["critical-risk-call", "failed-payment"]
    assert {c.rule.name for c in together.capped} == {
        "new-supplier-quiet-email",
        "new-supplier-quiet-tour",
    }
    assert {c.cap for c in together.capped} == {"fatigue_cap"}
    # one manual call three days ago leaves one slot, until it is a week old
    manual = [Contact(at=NOW - timedelta(days=3))]
    assert _names(state, rules, manual) == ["critical-risk-call"]
    capped = due_interventions(state, rules, manual, NOW).capped
    assert {c.next_allowed for c in capped} == {date(2026, 12, 7)}
    full = [Contact(at=NOW - timedelta(days=1)), Contact(at=NOW - timedelta(days=2))]
    assert _names(state, rules, full) == []
    # contacts after now (a replayed history) do not count
    assert len(_names(state, rules, [Contact(at=NOW + timedelta(hours=1))])) == 2


def test_the_audience_limits_who_a_rule_is_for(rules) -> None:
    raw = yaml.safe_load(DEFAULT_RULES.read_text())
    call = next(r for r in raw["rules"] if r["name"] == "critical-risk-call")
    call["audience"] = {"tiers": ["scale", "enterprise"], "vendor_types": ["venue"]}
    limited = _only(parse_rules(raw), "critical-risk-call")
    state = replace(CALM, churn_probability=0.4, churn_risk="critical")
    assert _names(state, limited) == []
    assert _names(replace(state, tier="scale", vendor_type="venue"), limited) == [
        "critical-risk-call"
    ]


def _broken(**change) -> dict:
    raw = yaml.safe_load(DEFAULT_RULES.read_text())
    raw["rules"][2] = {**raw["rules"][2], **change}  # critical-risk-call
    return raw


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (
            _broken(when={"churn_probability_at_least": 1.5}),
            ["rule 'critical-risk-call' (rules[2])", "when.churn_probability_at_least"],
        ),
        (
            _broken(intervention_type="sms"),
            ["rule 'critical-risk-call' (rules[2])", "intervention_type"],
        ),
        (_broken(when={"churn_risk_in": ["severe"]}), ["when.churn_risk_in"]),
        (_broken(colour="red"), ["rule 'critical-risk-call' (rules[2]): colour"]),
        (_broken(when={}), ["when", "at least one condition"]),
        (_broken(name="failed-payment"), ["'failed-payment' is used twice"]),
        (_broken(max_frequency_days=0), ["max_frequency_days"]),
    ],
    ids=["probability", "type", "level", "unknown field", "no condition", "twice", "cap"],
)
def test_a_bad_rules_file_is_refused_naming_the_rule_and_the_field(raw, words) -> None:
    with pytest.raises(RulesFileError) as error:
        parse_rules(raw, "interventions.yaml")
    for w in words:
        assert w in str(error.value)


def test_a_missing_or_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="no rules file"):
        load_rules(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(RulesFileError, match="not YAML"):
        load_rules(bad)


def test_a_manual_trigger_is_capped_by_its_type_and_automated_types_by_fatigue(rules) -> None:
    from serving.due import manual_cap

    email = Contact(at=NOW - timedelta(days=1), rule=None, intervention_type="email_sequence")
    # the same type within its manual days: refused until the day the window ends
    assert manual_cap("email_sequence", [email], rules, NOW) == ("rule_cap", date(2026, 12, 5))
    assert manual_cap("email_sequence", [email], rules, NOW + timedelta(days=2)) is None
    # any sender counts: a rule's tour two days ago holds back a tour by hand (7 days)
    tour = Contact(
        at=NOW - timedelta(days=2), rule="abandoned-feature-tour", intervention_type="feature_tour"
    )
    assert manual_cap("feature_tour", [tour], rules, NOW) == ("rule_cap", date(2026, 12, 8))
    # two contacts in 7 days: an automated type by hand is held back by the fatigue cap ...
    full = [email, tour]
    assert manual_cap("in_app_message", full, rules, NOW) == ("fatigue_cap", date(2026, 12, 8))
    # ... a call, a person's decision, is not (unless the rules file says so)
    assert manual_cap("phone_call", full, rules, NOW) is None
    strict = rules.model_copy(
        update={"manual": rules.manual.model_copy(update={"people_exceed_fatigue": False})}
    )
    assert manual_cap("phone_call", full, strict, NOW) == ("fatigue_cap", date(2026, 12, 8))
    # contacts after `now` are not history yet
    later = Contact(at=NOW + timedelta(hours=1), intervention_type="email_sequence")
    assert manual_cap("email_sequence", [later], rules, NOW) is None


def test_a_bad_manual_section_is_refused_naming_the_field(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_RULES.read_text())
    raw["manual"]["max_frequency_days"]["carrier_pigeon"] = 3
    with pytest.raises(RulesFileError, match=r"manual\.max_frequency_days\.carrier_pigeon"):
        parse_rules(raw)
