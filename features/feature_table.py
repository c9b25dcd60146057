"""The supplier feature table, computed with DuckDB SQL from the contract tables.

One row per supplier active at each grid day ``d``, stamped ``event_timestamp = d + 1 day``
(00:00 UTC, the end of day ``d``), using only data dated on or before ``d``. "Active" follows the
contract: signed up at or before that instant, and no cancellation at or before it.

How: every table becomes per-supplier daily event counts; cumulative sums of those are looked up
for each grid row as an ASOF join would (the supplier's latest row on or before the day) at ``d``,
``d - 7``, ``d - 30``, ``d - 60`` and ``d - 90``, so any window is a difference of two cumulative
values. This is point-in-time correct by construction, works for any set of grid days, and costs
a sort of the events plus a binary search per grid row and look-back, with no Python loop over
suppliers or days.

:func:`feature_rows_for` gives the same rows for chosen (supplier, day) pairs only, for scoring a
few suppliers on days the table lacks without building those days for everyone.

Cancellations only decide who is active; they never feed a feature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features import contract
from features.catalog import (
    BILLING_CYCLES,
    CATEGORIES,
    CRITICAL_PATH,
    CYCLE_TOLERANCE,
    EWM_HALF_LIVES,
    EWM_RATIOS,
    FEATURES,
    KEY_COLUMNS,
    LOGIN_SHARES,
    MILESTONE_TARGET_DAYS,
    TIERS,
    USAGE_WINDOWS,
)
from features.contract import CORE_FEATURES, MILESTONE_TYPES, SOUTHERN_HEMISPHERE_COUNTRIES
from features.health import add_health
from features.history import HISTORY_START_SQL, LONGEST_WINDOW_DAYS

_TIER_LIST = "[" + ", ".join(f"'{t}'" for t in TIERS) + "]"
TIER_RANK = "list_position(" + _TIER_LIST + ", {}) - 1"


@dataclass(frozen=True)
class Cadence:
    """Which days get feature rows: weekly over the history (the Sundays, so rows are stamped
    on Mondays 00:00 UTC), daily over the last ``recent_days`` days, and any extra days."""

    history_every_days: int = 7
    recent_days: int = 35

    def days(self, first: date, last: date, extra: Iterable[date] = ()) -> list[date]:
        if self.history_every_days < 1 or self.recent_days < 0:
            raise ValueError("history_every_days must be >= 1 and recent_days >= 0")
        sunday = first + timedelta(days=(6 - first.weekday()) % 7)
        history = [
            sunday + timedelta(days=k)
            for k in range(0, (last - sunday).days + 1, self.history_every_days)
        ]
        recent = [last - timedelta(days=k) for k in range(self.recent_days)]
        chosen = {d for d in (*history, *recent, *extra) if first <= d <= last}
        return sorted(chosen)


def data_span(con: duckdb.DuckDBPyConnection) -> tuple[date, date]:
    """First signup day and the last day any table has data for."""
    first, last = con.execute("""
        select (select min(signup_at)::date from suppliers),
               greatest((select max(date) from activity_daily),
                        (select max(date) from feature_usage_daily),
                        (select max(date) from clients_daily),
                        (select max(created_at)::date from support_tickets),
                        (select max(resolved_at)::date from support_tickets),
                        (select max(occurred_at)::date from billing_events),
                        (select max(achieved_at)::date from milestones),
                        (select max(cancelled_at)::date from cancellations),
                        (select max(signup_at)::date from suppliers))
    """).fetchone()
    return first, last


Source = Mapping[str, pa.Table | pd.DataFrame] | Path
_DUCK_TYPE = {"string": "varchar", "int64": "bigint", "double": "double", "date32[day]": "date"}


def connect(source: Source, threads: int = 2) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the contract tables as ``suppliers``, ``activity_daily``, ...

    ``source`` is either validated tables (registered without a copy) or a folder of validated
    contract files, scanned by DuckDB itself so that large data never sits in Python.

    Contract timestamps are UTC; DuckDB gets them as plain timestamps holding the same UTC
    instants (time-zone support would need DuckDB's ICU extension, which is not installable
    offline), and results are stamped UTC again on the way out.
    """
    con = duckdb.connect(config={"threads": threads})
    if isinstance(source, Path):
        for spec in contract.TABLES:
            path = source / f"{spec.name}.parquet"
            if not path.exists():
                con.register(spec.name, _naive_utc(spec.schema.empty_table()))
                continue
            cols = ", ".join(
                f"cast({c} as {'timestamp' if pa.types.is_timestamp(t) else _DUCK_TYPE[str(t)]})"
                f" as {c}"
                for c, t in spec.columns
            )
            con.execute(f"create view {spec.name} as select {cols} from read_parquet('{path}')")
        return con
    for name, table in source.items():
        if isinstance(table, pd.DataFrame):
            table = pa.Table.from_pandas(table, preserve_index=False)
        con.register(name, _naive_utc(table))
    return con


def _naive_utc(table: pa.Table) -> pa.Table:
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            table = table.set_column(i, f.name, table.column(i).cast(pa.timestamp(f.type.unit)))
    return table


