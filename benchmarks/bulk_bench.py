"""Benchmark of bulk outreach's dry run: every supplier of the ``score-daily`` benchmark's
database counted (who would be contacted, who is left out and why), as the API route runs it.
"""

from __future__ import annotations

import time


def dry_runs(workdir: str, tag: str = "sqlite") -> dict:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from benchmarks.daily_bench import _settings
    from serving.api.schemas import BulkInterventionRequest
    from serving.bulk import BulkOutreach
    from serving.db.models import ChurnPrediction
    from serving.rules import load_rules
    from wedsync_cs.database import operational_engine

    settings = _settings(workdir, None, tag)
    engine = operational_engine(settings)
    with engine.connect() as connection:
        day = connection.scalar(select(func.max(ChurnPrediction.day)))
    # as of the end of the scored day, so that the day's and the day before's executions are
    # the contact history the caps look at (the simulated days are in the past)
    now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    outreach = BulkOutreach(
        engine,
        load_rules(settings.rules_path),
        settings.control_salt,
        settings.control_share,
        clock=lambda: now,
    )
    out: dict = {"as_of": now.isoformat()}
    filters = {
        "all_suppliers": {},
        "high_and_critical": {"riskLevel": ["high", "critical"]},
        "professional_photographers": {"tier": ["professional"], "vendorType": ["photographer"]},
    }
    for name, chosen in filters.items():
        request = BulkInterventionRequest.model_validate(
            {
                "filter": chosen,
                "interventionType": "email_sequence",
                "reason": "benchmark",
                "priority": "low",
                "dryRun": True,
            }
        )
        times = []
        for _ in range(3):  # the first pays for the connection's and the caches' warm-up
            began = time.perf_counter()
            status, body = outreach.run(request)
            times.append(time.perf_counter() - began)
        assert status == 200
        out[name] = {
            "seconds": round(max(times), 3),  # the slowest of three: cold included
            "seconds_each": [round(t, 3) for t in times],
            "matched": body["matched"],
            "to_contact": body["toContact"],
            "excluded": body["excluded"],
        }
    engine.dispose()
    return out
