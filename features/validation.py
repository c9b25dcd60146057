"""Validation of raw contract tables with pandera.

Each contract rule is a named pandera check, so a violation names its table, column and rule.
Cross-table rules (foreign keys to ``suppliers``, dates after signup) are checks whose closures
hold the valid suppliers; they run after ``suppliers`` itself is validated.

Functions here are pure: frames in, a :class:`ValidationReport` out. Reading files and writing
quarantine output happen in :mod:`features.raw_reader`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from features import contract

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    """Rows of one table breaking one rule (a whole-table problem when ``row_index`` is empty)."""

    table: str
    column: str
    rule: str
    row_index: np.ndarray
    examples: pd.DataFrame = field(repr=False)

    @property
    def n_rows(self) -> int:
        return len(self.row_index)

    @property
    def is_table_level(self) -> bool:
        """Wrong type or other problem of the whole column: no row can be set aside for it."""
        return self.n_rows == 0

    def describe(self) -> str:
        head = f"{self.table}.{self.column}: {self.rule}"
        if self.is_table_level:
            return head
        shown = self.examples.to_string(index=True, max_colwidth=40)
        return f"{head} ({self.n_rows} rows; first {len(self.examples)}):\n{shown}"


@dataclass(frozen=True)
class ValidationReport:
    """Every violation of every table, and per table which rows are bad and why."""

    violations: tuple[Violation, ...]
    n_rows: Mapping[str, int]

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def table_level(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.is_table_level)

    def bad_rows(self, table: str) -> pd.Series:
        """Reasons per bad row of ``table``, indexed by row position (rules joined by '; ')."""
        reasons: dict[int, list[str]] = {}
        for v in self.violations:
            if v.table != table:
                continue
            for i in v.row_index.tolist():
                reasons.setdefault(i, []).append(f"{v.column}: {v.rule}")
        return pd.Series({i: "; ".join(r) for i, r in sorted(reasons.items())}, dtype=object)

    def counts(self) -> pd.DataFrame:
        """Offending rows per table, column and rule."""
        return pd.DataFrame(
            [(v.table, v.column, v.rule, v.n_rows) for v in self.violations],
            columns=["table", "column", "rule", "rows"],
        )


def _arrow(series: pd.Series) -> pa_arrow.Array:
    """The Arrow array behind a series (zero-copy for the Arrow-backed frames we read)."""
    if isinstance(series.dtype, pd.ArrowDtype):
        return series.array.__arrow_array__().combine_chunks()
    return pa_arrow.array(series, from_pandas=True)


def _in(allowed: frozenset[str] | tuple[str, ...], name: str) -> pa.Check:
    allowed_arr = pa_arrow.array(sorted(allowed), pa_arrow.string())

    def check(s: pd.Series) -> pd.Series:
        ok = pc.is_in(_arrow(s), value_set=allowed_arr)
        return pd.Series(ok.to_numpy(zero_copy_only=False), index=s.index) | s.isna()

    return pa.Check(check, name=name)


def _cmp(fn: Callable[[pd.Series], pd.Series], name: str) -> pa.Check:
    """A column rule that treats missing values as passing (nullability is its own rule)."""

    def check(s: pd.Series) -> pd.Series:
        return (fn(s).fillna(False).astype(bool)) | s.isna()

    return pa.Check(check, name=name)


@dataclass(frozen=True)
class SupplierIndex:
    """Valid suppliers' ids and signup times, for foreign-key and signup-order rules."""

    ids: pa_arrow.Array
    signup_at: pa_arrow.Array

    @classmethod
    def from_frame(cls, suppliers: pd.DataFrame) -> SupplierIndex:
        return cls(
            ids=_arrow(suppliers["supplier_id"]).cast(pa_arrow.string()),
            signup_at=_arrow(suppliers["signup_at"]).cast(contract.TIMESTAMP),
        )

    def positions(self, supplier_id: pd.Series) -> pa_arrow.Array:
        return pc.index_in(_arrow(supplier_id).cast(pa_arrow.string()), value_set=self.ids)

    def signup_of(self, supplier_id: pd.Series) -> pa_arrow.Array:
        return pc.take(self.signup_at, self.positions(supplier_id))


def _fk(index: SupplierIndex) -> pa.Check:
    def check(s: pd.Series) -> pd.Series:
        pos = index.positions(s)
        return pd.Series(pc.is_valid(pos).to_numpy(zero_copy_only=False), index=s.index)

    return pa.Check(check, name="in suppliers (a valid supplier row)")


