"""The truth estimator (common random numbers, Rao-Blackwellised survival) against a plain Monte
Carlo with independent draws and sampled cancellations, from the same latent states."""

from __future__ import annotations

import numpy as np

from simulator.dynamics import (
    Static,
    WeekContext,
    draw,
    initial_state,
    transition,
    weekly_churn_hazard,
)
from simulator.population import draw_population
from simulator.truth import horizon_fractions, true_churn_probability


def _context(n: int, week: int, rng: np.random.Generator) -> WeekContext:
    return WeekContext(
        season=np.full(n, 0.3 + 0.05 * week, np.float32),
        tenure_weeks=np.full(n, 10 + week, np.int32),
        bills=rng.random(n) < 0.25,
        card_expires=rng.random(n) < 0.02,
    )


def test_horizon_fractions() -> None:
    assert horizon_fractions(30) == [1, 1, 1, 1, 2 / 7]
    assert horizon_fractions(14) == [1, 1]


def test_estimator_matches_plain_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    n = 60
    pop = draw_population(n, 400, rng)
    static = Static.of(pop)
    state = initial_state(pop)
    for week in range(12):  # diverse latent states, some disengaging or overdue
        state, _ = transition(state, static, _context(n, week, rng), draw(rng, (n,)))
    contexts = [_context(n, 12 + j, np.random.default_rng(j)) for j in range(5)]

    p, se = true_churn_probability(
        state, static, contexts, 30, np.random.default_rng(9), paths=512, threads=2
    )

    # Plain Monte Carlo: independent draws per path and supplier, cancellations sampled.
    paths = 6000
    s = state.take(np.repeat(np.arange(n), paths))
    st = static.take(np.repeat(np.arange(n), paths))
    ctx = [c.take(np.repeat(np.arange(n), paths)) for c in contexts]
    sim_rng = np.random.default_rng(10)
    churned = np.zeros(n * paths, bool)
    for j, frac in enumerate(horizon_fractions(30)):
        h = weekly_churn_hazard(s, st, ctx[j])
        churned |= sim_rng.random(n * paths) < h * frac
        s, _ = transition(s, st, ctx[j], draw(sim_rng, (n * paths,)))
    naive = churned.reshape(n, paths).mean(axis=1)
    naive_se = np.sqrt(naive * (1 - naive) / paths)

    assert p.shape == (n,) and np.all((p >= 0) & (p <= 1)) and np.all(se >= 0)
    assert p.std() > 0.01  # the states differ, so do their probabilities
    tolerance = 4 * np.sqrt(naive_se**2 + se**2) + 2e-3
    assert np.all(np.abs(p - naive) < tolerance), np.c_[p, naive, tolerance]
