"""The console script, run as a user runs it: exit codes, messages, files written or not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import good_tables

CLI = str(Path(sys.executable).with_name("wedsync-cs"))


def run(*args: str, cwd: Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("CS_HOME", None)
    if home is not None:
        env["CS_HOME"] = str(home)
    return subprocess.run(
        [CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_help_lists_commands_and_creates_nothing(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("simulate", "validate", "demo", "config", "train", "predict"):
        assert command in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_validate_rejects_with_table_column_rule_and_writes_nothing(make_raw, tmp_path) -> None:
    rows = good_tables()["clients_daily"].to_pylist()
    rows[1]["active_clients_30d"] = 99
    raw = make_raw(clients_daily=pa.Table.from_pylist(rows))
    before = sorted(tmp_path.rglob("*"))
    result = run("validate", "--raw", str(raw), cwd=tmp_path)
    assert result.returncode == 1
    assert "clients_daily.active_clients_30d: active_clients_30d <= total_clients" in (
        result.stderr
    )
    assert sorted(tmp_path.rglob("*")) == before


def test_validate_with_quarantine_goes_on_and_counts(make_raw, tmp_path: Path) -> None:
    rows = good_tables()["billing_events"].to_pylist()
    rows[0]["event_type"] = "chargeback"
    raw = make_raw(billing_events=pa.Table.from_pylist(rows))
    out = tmp_path / "q"
    result = run("validate", "--raw", str(raw), "--quarantine", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "billing_events: 1 rows" in result.stdout
    assert "event_type in contract enumeration" in result.stdout
    assert pq.read_table(out / "billing_events.parquet")["event_id"].to_pylist() == ["e1"]


def test_simulate_refuses_to_overwrite_and_bad_options_are_clear(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ("simulate", "--suppliers", "50", "--days", "60", "--out", str(out))
    assert run(*args, "--truth-paths", "4", cwd=tmp_path).returncode == 0
    again = run(*args, cwd=tmp_path)
    assert again.returncode == 2 and "not empty" in again.stderr
    bad = run("simulate", "--out", str(tmp_path / "x"), "--truth-every", "10", cwd=tmp_path)
    assert bad.returncode == 2 and "multiple of 7" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_demo_runs_end_to_end_under_its_own_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ("demo", "--suppliers", "400", "--days", "400", "--trials", "2", "--time-budget", "60")
    result = run(*args, cwd=tmp_path, home=home)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "monthly churn rate" in out
    assert "Contract check" in out and ": OK" in out
    assert (home / "data" / "demo" / "raw" / "suppliers.parquet").exists()
    # it trained: the evaluation table with the simulator's ceiling, a champion, the UI command
    assert "Holdout evaluation" in out and "churn_model" in out and "ceiling" in out
    assert "churn v1: promoted to champion" in out
    assert "health_calibration v1: promoted to champion" in out
    assert "MLflow UI" in out and (home / "mlflow" / "mlflow.db").exists()
    # nothing outside the home, and the default home was never made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_an_export_whose_history_starts_late_is_warned_about_and_trained_on_its_window(
    tmp_path: Path,
) -> None:
    """Accounts older than the event history: `validate` warns (exit 0) and says what it means;
    `train` keeps only the rows the history covers and prints the window and what it left out."""
    out, home = tmp_path / "sim", tmp_path / "home"
    simulate = run(
        "simulate", "--out", str(out), "--suppliers", "600", "--days", "520",
        "--history-start-days", "150", "--truth-paths", "4", cwd=tmp_path,
    )  # fmt: skip
    assert simulate.returncode == 0, simulate.stderr
    assert "exported accounts signed up before it" in simulate.stdout
    validate = run("validate", "--raw", str(out / "raw"), cwd=tmp_path)
    assert validate.returncode == 0, validate.stderr
    assert "Event history starts 2024-05-30" in validate.stdout
    assert "accounts signed up before the event history starts (2024-05-30" in validate.stdout
    assert "training uses their rows only from 2024-08-27 on" in validate.stdout
    train = run(
        "train", "--raw", str(out / "raw"), "--trials", "2", "--time-budget", "60",
        cwd=tmp_path, home=home,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    window = next(line for line in train.stdout.splitlines() if "observation window:" in line)
    assert "event history from 2024-05-30 (first signup 2024-01-01" in window
    left_out = int(window.split(" kept, ")[1].split(" left out")[0].replace(",", ""))
    assert left_out > 0
    assert "churn_model_unconstrained" in train.stdout and "Refit check" in train.stdout
    assert "deployed refit on every labelled row (registered)" in train.stdout
