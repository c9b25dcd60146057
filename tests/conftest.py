"""Shared fixtures: a small valid contract folder built by hand, and the real servers."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features import contract


def ts(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def good_tables() -> dict[str, pa.Table]:
    """Two suppliers and a few rows of every table, all valid."""
    rows: dict[str, dict[str, list]] = {
        "suppliers": {
            "supplier_id": ["s1", "s2"],
            "business_name": ["Willow Florist", None],
            "first_name": ["Ava", "Leo"],
            "email": ["ava@example.com", "leo@example.com"],
            "vendor_type": ["florist", "venue"],
            "subscription_tier": ["starter", "scale"],
            "monthly_revenue": [19.0, 99.0],
            "country": ["GB", "AU"],
            "signup_at": [ts(2024, 1, 3, 10), ts(2024, 2, 1, 9)],
            "cs_agent_id": [None, "agent_01"],
        },
        "activity_daily": {
            "supplier_id": ["s1", "s1", "s2"],
            "date": [date(2024, 1, 3), date(2024, 1, 4), date(2024, 2, 1)],
            "logins": [2, 1, 3],
            "session_minutes": [20.5, 3.0, 41.0],
        },
        "feature_usage_daily": {
            "supplier_id": ["s1", "s2"],
            "date": [date(2024, 1, 4), date(2024, 2, 1)],
            "feature_key": ["client_management", "calendar"],
            "uses": [3, 1],
        },
        "clients_daily": {
            "supplier_id": ["s1", "s2"],
            "date": [date(2024, 1, 5), date(2024, 2, 3)],
            "total_clients": [4, 12],
            "active_clients_30d": [2, 12],
        },
        "support_tickets": {
            "ticket_id": ["t1", "t2"],
            "supplier_id": ["s1", "s2"],
            "created_at": [ts(2024, 1, 5, 12), ts(2024, 2, 2, 8)],
            "resolved_at": [ts(2024, 1, 6, 12), None],
            "category": ["onboarding", "billing"],
            "satisfaction_rating": [5, None],
        },
        "billing_events": {
            "event_id": ["e1", "e2", "e3"],
            "supplier_id": ["s1", "s1", "s2"],
            "occurred_at": [ts(2024, 1, 3, 10), ts(2024, 2, 2, 10), ts(2024, 2, 1, 9)],
            "event_type": ["payment_succeeded", "payment_failed", "payment_succeeded"],
            "amount": [19.0, 19.0, 99.0],
        },
        "milestones": {
            "supplier_id": ["s1", "s1", "s2"],
            "milestone_type": ["account_setup", "first_client", "account_setup"],
            "achieved_at": [ts(2024, 1, 3, 11), ts(2024, 1, 5, 9), ts(2024, 2, 1, 10)],
        },
        "cancellations": {
            "supplier_id": ["s1"],
            "cancelled_at": [ts(2024, 3, 1, 15)],
            "reason": ["too_expensive"],
        },
        "interventions_log": {
            "supplier_id": ["s2"],
            "sent_at": [ts(2024, 2, 5, 9)],
            "intervention_type": ["email_sequence"],
        },
    }
    return {
        name: pa.table(cols, schema=contract.TABLES_BY_NAME[name].schema)
        for name, cols in rows.items()
    }


def write_raw(folder: Path, tables: dict[str, pa.Table]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


@pytest.fixture
def make_raw(tmp_path: Path) -> Callable[..., Path]:
    """Write the good tables, with replacements, to a fresh folder."""

    def make(**replace: pa.Table | None) -> Path:
        tables = good_tables()
        for name, table in replace.items():
            if table is None:
                tables.pop(name)
            else:
                tables[name] = table
        return write_raw(tmp_path / "raw", tables)

    return make


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a server is down, unless CS_REQUIRE_SERVICES says CI must have it."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CS_REQUIRE_SERVICES"):
        pytest.fail(f"{message} and CS_REQUIRE_SERVICES is set")
    pytest.skip(message)


def _postgres_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as con:
        con.execute(sql)


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh database on the real PostgreSQL at 127.0.0.1:5432, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"cs_test_{uuid.uuid4().hex[:10]}"
    _postgres_admin(f"create database {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        _postgres_admin(f"drop database if exists {name} with (force)")