def _q(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# Running totals per supplier, in day order (the smaller source tables' window). Running sums
# of integer counts are cast to bigint: DuckDB sums them as 128-bit integers, which reach pandas
# as Python Decimal objects (converting those took half of a feature build).
_RUNNING = """window w as (partition by supplier_id order by day
                 rows between unbounded preceding and current row)"""
# The contract's "active at t" for a relation ``s`` holding signup_at and cancelled_at: signed
# up at or before t, and no cancellation at or before t.
ACTIVE_AT = "s.signup_at <= {t} and (s.cancelled_at is null or s.cancelled_at > {t})"


@dataclass(frozen=True)
class RunningTotals:
    """A table of running totals made in Python rather than by a DuckDB window: ``daily`` gives
    one row per supplier and day; ``name`` gets, per such row, ``c_<col>`` the supplier's sum of
    each of ``sums`` up to that day (cast to its Arrow type) and, with ``last_day = (col, out)``,
    ``out``: the last day on which ``col`` was positive (null before the first)."""

    name: str
    daily: str
    sums: Mapping[str, pa.DataType]
    last_day: tuple[str, str] | None = None


def _running_specs(cutoff: date | None = None) -> list[RunningTotals]:
    """The two big running tables: daily logins (with their exponentially weighted sums, weights
    ``2 ** ((day - signup_day) / h)``) and daily use of each core feature."""
    ew = {f"ew_{h}": pa.float64() for h in EWM_HALF_LIVES}
    activity = f"""
    select a.supplier_id, a.day, a.logins, a.minutes, (a.logins > 0)::integer as active_day,
           {
        ", ".join(
            f"a.logins * pow(2, (a.day - s.signup_day) / {h}.0) as ew_{h}" for h in EWM_HALF_LIVES
        )
    }
    from act_day a join sup s using (supplier_id)
    """
    CORE = CORE_FEATURES
    usage = f"""
    select supplier_id, date as day,
           {", ".join(f"max((feature_key = '{f}')::integer) as used_{f}" for f in CORE_FEATURES)},
           {", ".join(f"max(uses) filter (where feature_key = '{f}') as uses_{f}" for f in CORE)}
    from feature_usage_daily where {_after(cutoff, "date")} group by all
    """
    # running counts of days (at most the history's length) and of feature uses fit in 32 bits
    counts = {"logins": pa.int64(), "minutes": pa.float64(), "active_day": pa.int32()}
    return [
        RunningTotals(
            "cum_act", activity, {**counts, **ew}, last_day=("active_day", "last_login_day")
        ),
        RunningTotals(
            "cum_use",
            usage,
            {f"{kind}_{f}": pa.int32() for kind in ("used", "uses") for f in CORE_FEATURES},
        ),
    ]


def _running_table(
    con: duckdb.DuckDBPyConnection, spec: RunningTotals, grid: str, seeded: bool = False
) -> pa.Table:
    """``spec``'s running totals of the suppliers in ``grid``: ``sid``, ``day`` and the sums,
    sorted by supplier number and day.

    The rows come out of DuckDB sorted, and each supplier's sums are one sequential pass
    (:mod:`features.running`), where a DuckDB window aggregate took several times as long per
    column. When ``seeded``, each supplier's pass starts from its latest state row (the sums so
    far, ``state_<name>``), adding the days after it in the same order a pass over the whole
    history would, so the sums are those of that pass to the last bit; its other state rows
    are kept as they are.
    """
    from features.running import segmented_cumsum, segmented_last_where

    seeds = ""
    if seeded:
        out = f", st.{spec.last_day[1]} as _seed_last" if spec.last_day else ""
        seeds = f"""
        union all by name
        select s.sid, st.day, {", ".join(f"st.c_{n} as {n}" for n in spec.sums)}{out},
               true as _seed
        from state_{spec.name} st join sup s using (supplier_id)
        where s.sid in (select sid from {grid})
        qualify row_number() over (partition by s.sid order by st.day desc) = 1"""
    table = con.sql(f"""
        select * from (
            select s.sid, d.* exclude (supplier_id)
            from ({spec.daily}) d join sup s using (supplier_id)
            where s.sid in (select sid from {grid})
            {seeds})
        order by sid, day
    """).to_arrow_table()
    sid = table.column("sid").to_numpy()
    first = np.ones(len(sid), bool)
    first[1:] = sid[1:] != sid[:-1]
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "sid": table.column("sid"),
        "day": table.column("day"),
    }
    if spec.last_day is not None:
        column, out = spec.last_day
        day = table.column("day").cast(pa.int32()).to_numpy().astype(np.int64)
        positive = pc.fill_null(table.column(column), 0).to_numpy() > 0
        if seeded:  # a seed row holds the last such day so far
            seed = table.column("_seed").is_valid().to_numpy(zero_copy_only=False)
            seed_last = table.column("_seed_last").cast(pa.int32()).to_numpy(zero_copy_only=False)
            seed_last = np.nan_to_num(seed_last.astype(np.float64), nan=-1).astype(np.int64)
            day = np.where(seed, seed_last, day)
            positive = np.where(seed, seed_last >= 0, positive)
        last = segmented_last_where(day, positive, first)
        columns[out] = pa.array(last.astype(np.int32), mask=last < 0).cast(pa.date32())
        del day, positive, last
    # one column at a time, each source column released once summed: the peak holds the
    # sorted rows and the sums, not a second and third copy of every column
    for name, kind in spec.sums.items():
        dtype = np.float64 if pa.types.is_floating(kind) else np.int64
        values = pc.fill_null(table.column(name), 0).to_numpy().astype(dtype, copy=False)
        table = table.drop_columns([name])
        running = segmented_cumsum(values.reshape(-1, 1), first)[:, 0]
        del values
        columns[f"c_{name}"] = pa.array(running, kind)
    result = pa.table(columns)
    if seeded:  # the older state rows, as they are
        older = con.sql(f"""
            select s.sid, st.* exclude (supplier_id)
            from state_{spec.name} st join sup s using (supplier_id)
            where s.sid in (select sid from {grid})
            qualify row_number() over (partition by s.sid order by st.day desc) > 1
        """).to_arrow_table()
        if older.num_rows:
            older = older.select(result.column_names).cast(result.schema)
            result = pa.concat_tables([result, older])
            result = result.sort_by([("sid", "ascending"), ("day", "ascending")])
    return result.combine_chunks()


def _after(cutoff: date | None, column: str) -> str:
    """The SQL condition: ``column`` (a date) is after ``cutoff`` (always, without one)."""
    return "true" if cutoff is None else f"{column} > date '{cutoff.isoformat()}'"


def _seed(cutoff: date | None, name: str, columns: str) -> str:
    """The rows of ``state_<name>`` (see :class:`RunningState`) as rows of a daily table whose
    values are the running totals so far: a running aggregate over them and the days after the
    cutoff continues the totals. Nothing without a cutoff."""
    if cutoff is None:
        return ""
    return f"union all by name select supplier_id, day, {columns} from state_{name}"


