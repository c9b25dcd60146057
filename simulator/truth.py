"""The true churn probability: the simulator's own future, rolled forward many times.

For a supplier active at ``as_of`` (a week boundary) the latent state is known exactly. We copy it
``paths`` times, roll each copy forward through the same weekly transition the simulation uses,
and average the probability of cancelling within the horizon along each path
(Rao-Blackwellised: the product of weekly survival probabilities, not a sampled cancellation).
All suppliers share the same random draws per path (common random numbers), which keeps
differences between suppliers free of Monte Carlo noise.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

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
