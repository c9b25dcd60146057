"""Benchmark of the intervention rules: states of every supplier scored on the newest day of
the ``score-daily`` benchmark's home (its feature rows and its stored scores), and the default
rules evaluated for each (no contact history: the first day the engine runs)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta


def evaluate(workdir: str, tag: str = "sqlite") -> dict:
    import pandas as pd
    from sqlalchemy import func, select

    from benchmarks.daily_bench import _settings
    from serving.db.models import ChurnPrediction, CustomerHealth
    from serving.db.scores import day_table
    from serving.due import due_interventions
    from serving.rules import load_rules
    from serving.states import STATE_FEATURES, supplier_states
    from wedsync_cs.database import operational_engine

    settings = _settings(workdir, None, tag)
    engine = operational_engine(settings)
    with engine.connect() as connection:
        day = connection.scalar(select(func.max(ChurnPrediction.day)))
    stamp = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    features = pd.read_parquet(
        settings.feature_table_path,
        columns=list(STATE_FEATURES),
        filters=[("event_timestamp", "==", stamp)],
    )
    health = day_table(engine, CustomerHealth, day)[
        ["supplier_id", "score", "risk_level", "trend"]
    ]
    churn = day_table(engine, ChurnPrediction, day)
    churn = churn[["supplier_id", "churn_probability", "risk_level"]]
    engine.dispose()
    scored = features.merge(
        health.rename(columns={"score": "health_score", "risk_level": "health_risk"}),
        on="supplier_id",
    ).merge(churn.rename(columns={"risk_level": "churn_risk"}), on="supplier_id")
    began = time.perf_counter()
    states = supplier_states(scored, scored, list(scored["trend"]))
    made = time.perf_counter() - began
    rules = load_rules()
    now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    began = time.perf_counter()
    evaluations = [due_interventions(s, rules, [], now) for s in states]
    evaluated = time.perf_counter() - began
    due = Counter(d.rule.name for e in evaluations for d in e.due)
    capped = Counter(c.rule.name for e in evaluations for c in e.capped)
    automated = sum(
        n for name, n in due.items() if next(r for r in rules.rules if r.name == name).automated
    )
    return {
        "day": str(day),
        "suppliers": len(states),
        "states_seconds": round(made, 2),
        "evaluate_seconds": round(evaluated, 2),
        "suppliers_with_a_due_rule": sum(bool(e.due) for e in evaluations),
        "due_by_rule": dict(due.most_common()),
        "fatigue_capped_by_rule": dict(capped.most_common()),
        "automated_share_of_due": round(automated / max(sum(due.values()), 1), 4),
    }