def _sources_sql(cutoff: date | None = None) -> list[str]:
    """The daily login totals (shared by the running totals and the cohort means' events) and
    the smaller running tables, made by DuckDB windows.

    With a ``cutoff``, only the days after it are read from the contract tables, and each
    running table starts from its state rows (``state_<table>``, :class:`RunningState`)."""
    act_day = f"""
    create temp table act_day as
    select supplier_id, date as day, sum(logins)::integer as logins,
           coalesce(sum(session_minutes), 0) as minutes
    from activity_daily where {_after(cutoff, "date")} group by all
    """
    ticket_cols = [
        "tickets_created",
        "tickets_resolved",
        "resolution_hours",
        "rating_sum",
        "ratings",
        "bad_ratings",
    ]
    tickets = f"""
    create temp table cum_tix as
    select supplier_id, day, {
        ", ".join(
            f"(sum({c}) over w)::{'double' if c == 'resolution_hours' else 'bigint'} as c_{c}"
            for c in ticket_cols
        )
    }
    from (select supplier_id, day, {
        ", ".join(
            f"coalesce(sum({c}), 0)::{'double' if c == 'resolution_hours' else 'integer'} as {c}"
            for c in ticket_cols
        )
    }
          from (select supplier_id, created_at::date as day, 1 as tickets_created
                from support_tickets
                union all by name
                select supplier_id, resolved_at::date as day, 1 as tickets_resolved,
                       epoch(resolved_at - created_at) / 3600.0 as resolution_hours
                from support_tickets where resolved_at is not null
                union all by name
                -- a rating is known once the ticket is resolved (or when given, if never is)
                select supplier_id, coalesce(resolved_at, created_at)::date as day,
                       satisfaction_rating as rating_sum, 1 as ratings,
                       (satisfaction_rating <= 2)::integer as bad_ratings
                from support_tickets where satisfaction_rating is not null)
          where {_after(cutoff, "day")}
          group by all
          {_seed(cutoff, "cum_tix", ", ".join(f"c_{c} as {c}" for c in ticket_cols))})
    {_RUNNING}
    """
    bill_kinds = {
        "payments_failed": "payment_failed",
        "card_expiring": "card_expiring",
        "downgrades": "plan_downgraded",
        "upgrades": "plan_upgraded",
        "refunds": "refund",
    }
    priced = "event_type in ('payment_succeeded', 'plan_upgraded', 'plan_downgraded')"
    bill_seed = ", ".join(f"c_{c} as {c}" for c in bill_kinds) + (
        ", last_failed_at as failed_at, last_succeeded_at as succeeded_at, price"
    )
    billing = f"""
    create temp table cum_bill as
    select supplier_id, day,
           {", ".join(f"(sum({c}) over w)::bigint as c_{c}" for c in bill_kinds)},
           max(failed_at) over w as last_failed_at,
           max(succeeded_at) over w as last_succeeded_at,
           last_value(price ignore nulls) over w as price
    from (select supplier_id, occurred_at::date as day,
                 {
        ", ".join(
            f"sum((event_type = '{k}')::integer)::integer as {c}" for c, k in bill_kinds.items()
        )
    },
                 max(occurred_at) filter (where event_type = 'payment_failed') as failed_at,
                 max(occurred_at) filter (where event_type = 'payment_succeeded')
                     as succeeded_at,
                 arg_max(amount, occurred_at) filter (where {priced}) as price
          from billing_events where {_after(cutoff, "occurred_at::date")} group by all
          {_seed(cutoff, "cum_bill", bill_seed)})
    {_RUNNING}
    """
    milestones = f"""
    create temp table cum_ms as
    select supplier_id, day, {
        ", ".join(f"max(ms_{m}) over w as c_ms_{m}" for m in MILESTONE_TYPES)
    }
    from (select supplier_id, achieved_at::date as day,
                 {
        ", ".join(f"max((milestone_type = '{m}')::integer) as ms_{m}" for m in MILESTONE_TYPES)
    }
          from milestones where {_after(cutoff, "achieved_at::date")} group by all
          {_seed(cutoff, "cum_ms", ", ".join(f"c_ms_{m} as ms_{m}" for m in MILESTONE_TYPES))})
    {_RUNNING}
    """
    # successful payments, each with the mean interval between the supplier's payments so far
    # (the billing cycle's evidence; a retried payment shifts one interval, not the mean)
    payments = f"""
    create temp table pay_ok as
    select supplier_id, day, pay_day, c_pays, first_pay_day,
           case when c_pays > 1 then (pay_day - first_pay_day) / (c_pays - 1) end
               as mean_pay_interval
    from (select supplier_id, day, max(pay_day) over w as pay_day,
                 (sum(pays) over w)::bigint as c_pays, min(first_pay) over w as first_pay_day
          from (select supplier_id, day, day as pay_day, 1 as pays, day as first_pay
                from (select distinct supplier_id, occurred_at::date as day from billing_events
                      where event_type = 'payment_succeeded'
                            and {_after(cutoff, "occurred_at::date")})
                {_seed(cutoff, "pay_ok", "pay_day, c_pays as pays, first_pay_day as first_pay")})
          {_RUNNING})
    """
    clients = f"""
    create temp table cum_cli as
    select supplier_id, date as day, max(total_clients) as total_clients,
           max(active_clients_30d) as active_clients_30d
    from clients_daily where {_after(cutoff, "date")} group by all
    {_seed(cutoff, "cum_cli", "total_clients, active_clients_30d")}
    """
    return [act_day, tickets, billing, payments, milestones, clients]


# Per source: its cumulative table, the columns to look up and the look-back days (0: the grid
# day itself); see _look_up.
_LOOKUPS: dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]] = {
    "a": (
        "cum_act",
        (
            "c_logins",
            "c_minutes",
            "c_active_day",
            *[f"c_ew_{h}" for h in EWM_HALF_LIVES],
            "last_login_day",
        ),
        (0, 7, 30, 60, 90),
    ),
    "u": ("cum_use", tuple(f"c_used_{f}" for f in CORE_FEATURES), (0, 30, 60)),
    "v": ("cum_use", tuple(f"c_uses_{f}" for f in CORE_FEATURES), (0, *USAGE_WINDOWS)),
    "p": ("pay_ok", ("pay_day", "mean_pay_interval"), (0,)),
    "t": (
        "cum_tix",
        (
            "c_tickets_created",
            "c_tickets_resolved",
            "c_resolution_hours",
            "c_rating_sum",
            "c_ratings",
            "c_bad_ratings",
        ),
        (0, 30, 90),
    ),
    "b": (
        "cum_bill",
        (
            "c_payments_failed",
            "c_card_expiring",
            "c_downgrades",
            "c_upgrades",
            "c_refunds",
            "last_failed_at",
            "last_succeeded_at",
            "price",
        ),
        (0, 30, 90),
    ),
    "m": ("cum_ms", tuple(f"c_ms_{m}" for m in MILESTONE_TYPES), (0,)),
    "k": ("cum_cli", ("total_clients", "active_clients_30d"), (0, 30)),
}


