"""The demo's last act: start the service, send the contract's example requests, print each
request and the answer the service gave, stop it."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

PREFIX = "/api/customer-success"
MAX_LINES = 40


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    answer: Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, tokens: dict[str, str], log: Path, workers: int = 1) -> subprocess.Popen:
    """``wedsync-cs serve`` in its own process group, its output in ``log``."""
    env = {**os.environ, "CS_API_TOKENS": json.dumps(tokens)}
    command = [str(Path(sys.executable).parent / "wedsync-cs"), "serve", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the service exited before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service at {url} was not ready after {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def exchanges(url: str, token: str, admin: str | None = None) -> list[Exchange]:
    """The contract's example requests against a ready service (``admin``: a token of the
    admin role for the interventions' routes)."""
    auth = {"Authorization": f"Bearer {token}"}
    client = httpx.Client(base_url=url, timeout=30, headers=auth)
    done: list[Exchange] = []

    def send(method: str, path: str, body=None, headers=None, params=None) -> Any:
        r = client.request(method, path, json=body, headers=headers, params=params)
        shown = path + ("?" + str(httpx.QueryParams(params)) if params else "")
        done.append(Exchange(method, shown, body, r.status_code, r.json()))
        return r.json()

    page = send(
        "GET",
        f"{PREFIX}/churn-predictions",
        params=[("riskLevel", "critical"), ("riskLevel", "high"), ("limit", "3")],
    )
    top = page["predictions"][0]["userId"] if page.get("predictions") else None
    if top is None:  # no high-risk supplier today: take the riskiest of all
        top = send("GET", f"{PREFIX}/churn-predictions", params={"limit": "1"})["predictions"][0][
            "userId"
        ]
    send("GET", f"{PREFIX}/health-score/{top}")
    trigger = {
        "userId": top,
        "interventionType": "phone_call",
        "reason": "Churn risk is high: logins and payments dropped",
        "priority": "high",
        "customization": {"message": "Check in about the failed payment"},
    }
    key = {"Idempotency-Key": f"demo-{secrets.token_hex(8)}"}
    send("POST", f"{PREFIX}/interventions/trigger", trigger, key)
    send("POST", f"{PREFIX}/interventions/trigger", trigger, key)  # a retry: the same answer
    send(
        "POST",
        f"{PREFIX}/onboarding/milestone",
        {
            "userId": top,
            "milestoneType": "first_automation",
            "metadata": {"satisfactionRating": 4},
        },
    )
    send("GET", f"{PREFIX}/onboarding/{top}")
    send("POST", "/score", {"userIds": [top, "sup_unknown"]})
    send("POST", "/explain", {"userId": top})
    send("GET", "/models")
    # the interventions of the day: what the outbox delivered, the app's pending messages, an
    # agent's worklist and a bulk campaign's dry run
    tours = send(
        "GET",
        f"{PREFIX}/interventions",
        params=[("interventionType", "feature_tour"), ("status", "sent"), ("limit", "1")],
    )["executions"]
    if tours:
        send("GET", f"{PREFIX}/in-app/{tours[0]['userId']}")
    if admin is not None:
        boss = {"Authorization": f"Bearer {admin}"}
        calls = send("GET", f"{PREFIX}/interventions", headers=boss, params={"limit": "20"})[
            "executions"
        ]
        agent = next((e["agentId"] for e in calls if e["agentId"]), "agent_01")
        send("GET", f"{PREFIX}/worklist", headers=boss, params={"agentId": agent, "limit": "3"})
        send(
            "POST",
            f"{PREFIX}/interventions/bulk",
            {
                "filter": {"riskLevel": ["high", "critical"], "tier": ["professional", "scale"]},
                "interventionType": "email_sequence",
                "reason": "Spring season: plan your bookings with WedSync",
                "priority": "medium",
                "dryRun": True,
            },
            boss,
        )
        # monitoring: the latest day's KPIs, the agents' performance, the effect so far
        send("GET", f"{PREFIX}/kpis", headers=boss)
        send("GET", f"{PREFIX}/agents", headers=boss)
        send("GET", f"{PREFIX}/interventions/effect", headers=boss)
    r = httpx.get(f"{url}/models", timeout=30)
    done.append(Exchange("GET", "/models (no token)", None, r.status_code, r.json()))
    return done


def _shorten(answer: Any) -> Any:
    """The explanation's per-feature attributions cut to the largest five (the rest elided)."""
    features = answer.get("explanation", {}).get("features") if isinstance(answer, dict) else None
    if not features:
        return answer
    top = sorted(features.items(), key=lambda kv: -abs(kv[1]))[:5]
    explanation = {
        **answer["explanation"],
        "features": {**dict(top), "...": f"{len(features) - 5} more"},
    }
    return {**answer, "explanation": explanation}


def print_exchanges(done: list[Exchange]) -> None:
    for e in done:
        typer.secho(f"\n> {e.method} {e.path}", bold=True)
        if e.body is not None:
            typer.echo("  " + json.dumps(e.body))
        lines = json.dumps(_shorten(e.answer), indent=2).splitlines()
        more = len(lines) - MAX_LINES
        lines = lines[:MAX_LINES] + ([f"... ({more} more lines)"] if more > 0 else [])
        typer.echo(f"< {e.status}")
        typer.echo("\n".join("  " + line for line in lines))


def run_api_demo(log: Path) -> list[Exchange]:
    """Serve on a free port with a fresh demo token, send the examples, print, stop."""
    token, admin = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    typer.secho(f"\nThe API: wedsync-cs serve --port {port} (log: {log})", bold=True)
    process = start(port, {token: "app", admin: "admin"}, log)
    try:
        began = time.monotonic()
        wait_ready(url, process)
        typer.echo(
            f"  ready after {time.monotonic() - began:.1f} s; demo tokens of the roles app and "
            "admin"
        )
        done = exchanges(url, token, admin)
        print_exchanges(done)
    finally:
        stop(process)
    typer.echo("\n  service stopped")
    return done
