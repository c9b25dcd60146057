"""Benchmarks of the service under load: ``wedsync-cs serve`` with its workers on loopback, a
bounded load generator (a fixed number of clients, each sending its next request when the last
answered), latencies per route, and beside them, in the same run, a bare online-store read of
the same suppliers (the floor). Then the service's memory after many requests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
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


WRK_SCRIPT = """
local ids = {}
for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
local mode = os.getenv("BENCH_MODE")
local n = tonumber(os.getenv("BENCH_N"))
math.randomseed(tonumber(os.getenv("BENCH_SEED")))
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
request = function()
  if mode == "health" or (mode == "mixed" and math.random() < 0.5) then
    return wrk.format("GET", "/api/customer-success/health-score/" .. ids[math.random(#ids)])
  end
  local pick = {}
  for i = 1, n do pick[i] = '"' .. ids[math.random(#ids)] .. '"' end
  return wrk.format("POST", "/score", nil, '{"userIds":[' .. table.concat(pick, ",") .. ']}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %.1f %.1f\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(50),
    latency:percentile(99)))
end
"""


def _wrk(
    url: str,
    token: str,
    ids: list[str],
    mode: str,
    n: int,
    seconds: float,
    clients: int,
    seed: int,
) -> dict:
    """``seconds`` of requests from ``wrk`` (one thread, ``clients`` connections, each sending
    its next request when the last answered): ``health`` (a random supplier's health score),
    ``score`` (``n`` random suppliers) or ``mixed`` (either, half and half, ``n`` = 1). A
    native load generator: the figures are the service's, not the client's."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "ids.txt").write_text("\n".join(ids))
        Path(tmp, "bench.lua").write_text(WRK_SCRIPT)
        env = {
            **os.environ,
            "BENCH_IDS": str(Path(tmp, "ids.txt")),
            "BENCH_MODE": mode,
            "BENCH_N": str(n),
            "BENCH_SEED": str(seed),
            "BENCH_TOKEN": token,
        }
        out = subprocess.run(
            ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s",
             "-s", str(Path(tmp, "bench.lua")), url],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    requests, micros, errors, p50, p99 = (float(v) for v in line.split()[1:])
    return {
        "requests": int(requests),
        "p50_ms": round(p50 / 1000, 2),
        "p99_ms": round(p99 / 1000, 2),
        "throughput_rps": round(requests / (micros / 1e6), 1),
        "errors": int(errors),
        "load_generator": "wrk",
    }


def _figures(latencies: np.ndarray, errors: int, wall: float) -> dict:
    return {
        "requests": len(latencies),
        "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(1000 * float(np.percentile(latencies, 99)), 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "errors": errors,
    }


def _floor(settings, ids: list[str], reads: int) -> dict:
    """The bare online-store read of the services the service reads, one caller, for 1 and
    for 100 random suppliers: Feast's ``get_online_features`` (both services) and the
    reader the service uses (:class:`feature_repo.readers.OnlineFeatureReader`); beside them,
    in the same process, the service's scoring without HTTP: ``/score``'s (the churn part from
    the day's stored predictions) and a live scoring of the same suppliers (TreeSHAP)."""
    from feature_repo.readers import OnlineFeatureReader
    from feature_repo.store import open_store
    from wedsync_cs.feature_jobs import store_config
    from wedsync_cs.service_wiring import build_backend

    store = open_store(store_config(settings))
    assessments = build_backend(settings).assessments
    names = assessments.scorer.models.services
    services = [store.get_feature_service(s) for s in names]
    reader = OnlineFeatureReader(store)
    rng = np.random.default_rng(0)

    def feast(batch: list[str]) -> None:
        rows = [{"supplier_id": s} for s in batch]
        for service in services:
            store.get_online_features(features=service, entity_rows=rows).to_dict()

    out = {}
    for n in (1, 100):
        for name, read in (("get_online_features", feast),
                           ("service_reader", lambda b: reader.values(b, names)),
                           ("score_in_process", assessments.scores),
                           ("live_scoring_in_process", assessments.scorer.live)):  # fmt: skip
            count = reads if n == 1 else max(reads // 20, 5)
            times = np.zeros(count)
            for i in range(count):
                batch = [str(x) for x in rng.choice(ids, n)]
                began = time.perf_counter()
                read(batch)
                times[i] = time.perf_counter() - began
            out[f"{name}_{n}"] = {
                "p50_ms": round(1000 * float(np.percentile(times, 50)), 2),
                "p99_ms": round(1000 * float(np.percentile(times, 99)), 2),
            }
    return out


def load(
    workdir: str,
    workers: int,
    clients: int,
    requests: int,
    memory_requests: int,
    seconds: float = 20,
    floor_reads: int = 2000,
) -> dict:
    """Serve the prepared home, load it route by route, then measure memory growth.

    With ``wrk`` installed, each route is loaded for ``seconds``; without it, the Python
    client sends ``requests`` of each (a fifth of them for 100 ids). The floor beside them
    takes ``floor_reads`` reads of each kind for 1 supplier (a twentieth for 100)."""
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

        if shutil.which("wrk"):
            out["load_generator"] = "wrk (native; one thread, one connection per client)"

            def drive(mode: str, n: int, count: int, seed: int) -> dict:
                # duration-based; short runs repeated up to the count where only totals matter
                return _wrk(url, token, ids, mode, n, seconds, clients, seed)

            def drive_count(count: int, seed: int) -> dict:
                done, errors = 0, 0
                while done < count:
                    part = _wrk(url, token, ids, "mixed", 1, 1 if count < 5000 else 20,
                                clients, seed + done)  # fmt: skip
                    done, errors = done + part["requests"], errors + part["errors"]
                return {"requests": done, "errors": errors}
        else:  # the Python client below, whose own CPU competes with the service's
            out["load_generator"] = "httpx (wrk is not installed; its CPU competes)"

            def drive(mode: str, n: int, count: int, seed: int) -> dict:
                def one(i: int) -> tuple[str, str, dict | None]:
                    if mode == "health" or (mode == "mixed" and i % 2):
                        return ("GET", f"/api/customer-success/health-score/{pick(1)[0]}", None)
                    return ("POST", "/score", {"userIds": pick(n)})

                reqs = [one(i) for i in range(count)]
                return _figures(*asyncio.run(_run(url, token, reqs, clients)))

            def drive_count(count: int, seed: int) -> dict:
                return drive("mixed", 1, count, seed)

        drive("score", 1, 200, 0)  # warm up
        out["health_score_1"] = drive("health", 1, requests, 1)
        out["score_1"] = drive("score", 1, requests, 2)
        out["score_100"] = drive("score", 100, max(requests // 5, 1), 3)
        out["floor_online_read"] = _floor(settings, ids, floor_reads)

        first = drive_count(1000, 4)
        after_first = _service_rss_mb(process.pid)
        rest = drive_count(memory_requests - first["requests"], 5)
        after_all = _service_rss_mb(process.pid)
        out["memory"] = {
            "requests": first["requests"] + rest["requests"],
            "rss_after_first_mb": round(after_first, 1),
            "first_requests": first["requests"],
            "rss_after_all_mb": round(after_all, 1),
            "growth": round(after_all / after_first - 1, 4),
            "errors": first["errors"] + rest["errors"],
        }
    finally:
        stop(process)
    return out
