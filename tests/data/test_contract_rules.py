"""Every rule of the data contract: a frame that breaks it is rejected with that rule named."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.raw_reader import RawDataError, load_raw
from tests.conftest import good_tables, ts

GOOD = good_tables()


def nullable(schema: pa.Schema) -> pa.Schema:
    """Exports rarely declare columns non-nullable: the validator must catch the nulls."""
    return pa.schema([f.with_nullable(True) for f in schema])


def with_cell(table: str, column: str, row: int, value: Any) -> dict[str, pa.Table]:
    rows = GOOD[table].to_pylist()
    rows[row][column] = value
    return {table: pa.Table.from_pylist(rows, schema=nullable(GOOD[table].schema))}


def with_rows(table: str, *extra: dict[str, Any]) -> dict[str, pa.Table]:
    rows = GOOD[table].to_pylist() + [dict(GOOD[table].to_pylist()[0], **e) for e in extra]
    return {table: pa.Table.from_pylist(rows, schema=GOOD[table].schema)}


def with_type(table: str, column: str, type_: pa.DataType, values: list) -> dict[str, pa.Table]:
    t = GOOD[table]
    i = t.schema.get_field_index(column)
    return {table: t.set_column(i, pa.field(column, type_), pa.array(values, type_))}


# (mutation, table, column, words the rule must contain)
CASES = [
    (with_cell("suppliers", "supplier_id", 1, None), "suppliers", "supplier_id", "not null"),
    (with_cell("suppliers", "supplier_id", 1, "s1"), "suppliers", "supplier_id", "unique"),
    (
        with_cell("suppliers", "vendor_type", 0, "Florist"),
        "suppliers",
        "vendor_type",
        "enumeration",
    ),
    (
        with_cell("suppliers", "subscription_tier", 0, "gold"),
        "suppliers",
        "subscription_tier",
        "enumeration",
    ),
    (with_cell("suppliers", "monthly_revenue", 0, -1.0), "suppliers", "monthly_revenue", ">= 0"),
    (with_cell("suppliers", "country", 0, "UK"), "suppliers", "country", "ISO 3166"),
    (
        with_type(
            "suppliers",
            "signup_at",
            pa.timestamp("us"),
            [datetime(2024, 1, 3), datetime(2024, 2, 1)],
        ),
        "suppliers",
        "signup_at",
        "type",
    ),
    (
        with_type(
            "suppliers",
            "signup_at",
            pa.timestamp("us", tz="Europe/London"),
            [ts(2024, 1, 3), ts(2024, 2, 1)],
        ),
        "suppliers",
        "signup_at",
        "type",
    ),
    (
        with_type("suppliers", "monthly_revenue", pa.string(), ["19", "99"]),
        "suppliers",
        "monthly_revenue",
        "type",
    ),
    (
        with_cell("activity_daily", "supplier_id", 0, "s9"),
        "activity_daily",
        "supplier_id",
        "in suppliers",
    ),
    (
        with_cell("activity_daily", "date", 0, date(2024, 1, 2)),
        "activity_daily",
        "date",
        ">= signup",
    ),
    (with_cell("activity_daily", "logins", 0, -1), "activity_daily", "logins", ">= 0"),
    (
        with_cell("activity_daily", "session_minutes", 0, -0.5),
        "activity_daily",
        "session_minutes",
        ">= 0",
    ),
    (
        with_type("activity_daily", "logins", pa.float64(), [2.0, 1.0, 3.0]),
        "activity_daily",
        "logins",
        "type",
    ),
    (
        with_type(
            "activity_daily",
            "date",
            pa.timestamp("us", tz="UTC"),
            [ts(2024, 1, 3), ts(2024, 1, 4), ts(2024, 2, 1)],
        ),
        "activity_daily",
        "date",
        "type",
    ),
    (
        with_cell("feature_usage_daily", "feature_key", 0, "chat"),
        "feature_usage_daily",
        "feature_key",
        "core features",
    ),
    (with_cell("feature_usage_daily", "uses", 0, 0), "feature_usage_daily", "uses", "> 0"),
    (
        with_cell("feature_usage_daily", "supplier_id", 0, "nobody"),
        "feature_usage_daily",
        "supplier_id",
        "in suppliers",
    ),
    (
        with_cell("clients_daily", "active_clients_30d", 0, 5),
        "clients_daily",
        "active_clients_30d",
        "<= total_clients",
    ),
    (with_cell("clients_daily", "total_clients", 0, -1), "clients_daily", "total_clients", ">= 0"),
    (with_cell("support_tickets", "ticket_id", 1, "t1"), "support_tickets", "ticket_id", "unique"),
    (
        with_cell("support_tickets", "resolved_at", 0, ts(2024, 1, 5, 11)),
        "support_tickets",
        "resolved_at",
        ">= created_at",
    ),
    (
        with_cell("support_tickets", "category", 0, "other"),
        "support_tickets",
        "category",
        "enumeration",
    ),
    (
        with_cell("support_tickets", "satisfaction_rating", 0, 6),
        "support_tickets",
        "satisfaction_rating",
        "1..5",
    ),
    (
        with_cell("support_tickets", "satisfaction_rating", 0, 0),
        "support_tickets",
        "satisfaction_rating",
        "1..5",
    ),
    (with_cell("billing_events", "event_id", 1, "e1"), "billing_events", "event_id", "unique"),
    (
        with_cell("billing_events", "event_type", 0, "chargeback"),
        "billing_events",
        "event_type",
        "enumeration",
    ),
    (with_cell("billing_events", "amount", 0, -19.0), "billing_events", "amount", ">= 0"),
    (
        with_cell("milestones", "milestone_type", 1, "account_setup"),
        "milestones",
        "supplier_id+milestone_type",
        "unique",
    ),
    (
        with_cell("milestones", "milestone_type", 0, "first_wedding"),
        "milestones",
        "milestone_type",
        "enumeration",
    ),
    (
        with_rows("cancellations", {"cancelled_at": ts(2024, 4, 1)}),
        "cancellations",
        "supplier_id",
        "unique",
    ),
    (
        with_cell("cancellations", "cancelled_at", 0, ts(2024, 1, 2)),
        "cancellations",
        "cancelled_at",
        "> signup_at",
    ),
    (
        with_cell("cancellations", "cancelled_at", 0, ts(2024, 1, 3, 10)),
        "cancellations",
        "cancelled_at",
        "> signup_at",
    ),
    (
        with_cell("interventions_log", "intervention_type", 0, "sms"),
        "interventions_log",
        "intervention_type",
        "enumeration",
    ),
]


def test_good_frames_pass(make_raw) -> None:
    tables = load_raw(make_raw())
    assert tables.report.ok
    assert {n: len(f) for n, f in tables.frames.items()} == {
        n: t.num_rows for n, t in GOOD.items()
    }


@pytest.mark.parametrize(
    ("mutation", "table", "column", "rule"), CASES, ids=[f"{c[1]}.{c[2]}:{c[3]}" for c in CASES]
)
def test_broken_rule_is_rejected_and_named(make_raw, mutation, table, column, rule) -> None:
    raw = make_raw(**mutation)
    with pytest.raises(RawDataError) as err:
        load_raw(raw)
    hits = [
        v
        for v in err.value.report.violations
        if v.table == table and v.column == column and rule in v.rule
    ]
    assert hits, err.value.report.counts()
    assert f"{table}.{column}" in str(err.value)
    # nothing else is blamed, but for rows whose supplier row is itself invalid
    others = {(v.table, v.column, v.rule) for v in err.value.report.violations if v.table != table}
    assert all(col == "supplier_id" and "in suppliers" in rule for _, col, rule in others)


def test_violation_report_shows_at_most_five_offending_rows(make_raw) -> None:
    rows = GOOD["activity_daily"].to_pylist()
    bad = [dict(rows[0], logins=-i) for i in range(1, 9)]
    raw = make_raw(
        activity_daily=pa.Table.from_pylist(rows + bad, schema=GOOD["activity_daily"].schema)
    )
    with pytest.raises(RawDataError) as err:
        load_raw(raw)
    (v,) = err.value.report.violations
    assert v.n_rows == 8 and len(v.examples) == 5
    assert list(v.row_index) == list(range(3, 11))
    assert "8 rows; first 5" in str(err.value)


def test_missing_required_table_is_named(make_raw) -> None:
    with pytest.raises(RawDataError, match="missing table 'milestones'"):
        load_raw(make_raw(milestones=None))


def test_missing_column_is_named(make_raw) -> None:
    raw = make_raw(billing_events=GOOD["billing_events"].drop_columns(["amount"]))
    with pytest.raises(RawDataError, match=r"billing_events.*lacks required column\(s\): amount"):
        load_raw(raw)


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(RawDataError, match="does not exist"):
        load_raw(tmp_path / "nowhere")


def test_optional_table_may_be_absent_and_extra_columns_are_ignored(make_raw) -> None:
    suppliers = GOOD["suppliers"].append_column("plan_notes", pa.array(["x", "y"]))
    tables = load_raw(make_raw(interventions_log=None, suppliers=suppliers))
    assert tables.report.ok
    assert len(tables["interventions_log"]) == 0
    assert "plan_notes" not in tables["suppliers"].columns


def test_lossless_encodings_are_accepted(make_raw) -> None:
    """Dictionary-encoded strings, narrower ints, nanosecond times keep their meaning."""
    a = GOOD["activity_daily"]
    a = a.set_column(0, "supplier_id", pc.dictionary_encode(a["supplier_id"]))
    a = a.set_column(2, "logins", a["logins"].cast(pa.int32()))
    s = GOOD["suppliers"]
    i = s.schema.get_field_index("signup_at")
    s = s.set_column(i, "signup_at", s["signup_at"].cast(pa.timestamp("ns", tz="UTC")))
    tables = load_raw(make_raw(activity_daily=a, suppliers=s))
    assert tables.report.ok
    assert tables["activity_daily"]["logins"].tolist() == [2, 1, 3]


def test_all_null_optional_column_is_accepted(make_raw) -> None:
    s = GOOD["suppliers"]
    i = s.schema.get_field_index("cs_agent_id")
    s = s.set_column(i, "cs_agent_id", pa.nulls(2))
    pq_tables = load_raw(make_raw(suppliers=s))
    assert pq_tables["suppliers"]["cs_agent_id"].isna().all()


def test_parquet_written_by_pandas_is_read(tmp_path: Path, make_raw) -> None:
    """A warehouse export written by pandas (object strings, ns timestamps) validates."""
    raw = make_raw()
    df = pq.read_table(raw / "suppliers.parquet").to_pandas()
    df.to_parquet(raw / "suppliers.parquet")
    assert load_raw(raw).report.ok


def test_after_a_day_validates_the_daily_rows_after_it_and_every_other_row(make_raw) -> None:
    """An incremental build's validation (``after`` its last day built): the daily tables'
    rows up to that day were validated before and are left out; a bad newer row, and a ticket
    id reused across days, are still refused."""
    bad_old = with_cell("activity_daily", "logins", 0, -1)  # dated 2024-01-03
    assert len(load_raw(make_raw(**bad_old), after=date(2024, 1, 3))["activity_daily"]) == 2
    with pytest.raises(RawDataError, match="logins"):
        load_raw(make_raw(**bad_old), after=date(2024, 1, 2))
    reused = with_cell("support_tickets", "ticket_id", 1, "t1")  # two days apart
    with pytest.raises(RawDataError, match="ticket_id"):
        load_raw(make_raw(**reused), after=date(2024, 2, 1))
    with pytest.raises(ValueError, match="quarantine"):
        load_raw(make_raw(), quarantine=Path("q"), after=date(2024, 1, 3))
