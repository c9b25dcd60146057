"""Quarantine: exactly the bad rows go aside with their reasons; the rest goes on."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.raw_reader import RawDataError, load_raw
from tests.conftest import good_tables

GOOD = good_tables()


def _bad_folder(make_raw) -> Path:
    activity = GOOD["activity_daily"].to_pylist()
    activity += [dict(activity[0], logins=-4), dict(activity[0], supplier_id="ghost")]
    suppliers = GOOD["suppliers"].to_pylist()
    suppliers.append(dict(suppliers[0], supplier_id="s3", vendor_type="magician"))
    tickets = GOOD["support_tickets"].to_pylist()
    tickets.append(dict(tickets[0], ticket_id="t3", supplier_id="s3"))
    nullable = {n: pa.schema([f.with_nullable(True) for f in GOOD[n].schema]) for n in GOOD}
    return make_raw(
        activity_daily=pa.Table.from_pylist(activity, schema=nullable["activity_daily"]),
        suppliers=pa.Table.from_pylist(suppliers, schema=nullable["suppliers"]),
        support_tickets=pa.Table.from_pylist(tickets, schema=nullable["support_tickets"]),
    )


def test_without_quarantine_nothing_is_written(make_raw, tmp_path: Path) -> None:
    raw = _bad_folder(make_raw)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(RawDataError):
        load_raw(raw)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_quarantine_holds_exactly_the_bad_rows_with_reasons(make_raw, tmp_path: Path) -> None:
    raw = _bad_folder(make_raw)
    out = tmp_path / "quarantine"
    tables = load_raw(raw, quarantine=out)

    assert sorted(p.name for p in out.iterdir()) == [
        "activity_daily.parquet",
        "suppliers.parquet",
        "support_tickets.parquet",
    ]
    activity = pq.read_table(out / "activity_daily.parquet").to_pylist()
    assert [(r["_row"], r["logins"], r["supplier_id"]) for r in activity] == [
        (3, -4, "s1"),
        (4, 2, "ghost"),
    ]
    assert activity[0]["_reasons"] == "logins: logins >= 0"
    assert "supplier_id: in suppliers" in activity[1]["_reasons"]
    suppliers = pq.read_table(out / "suppliers.parquet").to_pylist()
    assert [(r["supplier_id"], r["_reasons"]) for r in suppliers] == [
        ("s3", "vendor_type: vendor_type in contract enumeration"),
    ]
    # a ticket of the quarantined supplier cannot stay: its supplier row is gone
    tickets = pq.read_table(out / "support_tickets.parquet").to_pylist()
    assert [r["ticket_id"] for r in tickets] == ["t3"]

    assert tables.quarantined["activity_daily"] == 2
    assert tables.quarantined["suppliers"] == 1
    assert tables.quarantined["billing_events"] == 0
    # valid rows go on, and every input row is either kept or quarantined
    assert len(tables["activity_daily"]) == 3
    assert set(tables["suppliers"]["supplier_id"]) == {"s1", "s2"}
    counts = tables.report.counts()
    assert counts.loc[counts.table == "activity_daily", "rows"].sum() == 2


def test_wrong_column_type_is_not_quarantinable(make_raw, tmp_path: Path) -> None:
    a = GOOD["activity_daily"]
    a = a.set_column(2, "logins", a["logins"].cast(pa.float64()))
    with pytest.raises(RawDataError, match=r"activity_daily\.logins: type must be"):
        load_raw(make_raw(activity_daily=a), quarantine=tmp_path / "q")
    assert not (tmp_path / "q").exists()
