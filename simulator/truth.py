"""The true churn probability: the simulator's own future, rolled forward many times.

For a supplier active at ``as_of`` (a week boundary) the latent state is known exactly. We copy it
``paths`` times, roll each copy forward through the same weekly transition the simulation uses,
and average the probability of cancelling within the horizon along each path
(Rao-Blackwellised: the product of weekly survival probabilities, not a sampled cancellation).
All suppliers share the same random draws per path (common random numbers), which keeps
differences between suppliers free of Monte Carlo noise.

With the ``interventions`` option, :func:`contact_churn_probability` does the same for each
contact the policy decides: from the state at the decision (the start of the contact's week) it
rolls two copies forward on the same draws, one with the contact's lift delivered and one
without, and gives the probability of cancelling within 30 and 60 days after the send time in
each case (``p_churn_{30,60}d_{sent,withheld}`` of ``truth_intervention_contacts.parquet``).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from simulator.dynamics import (
    State,
    Static,
    WeekContext,
    draw,
    hazard_share,
    transition,
    weekly_churn_hazard,
)

CHUNK = 8192


def horizon_fractions(horizon_days: int) -> list[float]:
    """Share of each week from ``as_of`` that lies in the horizon (e.g. 30 d: 1, 1, 1, 1, 2/7)."""
    full, rest = divmod(horizon_days, 7)
    return [1.0] * full + ([rest / 7] if rest else [])


def _survival(
    state: State,
    static: Static,
    contexts: list[WeekContext],
    fractions: list[float],
    draws: list[dict[str, np.ndarray]],
) -> np.ndarray:
    """Probability of no cancellation within the horizon along each path, shape (M, n)."""
    survival: np.ndarray | float = 1.0
    for j, (ctx, frac) in enumerate(zip(contexts, fractions, strict=True)):
        share = hazard_share(ctx, frac)  # frac, unless cancellations fall on the renewal day
        survival = survival * (1.0 - share * weekly_churn_hazard(state, static, ctx))
        if j + 1 < len(fractions):
            state, _ = transition(state, static, ctx, draws[j])
    return np.broadcast_to(survival, (draws[0]["pay"].shape[0], state.engagement.shape[-1]))


def true_churn_probability(
    state: State,
    static: Static,
    contexts: list[WeekContext],
    horizon_days: int,
    rng: np.random.Generator,
    paths: int,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """P(cancel within the horizon | latent state) and its Monte Carlo standard error.

    Args:
        state, static: arrays of shape (n,) for the active suppliers.
        contexts: the calendar of each week from ``as_of`` on (one per horizon week).
    """
    fractions = horizon_fractions(horizon_days)
    draws = [draw(rng, (paths, 1)) for _ in fractions[:-1]] or [draw(rng, (paths, 1))]
    n = len(state.engagement)

    def run(lo: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.arange(lo, min(lo + CHUNK, n))
        surv = _survival(
            state.take(idx), static.take(idx), [c.take(idx) for c in contexts], fractions, draws
        )
        return 1.0 - surv.mean(axis=0), surv.std(axis=0) / np.sqrt(paths)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(run, range(0, n, CHUNK)))
    if not parts:
        return np.empty(0), np.empty(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def window_share(ctx: WeekContext, end_days: np.ndarray) -> np.ndarray:
    """Share of a week's cancellation probability that falls in its first ``end_days`` days
    (clipped to the week), per supplier.

    A cancellation is uniform over its week (share ``end / 7``); with ``cancel_at_renewal`` it
    is uniform over the renewal day (share of ``[offset, offset + 1)`` before ``end``). At whole
    days this is :func:`~simulator.dynamics.hazard_share`; here the end may fall within a day.
    """
    end = np.clip(np.asarray(end_days, np.float64), 0.0, 7.0)
    if ctx.renew_offset is None:
        return end / 7.0
    return np.clip(end - ctx.renew_offset, 0.0, 1.0)


def _contact_survival(
    state: State,
    static: Static,
    contexts: list[WeekContext],
    offset: np.ndarray,
    lift: np.ndarray,
    horizons: tuple[int, ...],
    draws: list[dict[str, np.ndarray]],
) -> dict[int, np.ndarray]:
    """Probability of no cancellation from the send time to the end of each horizon along each
    path, shape (M, n), for suppliers still there at the send time (``offset`` days into the
    week whose start ``state`` describes)."""
    # The week's cancellation was drawn before the contact: its hazard has no new lift.
    first = weekly_churn_hazard(state, static, contexts[0]).astype(np.float64)
    before = np.maximum(1.0 - window_share(contexts[0], offset) * first, 1e-12)
    assert state.lift is not None, "the state carries no lift (interventions option off?)"
    # The lift joins the state after the week's cancellation draw, before its transition (as in
    # the simulation), so it enters next week's engagement and the hazard from then on.
    state = replace(state, lift=state.lift + lift.astype(np.float32))
    survival = {h: np.ones((draws[0]["pay"].shape[0], len(offset))) for h in horizons}
    hazard = first
    for j, ctx in enumerate(contexts):
        if j > 0:
            hazard = weekly_churn_hazard(state, static, ctx).astype(np.float64)
        for h in horizons:
            survival[h] = survival[h] * (1.0 - window_share(ctx, offset + h - 7 * j) * hazard)
        if j + 1 < len(contexts):
            state, _ = transition(state, static, ctx, draws[j])
    return {h: s / before for h, s in survival.items()}


def contact_churn_probability(
    state: State,
    static: Static,
    contexts: list[WeekContext],
    offset_days: np.ndarray,
    lift: np.ndarray,
    horizons: tuple[int, ...],
    rng: np.random.Generator,
    paths: int,
    threads: int = 1,
) -> np.ndarray:
    """P(cancel within each horizon after a contact's send time | the latent state at the
    decision, still there at the send time), if the contact is delivered and if it is not,
    with no other contact in either case.

    The two differ only in the contact's ``lift``, which joins the state after the decision
    week's cancellation draw, as in the simulation; they share every random draw (common random
    numbers), so their difference carries little Monte Carlo noise. The window is
    ``(sent_at, sent_at + horizon]``, with ``sent_at`` the week's start plus ``offset_days``:
    the roll-forward starts at the week's start, conditions on no cancellation before the send
    time and ends the horizon's last week part-way, both at the cancellation's exact share
    (:func:`window_share`).

    Args:
        state, static: arrays of shape (n,), one per contact, the state at its week's start
            (carrying the lift of earlier contacts).
        contexts: the calendar of each week from the contact's week on; enough weeks to cover
            ``offset_days + max(horizons)``.
        offset_days: (n,) days from the week's start to the send time.
        lift: (n,) the contact's lift (its type's effect for the supplier; 0: no response).

    Returns:
        Shape (len(horizons), 2, n): ``[i, 0]`` delivered, ``[i, 1]`` withheld, for
        ``horizons[i]``.
    """
    n = len(offset_days)
    if n == 0:
        return np.empty((len(horizons), 2, 0))
    weeks = math.ceil((max(horizons) + float(np.max(offset_days))) / 7)
    if len(contexts) < weeks:
        raise ValueError(f"{weeks} weeks of calendar needed, {len(contexts)} given")
    draws = [draw(rng, (paths, 1)) for _ in range(weeks - 1)] or [draw(rng, (paths, 1))]
    offset = np.asarray(offset_days, np.float64)
    chunk = CHUNK // 2  # each contact twice: withheld, then delivered

    def run(lo: int) -> np.ndarray:
        idx = np.arange(lo, min(lo + chunk, n))
        lifted = idx[lift[idx] != 0]  # without a lift, delivered is withheld: rolled once
        rows = np.concatenate([idx, lifted])
        survival = _contact_survival(
            state.take(rows),
            static.take(rows),
            [c.take(rows) for c in contexts[:weeks]],
            offset[rows],
            np.concatenate([np.zeros(len(idx)), lift[lifted]]),
            horizons,
            draws,
        )
        withheld = np.stack([1.0 - survival[h][:, : len(idx)].mean(axis=0) for h in horizons])
        sent = withheld.copy()
        sent[:, lift[idx] != 0] = [1.0 - survival[h][:, len(idx) :].mean(axis=0) for h in horizons]
        return np.stack([sent, withheld], axis=1)  # (H, 2, m)

    if n <= chunk:  # a week's contacts are usually one chunk: no threads to start
        return run(0)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        parts = list(pool.map(run, range(0, n, chunk)))
    return np.concatenate(parts, axis=2)