# The longest look-back of a lookup: a build of days from d on reads no running total dated
# before d - LOOK_BACK_DAYS, except the logins before a billing period (see RunningState).
LOOK_BACK_DAYS = max(k for _, _, offsets in _LOOKUPS.values() for k in offsets)


def state_cutoff(first_day: date) -> date:
    """The latest cutoff of a :class:`RunningState` a build of days from ``first_day`` on can
    start from: the day before its earliest look-back."""
    return first_day - timedelta(days=LOOK_BACK_DAYS + 1)


@dataclass(frozen=True)
class RunningState:
    """Where each running table of the suppliers stood at the end of day ``cutoff``, so that a
    build of later days need not read the days before it (see :func:`state_cutoff`).

    ``tables`` holds, per running table (``cum_act``, ``pay_ok``, ...), rows of that table as
    a build over the whole history makes them (``supplier_id``, ``day`` and its columns): each
    supplier's latest row on or before ``cutoff``, which every lookup after the cutoff that
    finds no later row matches, and for ``cum_act`` also its latest row before the day of its
    last payment on or before ``cutoff`` (where the logins of its billing period start).
    A build from this state continues each running total from the supplier's latest row.
    """

    cutoff: date
    tables: Mapping[str, pa.Table]


def _sorted_source(
    con: duckdb.DuckDBPyConnection, table: str, grid: str, cutoff: date | None = None
) -> pa.Table:
    """A lookup source's rows of the suppliers in ``grid``, sorted by supplier number and day:
    running totals made in Python, or one of the smaller tables made by :func:`_sources_sql`
    (from the state at ``cutoff``, when given)."""
    running = {spec.name: spec for spec in _running_specs(cutoff)}
    if table in running:
        return _running_table(con, running[table], grid, seeded=cutoff is not None)
    return (
        con.sql(f"""
        select s.sid, c.* exclude (supplier_id)
        from {table} c join sup s using (supplier_id)
        where s.sid in (select sid from {grid})
        order by s.sid, c.day
    """)
        .to_arrow_table()
        .combine_chunks()
    )


def _store(con: duckdb.DuckDBPyConnection, name: str, rows: pa.Table, create: bool) -> None:
    """Copy ``rows`` into DuckDB's temp table ``name`` (made by the first part), out of Python's
    memory into DuckDB's (spilled beyond its limit)."""
    con.register("_part", rows)
    if create:
        con.execute(f"create or replace temp table {name} as select * from _part")
    else:
        con.execute(f"insert into {name} select * from _part")
    con.unregister("_part")


def _look_up(
    con: duckdb.DuckDBPyConnection,
    grid: str = "grid",
    part_rows: int = 1_000_000,
    cutoff: date | None = None,
    checkpoint: date | None = None,
) -> dict[str, pa.Table]:
    """``look_<alias>`` for each source of :data:`_LOOKUPS`: its running values at each row of
    ``grid`` at the look-back days (``<column>__<days back>``), as an ASOF join would match them
    (the supplier's latest row on or before the day; null before the first); and ``look_q``: the
    logins before the current billing period, the login total on the day before the last
    successful payment (rows with a payment only).

    Each source is sorted once, and the matches are binary searches over its (supplier, day)
    keys (:func:`features.running.asof_positions`), a few seconds where DuckDB's ASOF joins
    of every (row, look-back) pair took minutes; the grid goes in parts of ``part_rows`` rows
    so that only one part's looked-up columns are in Python's memory at a time.

    With a ``cutoff``, the sources start from the state at it (see :class:`RunningState`);
    with a ``checkpoint``, returns the state's tables at that day (else nothing).
    """
    from features.running import asof_positions, day_keys

    rows = con.sql(f"select rid, sid, day from {grid} order by rid").to_arrow_table()
    rid = rows.column("rid").combine_chunks()
    sid = rows.column("sid").to_numpy()
    day = rows.column("day").cast(pa.int32()).to_numpy()
    del rows
    aliases: dict[str, list[str]] = {}
    for alias, (table, _, _) in _LOOKUPS.items():
        aliases.setdefault(table, []).append(alias)
    pay_day: list[pa.Array] = []
    state: dict[str, pa.Table] = {}
    sids = np.unique(sid)
    # the payments first: the logins before the period need each row's last payment day
    for table in sorted(aliases, key=lambda t: t != "pay_ok"):
        source = _sorted_source(con, table, grid, cutoff)
        keys = day_keys(
            source.column("sid").to_numpy(), source.column("day").cast(pa.int32()).to_numpy()
        )
        if checkpoint is not None:
            state[table] = _state_rows(source, keys, sids, checkpoint, state.get("pay_ok"))
        for alias in aliases[table]:
            _, columns, offsets = _LOOKUPS[alias]
            for start in range(0, max(len(sid), 1), part_rows):
                part = slice(start, start + part_rows)
                looked: dict[str, pa.Array] = {"rid": rid[part]}
                for k in offsets:
                    pos = asof_positions(keys, day_keys(sid[part], day[part] - k))
                    match = pa.array(pos, mask=pos < 0)
                    for c in columns:
                        looked[f"{c}__{k}"] = source.column(c).take(match)
                if alias == "p":
                    pay_day.append(looked["pay_day__0"].combine_chunks())
                _store(con, f"look_{alias}", pa.table(looked), create=start == 0)
        if table == "cum_act":
            paid = pa.concat_arrays(pay_day) if pay_day else pa.array([], pa.date32())
            has = paid.is_valid().to_numpy(zero_copy_only=False)
            before = paid.filter(has).cast(pa.int32()).to_numpy() - 1
            pos = asof_positions(keys, day_keys(sid[has], before))
            logins = source.column("c_logins").take(pa.array(pos, mask=pos < 0))
            period = {"rid": rid.filter(has), "logins_before_period": pc.fill_null(logins, 0)}
            _store(con, "look_q", pa.table(period), create=True)
        del source, keys
        pa.default_memory_pool().release_unused()
    if state:
        ids = con.sql("select supplier_id from sup order by sid").to_arrow_table().column(0)
        for table, rows in state.items():
            supplier_id = ids.take(pa.array(rows.column("sid").to_numpy() - 1))
            state[table] = rows.drop_columns(["sid"]).add_column(0, "supplier_id", supplier_id)
    return state