def _after_signup(index: SupplierIndex, column: str, *, strict: bool, as_date: bool) -> pa.Check:
    op = "> signup_at" if strict else ">= signup date" if as_date else ">= signup_at"

    def check(df: pd.DataFrame) -> pd.Series:
        signup = index.signup_of(df["supplier_id"])
        value = _arrow(df[column])
        if as_date:
            signup = pc.cast(pc.floor_temporal(signup, unit="day"), pa_arrow.date32())
        cmp = pc.greater(value, signup) if strict else pc.greater_equal(value, signup)
        ok = pc.or_kleene(cmp, pc.is_null(signup))  # unknown suppliers fail the FK rule instead
        ok = pc.fill_null(ok, True)
        return pd.Series(ok.to_numpy(zero_copy_only=False), index=df.index)

    return pa.Check(check, name=f"{column} {op}")


def _dtype(arrow_type: pa_arrow.DataType) -> pd.ArrowDtype:
    return pd.ArrowDtype(arrow_type)


def _columns(
    spec: contract.TableSpec,
    checks: Mapping[str, list[pa.Check]],
    unique: frozenset[str] = frozenset(),
) -> dict[str, pa.Column]:
    return {
        name: pa.Column(
            _dtype(t),
            nullable=name in spec.nullable,
            unique=name in unique,
            checks=checks.get(name, []),
            required=True,
        )
        for name, t in spec.columns
    }


def _ge0(col: str) -> pa.Check:
    return _cmp(lambda s: s >= 0, f"{col} >= 0")


def suppliers_schema() -> pa.DataFrameSchema:
    spec = contract.SUPPLIERS
    return pa.DataFrameSchema(
        _columns(
            spec,
            {
                "vendor_type": [_in(contract.VENDOR_TYPES, "vendor_type in contract enumeration")],
                "subscription_tier": [
                    _in(contract.SUBSCRIPTION_TIERS, "subscription_tier in contract enumeration")
                ],
                "monthly_revenue": [_ge0("monthly_revenue")],
                "country": [
                    _in(contract.ISO_COUNTRY_CODES, "country is an ISO 3166-1 alpha-2 code")
                ],
            },
            unique=frozenset({"supplier_id"}),
        ),
        name="suppliers",
        strict=False,
        report_duplicates="all",
    )


def child_schema(spec: contract.TableSpec, index: SupplierIndex) -> pa.DataFrameSchema:
    """Schema of a table that refers to suppliers, with its contract rules."""
    checks: dict[str, list[pa.Check]] = {"supplier_id": [_fk(index)]}
    frame_checks: list[pa.Check] = []
    unique: frozenset[str] = frozenset()
    unique_together: list[str] | None = None
    name = spec.name
    if name == "activity_daily":
        checks |= {"logins": [_ge0("logins")], "session_minutes": [_ge0("session_minutes")]}
        frame_checks.append(_after_signup(index, "date", strict=False, as_date=True))
    elif name == "feature_usage_daily":
        checks |= {
            "feature_key": [_in(contract.CORE_FEATURES, "feature_key in the 8 core features")],
            "uses": [_cmp(lambda s: s > 0, "uses > 0")],
        }
    elif name == "clients_daily":
        checks |= {
            "total_clients": [_ge0("total_clients")],
            "active_clients_30d": [_ge0("active_clients_30d")],
        }
        frame_checks.append(
            pa.Check(
                lambda df: (
                    (df["active_clients_30d"] <= df["total_clients"]).fillna(True).astype(bool)
                ),
                name="active_clients_30d <= total_clients",
            )
        )
    elif name == "support_tickets":
        unique = frozenset({"ticket_id"})
        checks |= {
            "category": [_in(contract.TICKET_CATEGORIES, "category in contract enumeration")],
            "satisfaction_rating": [
                _cmp(lambda s: (s >= 1) & (s <= 5), "satisfaction_rating in 1..5")
            ],
        }
        frame_checks.append(
            pa.Check(
                lambda df: (df["resolved_at"] >= df["created_at"]).fillna(True).astype(bool),
                name="resolved_at >= created_at",
            )
        )
    elif name == "billing_events":
        unique = frozenset({"event_id"})
        checks |= {
            "event_type": [
                _in(contract.BILLING_EVENT_TYPES, "event_type in contract enumeration")
            ],
            "amount": [_ge0("amount")],
        }
    elif name == "milestones":
        checks |= {
            "milestone_type": [
                _in(contract.MILESTONE_TYPES, "milestone_type in contract enumeration")
            ]
        }
        unique_together = ["supplier_id", "milestone_type"]
    elif name == "cancellations":
        unique = frozenset({"supplier_id"})
        frame_checks.append(_after_signup(index, "cancelled_at", strict=True, as_date=False))
    elif name == "interventions_log":
        checks |= {
            "intervention_type": [
                _in(contract.INTERVENTION_TYPES, "intervention_type in contract enumeration")
            ]
        }
    return pa.DataFrameSchema(
        _columns(spec, checks, unique),
        checks=frame_checks,
        unique=unique_together,
        name=name,
        strict=False,
        report_duplicates="all",
    )


