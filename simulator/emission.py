"""Observable rows of one simulated week, drawn from the latent state and the week's events.

Every row lies in the supplier's presence window of the week: from signup (or the week's start)
to cancellation (or the week's end). Times are float days since the start of the data; ids are
supplier row numbers, turned into strings when written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract import CORE_FEATURES
from simulator.dynamics import Events, State, WeekContext, sigmoid
from simulator.population import TIER_PRICE, Population

# Monday..Sunday; the weekday of the data's first day shifts it.
WEEKDAY_FACTOR = np.array([1.15, 1.15, 1.1, 1.05, 0.95, 0.75, 0.85], dtype=np.float32)
PLAIN_MILESTONES = np.array(["account_setup", "first_form", "first_journey", "first_automation"])
CANCEL_REASONS = np.array(
    ["not_using", "too_expensive", "switched_competitor", "business_closed", "payment_failed"]
)

# Option ``feature_effects``: in the disengaging regime suppliers export their files and check
# what the tool brought them, so these features are used more as everything else fades.
EXIT_FEATURES = np.array(
    [CORE_FEATURES.index("document_library"), CORE_FEATURES.index("analytics")]
)
EXIT_FEATURE_LOGIT = 1.5

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Window:
    """Where in the week each supplier can act: [start, end) in float days."""

    start: np.ndarray
    end: np.ndarray

    def uniform(self, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.start[idx] + rng.random(len(idx)) * (self.end[idx] - self.start[idx])


def _activity(
    week_start: int,
    weekday0: int,
    pop: Population,
    s: State,
    ctx: WeekContext,
    win: Window,
    rng: np.random.Generator,
    feature_effects: bool = False,
) -> tuple[Columns, Columns]:
    """Daily logins and feature use of suppliers present on each day of the week."""
    idx = np.flatnonzero(win.end > win.start)
    days = week_start + np.arange(7)
    # Present on a day that overlaps the window: from the signup day to the cancellation day.
    present = (np.floor(win.start[idx])[:, None] <= days) & (days < win.end[idx][:, None])
    weekday = WEEKDAY_FACTOR[(weekday0 + days) % 7]
    lam = (
        2.5 * np.exp(s.engagement[idx])[:, None] * weekday * (0.5 + 0.9 * ctx.season[idx])[:, None]
    )
    logins = rng.poisson(np.where(present, lam, 0.0))
    signup_today = days == pop.signup_day[idx][:, None]
    logins = np.where(signup_today & present, np.maximum(logins, 1), logins)
    r, d = np.nonzero(logins)
    sup = idx[r]
    n_log = logins[r, d]
    minutes = np.round(rng.gamma(2.0, 6.0, len(sup)) * n_log * np.exp(0.15 * s.engagement[sup]), 1)
    activity = {"supplier": sup, "day": days[d], "logins": n_log, "session_minutes": minutes}
    # Feature use on active days: each adopted feature with its own propensity.
    slots = np.arange(8)
    adopted = slots < s.features[sup][:, None]
    feature = pop.feature_order[sup]
    logit = (
        -2.4
        + 0.8 * s.engagement[sup][:, None]
        + np.take_along_axis(pop.feature_affinity[sup], feature.astype(np.int64), 1)
    )
    if feature_effects:
        leaving = (s.leaving[sup] > 0)[:, None]
        logit = logit + EXIT_FEATURE_LOGIT * (leaving & np.isin(feature, EXIT_FEATURES))
    p = sigmoid(logit)
    used = adopted & (rng.random(adopted.shape) < p)
    rr, kk = np.nonzero(used)
    uses = 1 + rng.poisson(1.2 * np.exp(0.4 * s.engagement[sup[rr]]))
    usage = {"supplier": sup[rr], "day": days[d[rr]], "feature": feature[rr, kk], "uses": uses}
    return activity, usage


def _clients(
    week: int, s: State, ctx: WeekContext, ev: Events, win: Window, rng: np.random.Generator
) -> tuple[Columns, Columns]:
    """Client-book rows on the day new clients arrive (or a monthly recount), and the client
    milestones they complete."""
    alive = win.end > win.start
    recount = (week % 4 == 0) & (s.clients > 0)
    idx = np.flatnonzero(alive & ((ev.new_clients > 0) | recount))
    when = win.uniform(idx, rng)
    total = (s.clients[idx] + ev.new_clients[idx]).astype(np.int64)
    ratio = np.clip(0.2 + 0.45 * ctx.season[idx] + 0.1 * s.engagement[idx], 0.05, 0.95)
    active = rng.binomial(total, ratio)
    rows = {
        "supplier": idx,
        "day": np.floor(when).astype(np.int64),
        "total_clients": total,
        "active_clients_30d": active,
    }
    before = s.clients[idx]
    first = (before < 1) & (total >= 1)
    tenth = (before < 10) & (total >= 10)
    ms = {
        "supplier": np.concatenate([idx[first], idx[tenth]]),
        "type": np.concatenate(
            [np.full(first.sum(), "first_client"), np.full(tenth.sum(), "ten_clients")]
        ),
        "time": np.concatenate([when[first], when[tenth]]),
    }
    return rows, ms


def _tickets(
    s: State, ev: Events, ctx: WeekContext, win: Window, end_day: float, rng: np.random.Generator
) -> Columns:
    idx = np.flatnonzero(ev.ticket & (win.end > win.start))
    created = win.uniform(idx, rng)
    bad = ev.bad_experience[idx]
    n = len(idx)
    category = np.where(
        (ctx.tenure_weeks[idx] < 8) & (rng.random(n) < 0.6),
        "onboarding",
        np.where(
            (s.past_due[idx] > 0) & (rng.random(n) < 0.6),
            "billing",
            np.where(
                bad & (rng.random(n) < 0.4),
                "complaint",
                rng.choice(["technical", "feature_request", "billing"], n, p=[0.6, 0.25, 0.15]),
            ),
        ),
    )
    rating = np.where(bad, rng.integers(1, 3, n), rng.choice([3, 4, 5], n, p=[0.2, 0.4, 0.4]))
    rated = rng.random(n) < 0.65
    resolved = created + rng.lognormal(np.log(20 / 24), 1.0, n)
    resolved_ok = (resolved < end_day) & (rng.random(n) > 0.02)
    return {
        "supplier": idx,
        "created": created,
        "resolved": resolved,
        "resolved_ok": resolved_ok,
        "category": category,
        "rating": rating,
        "rated": rated,
        "bad": bad,
    }


def _billing(
    week_start: int,
    pop: Population,
    s: State,
    nxt: State,
    ev: Events,
    ctx: WeekContext,
    bill_day: np.ndarray,
    win: Window,
    tickets: Columns,
    rng: np.random.Generator,
) -> Columns:
    parts: list[tuple[np.ndarray, np.ndarray, str, np.ndarray]] = []
    price = TIER_PRICE[s.tier]
    payment = price * pop.payment_months  # a yearly plan pays ten months at once
    alive = win.end > win.start
    # Payments due on the billing day; retries of overdue payments any time in the week.
    due = ctx.bills & (s.past_due == 0)
    for mask, kind in ((ev.paid, "payment_succeeded"), (ev.payment_failed, "payment_failed")):
        i = np.flatnonzero(mask & alive)
        t = np.where(due[i], bill_day[i] + 0.3 + 0.3 * rng.random(len(i)), win.uniform(i, rng))
        # a yearly plan's payment at signup is taken once the account exists (a monthly one
        # stamped before a later signup hour is not written, as before: the default is kept)
        yearly = pop.cycle_days[i] > 31
        t = np.where(yearly & due[i], np.maximum(t, win.start[i] + 0.01), t)
        parts.append((i, t, kind, payment[i]))
    expiring = pop.card_expiry_day - 30
    i = np.flatnonzero(alive & (expiring >= week_start) & (expiring < week_start + 7))
    parts.append(
        (i, expiring[i] + 0.1 + 0.2 * rng.random(len(i)), "card_expiring", np.zeros(len(i)))
    )
    for change, kind in ((1, "plan_upgraded"), (-1, "plan_downgraded")):
        i = np.flatnonzero(alive & (ev.tier_change == change))
        parts.append((i, win.uniform(i, rng), kind, TIER_PRICE[nxt.tier[i]]))
    # Some complaints end in a partial refund a day later.
    complaint = np.flatnonzero(
        (tickets["category"] == "complaint") & (rng.random(len(tickets["category"])) < 0.3)
    )
    i = tickets["supplier"][complaint]
    parts.append((i, tickets["created"][complaint] + 1.0, "refund", 0.5 * price[i]))
    sup = np.concatenate([p[0] for p in parts])
    time = np.concatenate([p[1] for p in parts])
    keep = (time >= win.start[sup]) & (time < win.end[sup])
    return {
        "supplier": sup[keep],
        "time": time[keep],
        "type": np.concatenate([np.full(len(p[0]), p[2]) for p in parts])[keep],
        "amount": np.concatenate([p[3] for p in parts]).astype(np.float64)[keep],
    }


def emit_week(
    week: int,
    weekday0: int,
    end_day: float,
    pop: Population,
    s: State,
    nxt: State,
    ev: Events,
    ctx: WeekContext,
    bill_day: np.ndarray,
    win: Window,
    rng: np.random.Generator,
    *,
    feature_effects: bool = False,
) -> dict[str, Columns]:
    """All observable rows of one week (the state ``s`` at its start, ``nxt`` at its end).

    ``feature_effects``: disengaging suppliers use the exit features more (EXIT_FEATURES).
    """
    week_start = 7 * week
    activity, usage = _activity(week_start, weekday0, pop, s, ctx, win, rng, feature_effects)
    clients, client_ms = _clients(week, s, ctx, ev, win, rng)
    tickets = _tickets(s, ev, ctx, win, end_day, rng)
    billing = _billing(week_start, pop, s, nxt, ev, ctx, bill_day, win, tickets, rng)
    plain = np.flatnonzero(ev.new_milestone & (win.end > win.start))
    milestones = {
        "supplier": np.concatenate([plain, client_ms["supplier"]]),
        "type": np.concatenate([PLAIN_MILESTONES[s.milestones[plain]], client_ms["type"]]),
        "time": np.concatenate([win.uniform(plain, rng), client_ms["time"]]),
    }
    return {
        "activity_daily": activity,
        "feature_usage_daily": usage,
        "clients_daily": clients,
        "support_tickets": tickets,
        "billing_events": billing,
        "milestones": milestones,
    }


def cancel_reason(
    s: State, pop_price_sensitivity: np.ndarray, idx: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A stated reason for each cancellation (some are left blank)."""
    n = len(idx)
    voluntary = np.where(
        pop_price_sensitivity[idx] * rng.random(n) > 0.45,
        "too_expensive",
        rng.choice(["not_using", "switched_competitor", "business_closed"], n, p=[0.5, 0.3, 0.2]),
    )
    reason = np.where(s.past_due[idx] >= 2, "payment_failed", voluntary).astype(object)
    reason[rng.random(n) < 0.2] = None
    return reason