def _state_rows(
    source: pa.Table, keys: np.ndarray, sids: np.ndarray, checkpoint: date, pay: pa.Table | None
) -> pa.Table:
    """The rows of a sorted source that make its :class:`RunningState` at ``checkpoint`` (for
    ``cum_act``, ``pay`` is the payments' state: the logins before each last payment)."""
    from features.running import asof_positions, day_keys

    day = (checkpoint - date(1970, 1, 1)).days
    pos = asof_positions(keys, day_keys(sids, np.full(len(sids), day)))
    if pay is not None and "c_logins" in source.column_names and pay.num_rows:
        paid = pay.column("pay_day").cast(pa.int32()).to_numpy() - 1
        before = asof_positions(keys, day_keys(pay.column("sid").to_numpy(), paid))
        pos = np.concatenate([pos, before])
    return source.take(pa.array(np.unique(pos[pos >= 0])))


def _covered(k: int) -> str:
    """Whether the ``k`` days up to the grid day lie inside the export's event history: the
    supplier signed up on or after its start, or the window begins on or after it (see
    :mod:`features.history`). An uncovered window's count is missing, never a zero."""
    return f"(not g.pre_history or g.day - {k} >= g.history_start - 1)"


# A lifetime count (ever used, milestones reached) is known only for suppliers who signed up
# inside the history.
_LIFETIME_KNOWN = "(not g.pre_history)"


def _win(src: str, col: str, k: int, upper: int = 0) -> str:
    """Events of ``col`` in the days (d - k, d - upper] from source alias prefix ``src``;
    null when the window is not covered."""
    return (
        f"(case when {_covered(k)} then coalesce({src}.c_{col}__{upper}, 0)"
        f" - coalesce({src}.c_{col}__{k}, 0) end)"
    )


def _ratio_or_zero(numerator: str, denominator: str) -> str:
    """``numerator / denominator``; 0 when the denominator is 0; null when it is unknown."""
    return (
        f"case when ({denominator}) is null then null when ({denominator}) > 0"
        f" then ({numerator}) / ({denominator}) else 0 end"
    )


def _snap_cycle(interval: str) -> str:
    """The billing cycle a mean interval between payments reads as (the nearest of
    :data:`BILLING_CYCLES` within :data:`CYCLE_TOLERANCE`, else the interval itself)."""
    cases = " ".join(
        f"when abs(({interval}) - {c}) <= {CYCLE_TOLERANCE} * {c} then {c}.0"
        for c in BILLING_CYCLES
    )
    return f"case {cases} else ({interval})::double end"


# The three features the cohort averages are taken of, and what they need to be computed: one
# definition for the feature table and for the cohort of an on-demand computation.
_USED_30D = " + ".join(f"({_win('u', f'used_{f}', 30)} > 0)::integer" for f in CORE_FEATURES)
_COHORT_INPUTS = f"""{_win("a", "logins", 30)} as logins_30d, {_USED_30D} as features_used_30d,
        case when coalesce(k.total_clients__0, 0) > 0
             then k.active_clients_30d__0 / k.total_clients__0 end as active_client_ratio"""