# Which column a frame-level rule is about, for reports.
_FRAME_RULE_COLUMN = {
    "date >= signup date": "date",
    "cancelled_at > signup_at": "cancelled_at",
    "active_clients_30d <= total_clients": "active_clients_30d",
    "resolved_at >= created_at": "resolved_at",
}
_RULE_NAMES = {
    "not_nullable": "not null",
    "field_uniqueness": "unique",
    "multiple_fields_uniqueness": "unique together",
    "column_in_dataframe": "required column",
}


def _rule_name(check: str, column: str | None) -> str:
    if check.startswith("dtype("):
        return f"type must be {check[len('dtype(') : -1].strip(chr(39))}"
    if check == "unique" and column is None:
        return "unique together"
    return _RULE_NAMES.get(check, check)


def types_only(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """The same columns and types without value rules (which assume the right types)."""
    return pa.DataFrameSchema(
        {name: pa.Column(col.dtype, nullable=True) for name, col in schema.columns.items()},
        name=schema.name,
        strict=False,
    )


def validate_frame(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[Violation]:
    """Check types first; only a table with the right types gets its value rules checked."""
    wrong_types = _run(frame, types_only(schema))
    return wrong_types or _run(frame, schema)


def _run(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[Violation]:
    """Run one schema lazily and turn pandera's failure cases into violations."""
    try:
        schema.validate(frame, lazy=True)
        return []
    except pa.errors.SchemaErrors as err:
        crashed = [
            e
            for e in err.schema_errors
            if e.reason_code == pa.errors.SchemaErrorReason.CHECK_ERROR
        ]
        if crashed:  # a bug in a rule, not bad data: never report it as a violation
            raise RuntimeError(f"validation rule crashed: {crashed[0]}") from err
        cases = err.failure_cases
    violations: list[Violation] = []
    cases = cases.assign(
        column=cases["column"].where(cases["column"].notna(), None),
        check=cases["check"].astype(str),
    )
    for (check, column), group in cases.groupby(["check", "column"], dropna=False, sort=False):
        col = _FRAME_RULE_COLUMN.get(check, column if isinstance(column, str) else None)
        if check in _FRAME_RULE_COLUMN and column != col:
            continue  # pandera repeats a frame-level failure once per column
        if check == "multiple_fields_uniqueness" or (check == "unique" and column is None):
            col = "+".join(schema.unique or [])
        rows = np.unique(group["index"].dropna().astype(np.int64).to_numpy())
        examples = frame.iloc[rows[:MAX_EXAMPLES]] if len(rows) else frame.iloc[0:0]
        violations.append(
            Violation(
                table=schema.name or "?",
                column=col or "?",
                rule=_rule_name(check, col),
                row_index=rows,
                examples=examples,
            )
        )
    return violations


def validate_tables(frames: Mapping[str, pd.DataFrame]) -> ValidationReport:
    """Validate every contract table; child tables are checked against the valid suppliers.

    Args:
        frames: table name -> frame read by :func:`features.raw_reader.read_table`, with
            positional (RangeIndex) rows.
    """
    suppliers = frames[contract.SUPPLIERS.name]
    violations = validate_frame(suppliers, suppliers_schema())
    bad_supplier_rows = np.unique(
        np.concatenate([v.row_index for v in violations] or [np.empty(0, np.int64)])
    )
    if any(v.is_table_level for v in violations):
        # Wrong types in suppliers: nothing downstream can be checked against it.
        return ValidationReport(tuple(violations), {k: len(v) for k, v in frames.items()})
    good_suppliers = suppliers.drop(index=suppliers.index[bad_supplier_rows])
    index = SupplierIndex.from_frame(good_suppliers)
    for spec in contract.TABLES:
        if spec.name == contract.SUPPLIERS.name or spec.name not in frames:
            continue
        violations += validate_frame(frames[spec.name], child_schema(spec, index))
    return ValidationReport(tuple(violations), {k: len(v) for k, v in frames.items()})
