"""What an intervention says: Jinja2 templates (``serving/templates``) rendered with what we
know of the supplier (pure: the dispatcher reads the context and sends what this renders).

One file per template, with blocks: an email has ``subject``, ``text`` and ``html``; an in-app
message or feature tour, and an agent's call brief, have ``title`` and ``text``. The HTML block
escapes what it inserts; the others are plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from serving.advice import FACTOR_ADVICE

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"
Channel = Literal["email", "in_app", "call"]
# The blocks each channel's template must have.
BLOCKS: Final[dict[Channel, tuple[str, ...]]] = {
    "email": ("subject", "text", "html"),
    "in_app": ("title", "text"),
    "call": ("title", "text"),
}
# The template of a manual trigger, by intervention type.
MANUAL_TEMPLATES: Final[dict[str, str]] = {
    "email_sequence": "manual-email",
    "in_app_message": "manual-in-app",
    "feature_tour": "manual-tour",
    "phone_call": "manual-call",
    "personalized_support": "manual-call",
}
FEATURE_LABELS: Final[dict[str, str]] = {
    "client_management": "client management",
    "form_builder": "the form builder",
    "journey_automation": "journey automation",
    "analytics": "analytics",
    "document_library": "the document library",
    "payments": "payments",
    "calendar": "the calendar",
    "reviews": "reviews",
}
VENDOR_LABELS: Final[dict[str, str]] = {
    "photographer": "photographer",
    "videographer": "videographer",
    "venue": "venue",
    "florist": "florist",
    "caterer": "caterer",
    "planner": "wedding planner",
    "dj_band": "DJ or band",
    "baker": "cake maker",
    "hair_makeup": "hair and make-up artist",
    "stationer": "stationer",
    "other": "wedding supplier",
}
# What a supplier can do about each weak health factor, in the supplier's words (the agents'
# advice is serving.advice.FACTOR_ADVICE).
SUPPLIER_TIPS: Final[dict[str, str]] = {
    "login_frequency": "A quick look once a week keeps your couples' questions from piling up: "
    "the dashboard shows what changed since your last visit.",
    "feature_adoption": "Forms and journeys do the chasing for you: set one up once and every "
    "new couple gets it automatically.",
    "client_engagement": "Invite your booked couples to their client portal; couples who can see "
    "their timeline answer forms days sooner.",
    "support_health": "You have support questions open with us; reply on the ticket or to this "
    "email and we will close them together.",
    "billing_health": "There is a problem with your billing details; updating them keeps your "
    "account running without interruption.",
    "onboarding_progress": "A few setup steps are still open; finishing them takes about ten "
    "minutes and unlocks the automations.",
}
FACTOR_LABELS: Final[dict[str, str]] = {
    "login_frequency": "logging in",
    "feature_adoption": "using the core features",
    "client_engagement": "your clients' activity",
    "support_health": "open support questions",
    "billing_health": "your billing details",
    "onboarding_progress": "getting set up",
}


class TemplateError(ValueError):
    """A template is missing, lacks a block its channel needs, or does not render."""


class MessageContext(BaseModel):
    """What a template may say about the supplier and why it is contacted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    execution_id: str
    supplier_id: str
    first_name: str | None = None
    business_name: str | None = None
    vendor_type: str | None = None
    recent_features: tuple[str, ...] = ()  # core features in use (adopting, power user)
    abandoned_features: tuple[str, ...] = ()  # core features they stopped using
    weakest_factor: str | None = None  # the lowest health factor of the day
    health_score: float | None = None
    churn_probability: float | None = None
    reason: str = ""
    message: str | None = None  # a manual trigger's customisation
    timeline: str | None = None
    special_offers: tuple[str, ...] = ()
    app_url: str = Field(default="https://app.wedsync.example")

    def variables(self) -> dict[str, object]:
        """The template's variables: the fields, plus labels in a supplier's words."""
        weak = self.weakest_factor
        advice = FACTOR_ADVICE.get(weak) if weak else None
        return {
            **self.model_dump(),
            "greeting_name": self.first_name or self.business_name or "there",
            "vendor_label": VENDOR_LABELS.get(self.vendor_type or "", "wedding supplier"),
            "recent_labels": [FEATURE_LABELS.get(f, f) for f in self.recent_features],
            "abandoned_labels": [FEATURE_LABELS.get(f, f) for f in self.abandoned_features],
            "weakest_label": FACTOR_LABELS.get(weak) if weak else None,  # for suppliers
            "weakest_name": weak.replace("_", " ") if weak else None,  # for agents
            "weakest_advice": advice.description if advice else None,  # for agents
            "weakest_tip": SUPPLIER_TIPS.get(weak) if weak else None,  # for suppliers
        }


@dataclass(frozen=True)
class Rendered:
    """A rendered template: ``subject`` (an email's subject, or a title) and its bodies."""

    subject: str
    text: str
    html: str | None = None


def and_join(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@lru_cache(maxsize=4)
def _environment(folder: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=False,  # the html blocks escape themselves ({% autoescape true %})
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["and_join"] = lambda items: and_join(items) if items else ""
    return environment


def _template(name: str, channel: Channel, folder: Path) -> jinja2.Template:
    try:
        template = _environment(folder).get_template(f"{name}.j2")
    except jinja2.TemplateNotFound:
        raise TemplateError(f"no template {name!r} ({folder / (name + '.j2')})") from None
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"template {name!r} line {error.lineno}: {error.message}") from None
    lacking = [b for b in BLOCKS[channel] if b not in template.blocks]
    if lacking:
        raise TemplateError(f"template {name!r} has no block {lacking} (a {channel} needs them)")
    return template


def check_templates(
    wanted: Sequence[tuple[str, Channel, str]], folder: Path = TEMPLATES
) -> list[str]:
    """The problems of the templates ``wanted`` (who wants it, its channel, its name): each
    exists and has its channel's blocks. Empty when all are fine."""
    problems = []
    for who, channel, name in wanted:
        try:
            _template(name, channel, folder)
        except TemplateError as error:
            problems.append(f"{who}: {error}")
    return problems


def render(
    name: str, channel: Channel, context: MessageContext, folder: Path = TEMPLATES
) -> Rendered:
    """Render template ``name`` for ``channel``.

    Raises:
        TemplateError: the template is missing, lacks a block, or uses what the context lacks.
    """
    template = _template(name, channel, folder)
    variables = context.variables()
    blocks = {}
    try:
        for block in BLOCKS[channel]:
            out = "".join(template.blocks[block](template.new_context(variables)))
            blocks[block] = out.strip() + ("\n" if block != "subject" and block != "title" else "")
    except jinja2.TemplateError as error:
        raise TemplateError(f"template {name!r} does not render: {error}") from None
    head = blocks.get("subject", blocks.get("title", ""))
    return Rendered(subject=" ".join(head.split()), text=blocks["text"], html=blocks.get("html"))