def _features_sql() -> str:
    joins = "\n".join(f"join look_{a} {a} using (rid)" for a in _LOOKUPS)
    joins += "\nleft join look_q q using (rid)"

    stage = {
        f: f"""case when {_win("u", f"used_{f}", 30)} is null then null
                 when coalesce(u.c_used_{f}__0, 0) = 0
                     then case when {_LIFETIME_KNOWN} then 'never_used' end
                 when {_win("u", f"used_{f}", 30)} = 0 then 'churned'
                 when {_win("u", f"used_{f}", 30)} <= 3 then 'trial'
                 when {_win("u", f"used_{f}", 30)} <= 11 then 'adopting'
                 else 'power_user' end"""
        for f in CORE_FEATURES
    }
    used_prev = " + ".join(
        f"({_win('u', f'used_{f}', 60, upper=30)} > 0)::integer" for f in CORE_FEATURES
    )
    used_ever = (
        f"case when {_LIFETIME_KNOWN} then "
        + " + ".join(f"(coalesce(u.c_used_{f}__0, 0) > 0)::integer" for f in CORE_FEATURES)
        + " end"
    )
    # a pre-history supplier's rates are missing until the longest window is inside the data
    rate = {
        h: f"(case when {_covered(LONGEST_WINDOW_DAYS)} then"
        f" (1 - pow(2, -1 / {h}.0)) * coalesce(a.c_ew_{h}__0, 0)"
        f" * pow(2, -(g.day - g.signup_day) / {h}.0) end)"
        for h in EWM_HALF_LIVES
    }
    ewm = ", ".join(f"{rate[h]} as login_ewm_rate_{h}d" for h in EWM_HALF_LIVES)
    # 0 without any login: no recent activity relative to none is as low as the ratio goes
    ewm_ratio = ", ".join(
        f"{_ratio_or_zero(rate[short], rate[long])} as login_ewm_ratio_{short}d_{long}d"
        for short, long in EWM_RATIOS
    )
    login_share = ", ".join(
        f"{_ratio_or_zero(_win('a', 'logins', recent), _win('a', 'logins', whole))}"
        f" as logins_{recent}d_share_of_{whole}d"
        for recent, whole in LOGIN_SHARES
    )
    achieved = {m: f"(coalesce(m.c_ms_{m}__0, 0) > 0)" for m in MILESTONE_TYPES}
    # a milestone not in the data is late only if it could have been recorded
    behind = ", ".join(
        f"case when {achieved[m]} then 0 when {_LIFETIME_KNOWN}"
        f" then greatest(0, g.day - g.signup_day - {t}) end as {m}_days_behind"
        for m, t in MILESTONE_TARGET_DAYS.items()
    )
    uses = {(f, w): _win("v", f"uses_{f}", w) for f in CORE_FEATURES for w in USAGE_WINDOWS}
    usage = ", ".join(
        [f"{uses[f, w]} as {f}_uses_{w}d" for f in CORE_FEATURES for w in USAGE_WINDOWS]
        + [
            # the 30-day rate against the 90-day one: 3 when all use is recent, 0 when none is
            f"case when {uses[f, 90]} > 0 then 3.0 * {uses[f, 30]} / {uses[f, 90]} end"
            f" as {f}_uses_trend"
            for f in CORE_FEATURES
        ]
    )
    days_since_pay = "(g.day - p.pay_day__0)"
    cycle = _snap_cycle("p.mean_pay_interval__0")
    period_logins = "(coalesce(a.c_logins__0, 0) - q.logins_before_period)"
    renewal = f"""({cycle}) as billing_cycle_days,
        {days_since_pay}::double as days_since_last_payment,
        ({cycle}) - {days_since_pay} as days_to_next_renewal,
        {period_logins}::double as logins_this_period"""
    logins_prev = _win("a", "logins", 60, upper=30)
    return f"""
    create temp table feat as
    select g.supplier_id, g.event_timestamp, g.day, g.vendor_type, g.hemisphere,
        g.day - a.last_login_day__0 as days_since_last_login,
        {_COHORT_INPUTS},
        {_win("a", "logins", 7)} as logins_7d, {_win("a", "logins", 90)} as logins_90d,
        {_win("a", "active_day", 7)} as active_days_7d,
        {_win("a", "active_day", 30)} as active_days_30d,
        {_win("a", "active_day", 90)} as active_days_90d,
        {_win("a", "minutes", 30)} as session_minutes_30d,
        {_win("a", "logins", 30)} - {logins_prev} as logins_30d_change,
        ({_win("a", "logins", 30)} + 1.0) / ({logins_prev} + 1.0) as logins_30d_ratio_prev_30d,
        {ewm},
        {ewm_ratio},
        {login_share},
        {", ".join(f"{stage[f]} as {f}_stage" for f in CORE_FEATURES)},
        {", ".join(f"{_win('u', f'used_{f}', 30)} as {f}_days_30d" for f in CORE_FEATURES)},
        {used_ever} as features_used_ever,
        {used_prev} as features_used_prev_30d,
        ({_USED_30D}) - ({used_prev}) as feature_breadth_trend,
        {usage},
        case when k.total_clients__0 is not null or {_LIFETIME_KNOWN}
             then coalesce(k.total_clients__0, 0) end as total_clients,
        case when k.total_clients__0 is not null or {_LIFETIME_KNOWN}
             then coalesce(k.active_clients_30d__0, 0) end as active_clients_30d,
        case when k.total_clients__30 is not null or {_LIFETIME_KNOWN}
             then greatest(coalesce(k.total_clients__0, 0) - coalesce(k.total_clients__30, 0), 0)
        end as new_clients_30d,
        {_win("t", "tickets_created", 30)} as tickets_30d,
        {_win("t", "tickets_created", 90)} as tickets_90d,
        case when {_win("t", "ratings", 90)} > 0
             then {_win("t", "rating_sum", 90)} / {_win("t", "ratings", 90)} end
            as mean_satisfaction_90d,
        {_win("t", "bad_ratings", 90)} as bad_ratings_90d,
        coalesce(t.c_tickets_created__0, 0) - coalesce(t.c_tickets_resolved__0, 0) as open_tickets,
        case when {_win("t", "tickets_resolved", 90)} > 0
             then {_win("t", "resolution_hours", 90)} / {_win("t", "tickets_resolved", 90)} end
            as mean_resolution_hours_90d,
        {_win("b", "payments_failed", 30)} as failed_payments_30d,
        {_win("b", "payments_failed", 90)} as failed_payments_90d,
        (b.last_failed_at__0 is not null and (b.last_succeeded_at__0 is null
            or b.last_failed_at__0 > b.last_succeeded_at__0))::integer
            as unresolved_payment_failure,
        {_win("b", "card_expiring", 30)} as card_expiring_30d,
        {_win("b", "downgrades", 90)} as downgrades_90d,
        {_win("b", "upgrades", 90)} as upgrades_90d,
        {_win("b", "refunds", 90)} as refunds_90d,
        {renewal},
        case when {_LIFETIME_KNOWN} then {" + ".join(f"{a}::integer" for a in achieved.values())}
        end as milestones_achieved,
        case when {_LIFETIME_KNOWN}
             then ({" + ".join(f"{achieved[m]}::integer" for m in CRITICAL_PATH)})
                  / {len(CRITICAL_PATH)}.0 end as critical_path_completion,
        {behind},
        sin(2 * pi() * g.season_day / 365.25) as season_sin,
        cos(2 * pi() * g.season_day / 365.25) as season_cos,
        g.day - g.signup_day as tenure_days,
        {_TIER_LIST}[(1 + least({len(TIERS) - 1}, greatest(0,
            g.tier_now - (coalesce(tot.c_upgrades, 0) - coalesce(b.c_upgrades__0, 0))
            + (coalesce(tot.c_downgrades, 0) - coalesce(b.c_downgrades__0, 0)))))::bigint]
            as subscription_tier,
        b.price__0 as monthly_revenue
    from grid g
    {joins}
    left join (select supplier_id, arg_max(c_upgrades, day) as c_upgrades,
                      arg_max(c_downgrades, day) as c_downgrades
               from cum_bill group by all) tot on tot.supplier_id = g.supplier_id
    """


_COHORT_SQL = """
    create temp table cohort as
    select day, vendor_type, hemisphere, avg(logins_30d) as cohort_logins_30d,
           avg(features_used_30d) as cohort_features_30d,
           avg(active_client_ratio) as cohort_client_ratio
    from {rows} group by all
"""
_OUTPUT_SQL = """
    select f.*,
      f.logins_30d / nullif(c.cohort_logins_30d, 0) as logins_30d_vs_cohort,
      f.features_used_30d / nullif(c.cohort_features_30d, 0) as features_used_30d_vs_cohort,
      f.active_client_ratio / nullif(c.cohort_client_ratio, 0)
          as active_client_ratio_vs_cohort,
      c.cohort_logins_30d
    from feat f join cohort c using (day, vendor_type, hemisphere)
"""


