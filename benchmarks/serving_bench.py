"""Benchmarks of the service under load: ``wedsync-cs serve`` with its workers on loopback, a
bounded load generator (a fixed number of clients, each sending its next request when the last
answered), latencies per route, and beside them, in the same run, a bare online-store read of
the same suppliers (the floor). Then the service's memory after many requests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path

import numpy as np

HOME = "serve_home"


def prepare(workdir: str, suppliers: int, days: int, trials: int, seed: int = 2027) -> dict:
    """A served home: a simulated export, models trained through the CLI, the database
    migrated and the newest day scored."""
    from typer.testing import CliRunner

    from simulator import SimulationConfig, simulate
    from wedsync_cs.cli import app
    from wedsync_cs.settings import get_settings

    root = Path(workdir)
    simulate(SimulationConfig(suppliers=suppliers, days=days, seed=seed), root / "serve_sim")
    os.environ["CS_HOME"] = str(root / HOME)
    os.environ.pop("CS_MLFLOW_TRACKING_URI", None)
    os.environ.pop("CS_DATABASE_URL", None)
    raw = str(root / "serve_sim" / "raw")
    for args in (
        ["train", "--raw", raw, "--trials", str(trials), "--time-budget", "300"],
        ["db", "upgrade"],
        ["score-daily", "--raw", raw],
    ):
        get_settings.cache_clear()
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        if result.exit_code:
            raise RuntimeError(f"{args[0]} failed:\n{result.output[-3000:]}")
    return {"suppliers": suppliers, "days": days}


def _service_rss_mb(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 1024**2


async def _run(url: str, token: str, requests: list[tuple[str, str, dict | None]], clients: int):
    import httpx

    latencies = np.zeros(len(requests))
    errors = 0
    queue = iter(enumerate(requests))

    async def client(session: httpx.AsyncClient) -> None:
        nonlocal errors
        for i, (method, path, body) in queue:
            began = time.perf_counter()
            r = await session.request(method, path, json=body)
            latencies[i] = time.perf_counter() - began
            if r.status_code != 200:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60
    ) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        wall = time.perf_counter() - began
    return latencies, errors, wall


def _figures(latencies: np.ndarray, errors: int, wall: float) -> dict:
    return {
        "requests": len(latencies),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "errors": errors,
    }


def _floor(settings, ids: list[str], reads: int) -> dict:
    """Feast's own online read of both services of one supplier, one at a time."""
    from feature_repo.store import open_store
    from training.registry import load_champions
    from wedsync_cs.feature_jobs import store_config

    store = open_store(store_config(settings))
    services = [
        store.get_feature_service(s) for s in load_champions(settings.tracking_uri).services
    ]
    rng = np.random.default_rng(0)
    times = np.zeros(reads)
    for i in range(reads):
        row = [{"supplier_id": ids[rng.integers(len(ids))]}]
        began = time.perf_counter()
        for service in services:
            store.get_online_features(features=service, entity_rows=row).to_dict()
        times[i] = time.perf_counter() - began
    return {
        "p50_ms": round(1000 * float(np.percentile(times, 50)), 2),
        "p99_ms": round(1000 * float(np.percentile(times, 99)), 2),
    }


def load(workdir: str, workers: int, clients: int, requests: int, memory_requests: int) -> dict:
    """Serve the prepared home, load it route by route, then measure memory growth."""
    from wedsync_cs.demo_api import free_port, start, stop, wait_ready
    from wedsync_cs.settings import Settings

    root = Path(workdir)
    settings = Settings(home=root / HOME)
    os.environ["CS_HOME"] = str(settings.home_dir)
    import pandas as pd

    day = pd.read_parquet(settings.feature_table_path, columns=["supplier_id", "event_timestamp"])
    ids = sorted(day.loc[day["event_timestamp"] == day["event_timestamp"].max(), "supplier_id"])
    rng = np.random.default_rng(1)
    token = secrets.token_urlsafe(16)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(port, {token: "app"}, root / "serve_bench.log", workers)
    out: dict = {"workers": workers, "clients": clients, "suppliers_online": len(ids)}
    try:
        wait_ready(url, process)

        def pick(n: int) -> list[str]:
            return [str(x) for x in rng.choice(ids, n, replace=False)]

        scenarios = {
            "health_score_1": [
                ("GET", f"/api/customer-success/health-score/{pick(1)[0]}", None)
                for _ in range(requests)
            ],
            "score_1": [("POST", "/score", {"userIds": pick(1)}) for _ in range(requests)],
            "score_100": [
                ("POST", "/score", {"userIds": pick(100)}) for _ in range(requests // 5)
            ],
        }
        asyncio.run(_run(url, token, scenarios["score_1"][:200], clients))  # warm up
        for name, reqs in scenarios.items():
            out[name] = _figures(*asyncio.run(_run(url, token, reqs, clients)))
        out["floor_online_read"] = _floor(settings, ids, 2000)

        mixed = [
            ("GET", f"/api/customer-success/health-score/{pick(1)[0]}", None)
            if i % 2
            else ("POST", "/score", {"userIds": pick(1)})
            for i in range(memory_requests)
        ]
        asyncio.run(_run(url, token, mixed[:1000], clients))
        after_1000 = _service_rss_mb(process.pid)
        lat, errors, wall = asyncio.run(_run(url, token, mixed[1000:], clients))
        after_all = _service_rss_mb(process.pid)
        out["memory"] = {
            "requests": memory_requests,
            "rss_after_1000_mb": round(after_1000, 1),
            "rss_after_all_mb": round(after_all, 1),
            "growth": round(after_all / after_1000 - 1, 4),
            "errors": errors,
            "throughput_rps": round(len(lat) / wall, 1),
        }
    finally:
        stop(process)
    return out
