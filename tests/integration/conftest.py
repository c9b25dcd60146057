"""A served home: a small simulated export, models trained through the CLI, the operational
database migrated and the newest day scored by ``score-daily`` (SQLite everywhere), shared by
the serving tests of one test worker (they run in one xdist group)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from simulator import SimulationConfig, simulate
from wedsync_cs.cli import app
from wedsync_cs.demo_api import free_port
from wedsync_cs.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {
    "app-token": "app",
    "agent-token": {"role": "cs_agent", "agentId": "agent_01"},
    "admin-token": "admin",
}
APP = {"Authorization": "Bearer app-token"}


def run_cli(env: dict[str, str | None], *args: object):
    """The CLI in this process with these CS_* variables for this call only."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


def tiny_experiment(folder: Path) -> Path:
    spec = yaml.safe_load((ROOT / "experiments" / "churn_v3.yaml").read_text())
    spec["tuning"].update(trials=3, max_rounds=60, early_stopping_rounds=10)
    spec["thresholds"]["top_k"] = 50
    path = folder / "churn_v3_test.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@dataclass(frozen=True)
class ServedHome:
    home: Path
    raw: Path

    def env(self, **extra: str | None) -> dict[str, str | None]:
        import json

        return {
            "CS_HOME": str(self.home),
            "CS_MLFLOW_TRACKING_URI": None,
            "CS_DATABASE_URL": None,
            "CS_API_TOKENS": json.dumps(TOKENS),
            **extra,
        }

    def active_ids(self) -> list[str]:
        suppliers = pd.read_parquet(self.raw / "suppliers.parquet")
        cancelled = set(pd.read_parquet(self.raw / "cancellations.parquet")["supplier_id"])
        return [s for s in suppliers["supplier_id"] if s not in cancelled]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedHome:
    base = tmp_path_factory.mktemp("served")
    simulate(SimulationConfig(suppliers=400, days=400, seed=21, truth_paths=2), base / "set")
    home = ServedHome(home=base / "home", raw=base / "set" / "raw")
    env = home.env()
    experiment = tiny_experiment(base)
    for args in (
        ("train", "--raw", home.raw, "--experiment", experiment, "--trials", "3"),
        ("db", "upgrade"),
        ("score-daily", "--raw", home.raw),
    ):
        result = run_cli(env, *args)
        assert result.exit_code == 0, result.output
    return home


@dataclass
class LiveService:
    url: str
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, **kw) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kw)


def start_service(
    env: dict[str, str | None], workers: int = 2, *, bare: bool = False
) -> LiveService:
    """``wedsync-cs serve`` as a real process with ``workers`` workers (``bare``: BentoML's own
    ``bentoml serve`` of the service, without the CLI's checks before it starts)."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="cs-service-", suffix=".log")[1])
    full = {k: v for k, v in os.environ.items() if not k.startswith("CS_")}
    full.update({k: v for k, v in env.items() if v is not None})
    bin_dir = Path(sys.executable).parent
    command = (
        [str(bin_dir / "bentoml"), "serve", "serving.service:CustomerSuccess"]
        if bare
        else [str(bin_dir / "wedsync-cs"), "serve", "--workers", str(workers)]
    )
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)]
        if bare
        else [*command, "--port", str(port)],
        env=full,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return LiveService(url=f"http://127.0.0.1:{port}", process=process, log=log)


def wait_until_ready(service: LiveService, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"the service exited: {service.output()[-3000:]}")
        try:
            if service.get("/readyz").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the service did not become ready")


def stop_service(service: LiveService) -> str:
    import signal

    if service.process.poll() is None:
        os.killpg(service.process.pid, signal.SIGTERM)
        try:
            service.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait(10)
    return service.output()


@pytest.fixture(scope="session")
def live(served: ServedHome) -> Iterator[LiveService]:
    """The service of the served home, two workers, ready."""
    service = start_service(served.env(), workers=2)
    try:
        wait_until_ready(service)
        yield service
    finally:
        stop_service(service)