# The first grid day on which an instant has passed: ``(d + 1)::timestamp >= at``. A supplier is
# active on days [first_day(signup_at), first_day(cancelled_at)), as ACTIVE_AT defines it.
_FIRST_DAY = "({at}::date - (({at}) = date_trunc('day', {at}))::integer)"


def _cohort_by_events_sql() -> list[str]:
    """``cohort``: the three cohort means of every day of ``pair_days``, as the full table's
    grid would average them over all active suppliers, computed from events instead of from a
    row per supplier and day.

    Each source row adds its value to the days it counts on (a login on day t counts in the 30
    days [t, t + 30); a feature used on t counts until its next use or 30 days; a client
    snapshot holds until the next one), clipped to its supplier's active days; a running sum of
    those additions and removals per cohort gives every day's total at once. The means divide by
    the active suppliers (or, for the client ratio, those with clients) of each cohort and day.
    """
    first = _FIRST_DAY.format(at="signup_at")
    end = f"coalesce({_FIRST_DAY.format(at='cancelled_at')}, date '9999-12-31')"
    return [
        f"""create temp table span as
            select supplier_id, vendor_type, hemisphere, {first} as first_day, {end} as end_day
            from sup""",
        # one row per piece: cohort, [lo, hi), and what it adds to each measure
        f"""create temp table pieces as
            with logins as (select supplier_id, day, logins::bigint as x from act_day
                            where logins > 0),
            -- a repeated (supplier, day, feature) row gets an empty piece (its next use is the
            -- same day), dropped below: no need to make the rows distinct first
            uses as (
                select supplier_id, date as day,
                       lead(date) over (partition by supplier_id, feature_key order by date)
                           as next_day
                from feature_usage_daily where feature_key in ({_q(CORE_FEATURES)})),
            clients as (
                select supplier_id, day,
                       lead(day) over (partition by supplier_id order by day) as next_day,
                       case when coalesce(total_clients, 0) > 0
                            then active_clients_30d / total_clients end as ratio
                from cum_cli)
            select s.vendor_type, s.hemisphere, greatest(e.lo, s.first_day) as lo,
                   least(e.hi, s.end_day) as hi, e.logins, e.used, e.ratio, e.with_ratio,
                   e.member
            from (
                select supplier_id, day as lo, day + 30 as hi, x as logins, 0 as used,
                       0::double as ratio, 0 as with_ratio, 0 as member from logins
                union all
                select supplier_id, day, least(day + 30, coalesce(next_day, day + 30)), 0, 1,
                       0::double, 0, 0 from uses
                union all
                select supplier_id, day, coalesce(next_day, date '9999-12-31'), 0, 0, ratio, 1,
                       0 from clients where ratio is not null
                union all
                select supplier_id, first_day, end_day, 0, 0, 0::double, 0, 1 from span
            ) e join span s using (supplier_id)
            where greatest(e.lo, s.first_day) < least(e.hi, s.end_day)""",
        """create temp table cohort_totals as
            with deltas as (
                select vendor_type, hemisphere, day, sum(logins) as logins, sum(used) as used,
                       sum(ratio) as ratio, sum(with_ratio) as with_ratio, sum(member) as member
                from (select vendor_type, hemisphere, lo as day, logins, used, ratio, with_ratio,
                             member from pieces
                      union all
                      select vendor_type, hemisphere, hi, -logins, -used, -ratio, -with_ratio,
                             -member from pieces)
                group by all)
            select vendor_type, hemisphere, day,
                   sum(logins) over w as logins, sum(used) over w as used,
                   sum(ratio) over w as ratio, sum(with_ratio) over w as with_ratio,
                   sum(member) over w as member
            from deltas
            window w as (partition by vendor_type, hemisphere order by day
                         rows between unbounded preceding and current row)""",
        """create temp table cohort as
            select d.day, t.vendor_type, t.hemisphere,
                   t.logins / t.member as cohort_logins_30d,
                   t.used / t.member as cohort_features_30d,
                   case when t.with_ratio > 0 then t.ratio / t.with_ratio end
                       as cohort_client_ratio
            from pair_days d
            cross join (select distinct vendor_type, hemisphere from sup) c
            asof join cohort_totals t
                on t.vendor_type = c.vendor_type and t.hemisphere = c.hemisphere
                and d.day >= t.day
            where t.member > 0""",
    ]


_GRID_SQL = """
    create temp table {name} as
    select row_number() over () as rid, s.*, d.day,
           (d.day + 1)::timestamp as event_timestamp,
           -- days into the wedding year: southern seasons run half a year apart
           (dayofyear(d.day) + case when s.hemisphere = 'southern' then 182 else 0 end)
               % 365 as season_day
    from sup s join {days} d on {on}
"""


