"""The intervention templates: every rule's template exists for its channel and renders what we
know of the supplier; the HTML escapes what it inserts; a broken template is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.messages import (
    MANUAL_TEMPLATES,
    MessageContext,
    TemplateError,
    and_join,
    check_templates,
    render,
)
from serving.rules import CHANNELS, load_rules

FLORIST = MessageContext(
    execution_id="e-1",
    supplier_id="sup_1",
    first_name="Ann",
    business_name="Bloom & <Co>",
    vendor_type="florist",
    recent_features=("calendar", "form_builder"),
    abandoned_features=("payments",),
    weakest_factor="billing_health",
    health_score=41.2,
    churn_probability=0.83,
    reason="critical-risk-call: critical churn risk",
)


def test_every_rule_and_manual_type_has_a_template_with_its_channels_blocks() -> None:
    rules = load_rules()
    wanted = [(r.name, CHANNELS[r.intervention_type], r.template) for r in rules.rules]
    wanted += [(f"manual {t}", CHANNELS[t], name) for t, name in MANUAL_TEMPLATES.items()]
    assert check_templates(wanted) == []


def test_an_email_is_personalised_in_text_and_escaped_in_html() -> None:
    email = render("setup-guide", "email", FLORIST)
    assert email.subject == "Ann, one step left to finish setting up WedSync"
    assert "Hi Ann," in email.text and "Bloom & <Co>" in email.text and "florists" in email.text
    assert "your billing details" in email.text  # the weakest factor, in the supplier's words
    assert email.html is not None
    assert "Bloom &amp; &lt;Co&gt;" in email.html and "<Co>" not in email.html
    nameless = render("setup-guide", "email", MessageContext(execution_id="e", supplier_id="s"))
    assert nameless.subject == "One step left to finish setting up WedSync"
    assert "Hi there," in nameless.text and "wedding suppliers" in nameless.text


def test_a_tour_and_a_call_brief_say_what_the_supplier_uses_and_dropped() -> None:
    tour = render("feature-comeback", "in_app", FLORIST)
    assert tour.subject == "What's new in payments" and "You used payments before" in tour.text
    brief = render("call-brief", "call", FLORIST)
    assert "Churn probability 83 % within 30 days." in brief.text
    assert "Uses: the calendar and the form builder." in brief.text
    assert "Stopped using: payments." in brief.text
    assert "billing health" in brief.text  # the agents' name of the factor


def test_a_manual_email_carries_the_customisation() -> None:
    context = FLORIST.model_copy(
        update={"message": "We miss you!", "special_offers": ("one month free",)}
    )
    email = render("manual-email", "email", context)
    assert "We miss you!" in email.text and "- one month free" in email.text


def test_a_missing_or_incomplete_template_is_named(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no template 'nope'"):
        render("nope", "email", FLORIST)
    (tmp_path / "half.j2").write_text("{% block subject %}Hi{% endblock %}")
    problems = check_templates([("rule-x", "email", "half")], tmp_path)
    assert len(problems) == 1 and problems[0].startswith("rule-x: ")
    assert "'text'" in problems[0] and "'html'" in problems[0]


def test_and_join() -> None:
    assert [and_join(x) for x in (["a"], ["a", "b"], ["a", "b", "c"])] == [
        "a",
        "a and b",
        "a, b and c",
    ]