def _open(
    source: Source, threads: int, memory_limit: str, state: RunningState | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection with the contract tables, the suppliers (``sup``) and their running totals
    (from ``state``, when given: the days after its cutoff only)."""
    con = connect(source, threads)
    southern = _q(sorted(SOUTHERN_HEMISPHERE_COUNTRIES))
    try:
        con.execute(f"set memory_limit = '{memory_limit}'")
        con.execute(f"""
            create temp table sup as
            with h as (select {HISTORY_START_SQL} as history_start)
            -- sid: the supplier's number, in supplier_id order (the lookups' key)
            select s.supplier_id, (row_number() over (order by s.supplier_id))::integer as sid,
                   s.vendor_type, s.signup_at, s.signup_at::date as signup_day,
                   c.cancelled_at, {TIER_RANK.format("s.subscription_tier")} as tier_now,
                   case when s.country in ({southern}) then 'southern' else 'northern' end
                       as hemisphere,
                   h.history_start, s.signup_at::date < h.history_start as pre_history
            from suppliers s left join cancellations c using (supplier_id) cross join h
        """)
        for name, rows in (state.tables if state else {}).items():
            con.register(f"state_{name}", rows)
        for sql in _sources_sql(state.cutoff if state else None):
            con.execute(sql)
    except BaseException:
        con.close()
        raise
    return con


def _read(
    con: duckdb.DuckDBPyConnection,
    batch_rows: int,
    cohort_of_grid: bool = True,
    cutoff: date | None = None,
    checkpoint: date | None = None,
    keep: Callable[[RunningState], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """The features of ``grid``'s rows with their cohort means: from the grid's own rows when
    ``cohort_of_grid`` (a grid of whole days), else from a ``cohort`` table made beforehand.
    With ``keep``, the running state at ``checkpoint`` is handed to it before the first row."""
    state = _look_up(con, cutoff=cutoff, checkpoint=checkpoint)
    if keep is not None and checkpoint is not None:
        keep(RunningState(checkpoint, state))
    con.execute(_features_sql())
    if cohort_of_grid:
        con.execute(_COHORT_SQL.format(rows="feat"))
    reader = con.sql(_OUTPUT_SQL + " order by f.event_timestamp, f.supplier_id")
    for batch in reader.to_arrow_reader(batch_rows):
        yield _finish(batch.to_pandas())


def iter_feature_batches(
    source: Source,
    days: Iterable[date],
    threads: int = 2,
    memory_limit: str = "4GB",
    batch_rows: int = 250_000,
    *,
    state: RunningState | None = None,
    checkpoint: date | None = None,
    keep: Callable[[RunningState], None] | None = None,
) -> Iterator[pd.DataFrame]:
    """Features of every supplier active at the end of each of ``days``, in batches.

    Args:
        source: validated contract tables by name (see :func:`features.raw_reader.load_raw`),
            or a folder of validated contract files.
        days: grid days; each row is stamped at the end of its day (next midnight, UTC).
        memory_limit: DuckDB's working memory; beyond it DuckDB spills to disk.
        state: the running totals at a cutoff (no later than :func:`state_cutoff` of the first
            day), of the same export: only the days after the cutoff are read.
        checkpoint: with ``keep``, the day at which the running state is handed to ``keep``
            (no earlier than the cutoff of ``state``), before the first batch.

    Raises:
        ValueError: ``state`` is too recent for ``days``.

    Yields:
        Frames with ``supplier_id``, ``event_timestamp`` and every column of
        :data:`features.catalog.FEATURES`, categories as pandas categoricals; rows ordered by
        ``event_timestamp`` then ``supplier_id`` across batches.
    """
    days = sorted(set(days))
    if not days:
        return
    if state is not None and state.cutoff > state_cutoff(days[0]):
        raise ValueError(f"a state at {state.cutoff} cannot build the day {days[0]}")
    if state is not None and checkpoint is not None and checkpoint < state.cutoff:
        raise ValueError(f"a state at {state.cutoff} cannot give the state at {checkpoint}")
    con = _open(source, threads, memory_limit, state)
    try:
        con.register("grid_days", pa.table({"day": pa.array(days, pa.date32())}))
        on = ACTIVE_AT.format(t="(d.day + 1)::timestamp")
        con.execute(_GRID_SQL.format(name="grid", days="grid_days", on=on))
        cutoff = state.cutoff if state else None
        yield from _read(con, batch_rows, cutoff=cutoff, checkpoint=checkpoint, keep=keep)
    finally:
        con.close()


def feature_rows_for(
    source: Source,
    pairs: pd.DataFrame,
    threads: int = 2,
    memory_limit: str = "4GB",
) -> pd.DataFrame:
    """The feature rows of some suppliers on some days only: for each ``(supplier_id, day)`` of
    ``pairs`` whose supplier is active at the end of ``day``, the row the full table of that
    day holds (see :func:`iter_feature_batches`), value for value.

    Every feature of a row depends on its supplier's own history only, except the ``*_vs_cohort``
    ones, which divide by the mean over all suppliers of the same vendor type and hemisphere
    active that day; those means are computed from all suppliers on the pairs' days, with only
    the three features they average. Scoring a few rows spread over many days therefore costs
    far less than building those days for every supplier.

    Args:
        pairs: ``supplier_id`` (string) and ``day`` (date) columns; duplicates are ignored.

    Returns:
        One row per distinct active pair, columns as :func:`build_feature_table`, ordered by
        ``event_timestamp`` then ``supplier_id``.
    """
    missing = {"supplier_id", "day"} - set(pairs.columns)
    if missing:
        raise KeyError(f"pairs need the columns {sorted(missing)}")
    wanted = pa.table(
        {
            "supplier_id": pa.array(pairs["supplier_id"].astype(str), pa.string()),
            "day": pa.array(pd.to_datetime(pairs["day"]).dt.date, pa.date32()),
        }
    )
    con = _open(source, threads, memory_limit)
    try:
        con.register("wanted", wanted)
        con.execute("create temp table pair_days as select distinct day from wanted")
        # the cohort means of those days over all active suppliers, from events
        for sql in _cohort_by_events_sql():
            con.execute(sql)
        # the requested rows themselves
        con.execute("create temp table pair_rows as select distinct supplier_id, day from wanted")
        con.execute(
            _GRID_SQL.format(
                name="grid",
                days="pair_rows",
                on="s.supplier_id = d.supplier_id and "
                + ACTIVE_AT.format(t="(d.day + 1)::timestamp"),
            )
        )
        frames = list(_read(con, 250_000, cohort_of_grid=False))
    finally:
        con.close()
    if not frames:
        return _finish(pd.DataFrame(columns=[*KEY_COLUMNS, "day", *FEATURES]))
    return pd.concat(frames, ignore_index=True)


def build_feature_table(source: Source, days: Iterable[date], threads: int = 2) -> pd.DataFrame:
    """All batches of :func:`iter_feature_batches` in one frame (for small data and tests)."""
    batches = list(iter_feature_batches(source, days, threads))
    if not batches:
        return _finish(pd.DataFrame(columns=[*KEY_COLUMNS, "day", *FEATURES]))
    return pd.concat(batches, ignore_index=True)


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Health factors, column order and dtypes of the catalogue."""
    frame = add_health(frame)
    out = frame[list(KEY_COLUMNS) + list(FEATURES)].copy()
    for name, (_, kind) in FEATURES.items():
        if kind == "category":
            out[name] = pd.Categorical(out[name], categories=CATEGORIES[name])
        elif kind == "int":
            # missing where the export's history does not cover the row (features.history)
            column = pd.to_numeric(out[name])
            out[name] = column.astype("Int64" if column.isna().any() else "int64")
        else:
            out[name] = out[name].astype("float64")
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    return out.reset_index(drop=True)
