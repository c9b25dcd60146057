"""Run the simulation week by week and write a contract folder plus the truth table."""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features import contract
from simulator.dynamics import (
    State,
    Static,
    WeekContext,
    draw,
    initial_state,
    transition,
    weekly_churn_hazard,
)
from simulator.emission import Window, cancel_reason, emit_week
from simulator.files import INTERVENTION_CONTACTS_FILE, INTERVENTION_EFFECTS_FILE
from simulator.interventions import (
    CONTACT_TRUTH_STREAM,
    Contacts,
    InterventionPolicy,
    PolicyRun,
)
from simulator.population import (
    BUSINESS_WORDS,
    COUNTRIES,
    FIRST_NAMES,
    TIER_PRICE,
    draw_population,
    with_yearly_plans,
)
from simulator.seasonality import season_table
from simulator.truth import contact_churn_probability, true_churn_probability

US_PER_DAY = 86_400_000_000
MIN_HISTORY_DAYS = 60  # what a history start must leave of the export
# The date column of each event table, by which a history start cuts it (emission's names).
_EVENT_TIME = {
    "activity_daily": "day",
    "feature_usage_daily": "day",
    "clients_daily": "day",
    "support_tickets": "created",
    "billing_events": "time",
    "milestones": "time",
}
TRUTH_SCHEMA = pa.schema(
    [
        ("supplier_id", pa.string()),
        ("as_of", contract.TIMESTAMP),
        ("p_true", pa.float64()),
        ("p_true_se", pa.float64()),
        ("label", pa.int8()),
    ]
)
# With the ``interventions`` option: the true effects (one row per supplier) and every contact
# the policy decided (delivered, or withheld from the held-out group), beside truth.parquet.
# Each contact also states its true effect on churn in probability units: p_churn_{h}d_sent and
# p_churn_{h}d_withheld are the probabilities that the supplier cancels within h days after
# sent_at (in (sent_at, sent_at + h]) if this contact is delivered, and if it is not, with no
# other contact in either case, from the exact state at the decision (truth.py's
# contact_churn_probability). They differ by the contact's lift only (equal for non-responders)
# and are stated for the held-out group's withheld contacts too.
CONTACT_HORIZON_DAYS = (30, 60)
INTERVENTION_EFFECTS_SCHEMA = pa.schema(
    [
        ("supplier_id", pa.string()),
        ("held_out", pa.bool_()),
        ("responder", pa.bool_()),
        ("segment", pa.string()),  # the subscription tier at signup
        *((f"effect_{kind}", pa.float64()) for kind in contract.INTERVENTION_TYPES),
    ]
)
INTERVENTION_CONTACTS_SCHEMA = pa.schema(
    [
        ("supplier_id", pa.string()),
        ("sent_at", contract.TIMESTAMP),
        ("intervention_type", pa.string()),
        ("rule", pa.string()),
        ("held_out", pa.bool_()),
        *(
            (f"p_churn_{h}d_{case}", pa.float64())
            for h in CONTACT_HORIZON_DAYS
            for case in ("sent", "withheld")
        ),
    ]
)
# Weeks of calendar a contact's roll-forward needs: it is sent on its week's first day.
CONTACT_WEEKS = math.ceil((max(CONTACT_HORIZON_DAYS) + 1) / 7)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. ``truth_every_days`` must be a multiple of 7 (the latent week).

    Three options, all off by default (off, the output is the same as without them), make
    exports shaped unlike the default simulator, to test the churn model on:

    * ``history_start_days``: the export's history starts on that day: older event rows,
      suppliers who cancelled before it and truth rows before it are left out, while suppliers
      keep their true signup (a retention limit or a migration cut the older history).
    * ``yearly_share``: the share of suppliers billed yearly (10 monthly prices every 365 days);
      ``cancel_at_renewal``: a supplier can cancel only on a renewal day.
    * ``feature_effects``: adopted core features shift the churn hazard (payments and journeys
      retain, the document library and analytics signal leaving) and disengaging suppliers use
      the document library and analytics more.

    ``interventions`` (None, or a policy with ``enabled: false``, is off) applies an
    intervention policy with known effects inside the simulation: delivered contacts fill
    ``interventions_log`` and lift the supplier's latent state, and the truth gains the held-out
    group, the would-be contacts and each supplier's true effects (simulator/interventions.py),
    and each contact's true effect on churn within 30 and 60 days (INTERVENTION_CONTACTS_SCHEMA).
    """

    suppliers: int = 2000
    days: int = 730
    seed: int = 0
    start: date = date(2024, 1, 1)
    horizon_days: int = 30
    truth_every_days: int = 7
    truth_paths: int = 128
    threads: int = 2
    flush_weeks: int = 8
    history_start_days: int = 0
    yearly_share: float = 0.0
    cancel_at_renewal: bool = False
    feature_effects: bool = False
    interventions: InterventionPolicy | None = None

    def __post_init__(self) -> None:
        if self.suppliers < 1 or self.days < 28:
            raise ValueError("need at least 1 supplier and 28 days")
        if self.truth_every_days % 7 or self.truth_every_days < 7:
            raise ValueError("truth_every_days must be a positive multiple of 7")
        if self.horizon_days < 1 or self.truth_paths < 2:
            raise ValueError("horizon_days must be >= 1 and truth_paths >= 2")
        if self.history_start_days < 0:
            raise ValueError(f"history_start_days must be >= 0, got {self.history_start_days}")
        if self.history_start_days and self.days - self.history_start_days < MIN_HISTORY_DAYS:
            raise ValueError(
                f"history_start_days={self.history_start_days} leaves "
                f"{self.days - self.history_start_days} days of history out of days={self.days};"
                f" at least {MIN_HISTORY_DAYS} are needed"
            )
        if not 0.0 <= self.yearly_share <= 1.0:  # also rejects NaN
            raise ValueError(f"yearly_share must be in [0, 1], got {self.yearly_share}")
        if self.interventions is not None and not isinstance(
            self.interventions, InterventionPolicy
        ):
            raise ValueError(
                "interventions must be an InterventionPolicy (simulator.interventions), got "
                f"{type(self.interventions).__name__}"
            )

    @property
    def policy(self) -> InterventionPolicy | None:
        """The intervention policy in force (None when absent or disabled)."""
        return self.interventions if self.interventions and self.interventions.enabled else None


@dataclass
class SimulationSummary:
    """What a run produced."""

    suppliers: int
    cancellations: int
    supplier_months: float
    rows: dict[str, int] = field(default_factory=dict)
    truth_rows: int = 0
    truth_mean_p: float = 0.0
    truth_label_rate: float = 0.0
    truth_mean_se: float = 0.0
    seconds: float = 0.0
    # With a history start (counts of the export; supplier_months and churn are from then on):
    history_start_day: int = 0  # day of the simulation the export's history starts on
    signed_up_before_history: int = 0  # exported suppliers whose signup precedes the history
    cancelled_before_history: int = 0  # suppliers left out: they cancelled before it
    # With an intervention policy (delivered contacts are rows["interventions_log"]):
    held_out_suppliers: int = 0  # exported suppliers of the held-out group
    withheld_contacts: int = 0  # contacts the held-out group would have received

    @property
    def monthly_churn_rate(self) -> float:
        return self.cancellations / max(self.supplier_months, 1e-9)


class _TableWriter:
    """Streams row groups of one contract table to Parquet."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.writer = pq.ParquetWriter(path, schema, compression="zstd")
        self.schema = schema
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)

    def flush(self) -> None:
        if self.pending:
            table = pa.concat_tables(self.pending)
            self.rows += table.num_rows
            self.writer.write_table(table)
            self.pending = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


class _Simulation:
    def __init__(self, config: SimulationConfig) -> None:
        self.cfg = config
        self.rng = np.random.default_rng([config.seed, 0])
        self.truth_rng = np.random.default_rng([config.seed, 1])
        self.pop = draw_population(config.suppliers, config.days, self.rng)
        if config.yearly_share > 0:
            self.pop = with_yearly_plans(
                self.pop, config.yearly_share, np.random.default_rng([config.seed, 4])
            )
        width = max(6, len(str(config.suppliers)))
        self.ids = pa.array([f"sup_{i:0{width}d}" for i in range(config.suppliers)])
        self.start_us = int(
            datetime.combine(config.start, datetime.min.time(), UTC).timestamp() * 1e6
        )
        self.start_epoch_day = (config.start - date(1970, 1, 1)).days
        self.n_weeks = math.ceil(config.days / 7)
        horizon_weeks = math.ceil(config.horizon_days / 7)
        doy0 = config.start.timetuple().tm_yday - 1
        # Calendar weeks beyond the data: the truth's horizon and a contact's roll-forward.
        days = np.arange(7 * (self.n_weeks + max(horizon_weeks, CONTACT_WEEKS) + 1))
        daily = season_table(COUNTRIES, (doy0 + days) % 365.25)  # (country, vendor, day)
        self.weekly_season = daily.reshape(len(COUNTRIES), daily.shape[1], -1, 7).mean(-1)
        policy = config.policy
        self.policy = None if policy is None else PolicyRun(policy, self.pop, config.seed)
        # The contacts' truth rolls forward on a stream of its own, so that neither the
        # simulation nor truth.parquet changes with it.
        self.contact_rng = np.random.default_rng([config.seed, CONTACT_TRUTH_STREAM])
        self.contact_truth: list[np.ndarray] = []  # per week, (4, contacts): the p_churn columns
        self.static = Static.of(
            self.pop,
            feature_effects=config.feature_effects,
            lift_decay=1.0 if policy is None else policy.lift_decay,
            lift_hazard=0.0 if policy is None else policy.hazard_weight,
        )
        self.cancel_time = np.full(config.suppliers, np.inf)
        self.final_tier = self.pop.tier0.copy()

    # -- calendar --------------------------------------------------------------------------
    def context(self, week: int) -> tuple[WeekContext, np.ndarray]:
        """The week's calendar and each supplier's next bill day (every 30 or 365 days from
        signup, by plan, the first one on the signup day)."""
        pop = self.pop
        lo = 7 * week
        cycle = pop.cycle_days
        k = np.maximum(np.ceil((lo - pop.signup_day) / cycle), 0)
        bill_day = pop.signup_day + cycle * k
        renewal: dict[str, np.ndarray] = {}
        if self.cfg.cancel_at_renewal:
            renewal = {
                "renews": (bill_day < lo + 7) & (k >= 1),
                "period_weeks": (cycle / 7).astype(np.float32),
                "renew_offset": (bill_day - lo).astype(np.int32),
            }
        ctx = WeekContext(
            season=self.weekly_season[pop.country, pop.vendor, week].astype(np.float32),
            tenure_weeks=(week - pop.signup_week).astype(np.int32),
            bills=(bill_day < lo + 7) & (bill_day < self.cfg.days),
            card_expires=(pop.card_expiry_day >= lo) & (pop.card_expiry_day < lo + 7),
            **renewal,
        )
        return ctx, bill_day

    # -- conversions -----------------------------------------------------------------------
    def sid(self, idx: np.ndarray) -> pa.Array:
        return self.ids.take(pa.array(idx, pa.int64()))

    def ts(self, t: np.ndarray) -> pa.Array:
        return pa.array(
            self.start_us + np.round(np.asarray(t) * US_PER_DAY).astype(np.int64),
            contract.TIMESTAMP,
        )

    def dt(self, day: np.ndarray) -> pa.Array:
        return pa.array((self.start_epoch_day + np.asarray(day)).astype(np.int32), pa.date32())

    def _ids(self, prefix: str, counter: int, n: int) -> pa.Array:
        nums = pa.array(np.arange(counter, counter + n), pa.int64()).cast(pa.string())
        return pc.binary_join_element_wise(prefix, nums, "")

    # -- the run ---------------------------------------------------------------------------
    def run(self, raw: Path, truth_path: Path) -> SimulationSummary:
        cfg, pop = self.cfg, self.pop
        writers = {
            t.name: _TableWriter(raw / f"{t.name}.parquet", t.schema)
            for t in contract.TABLES
            if t.name not in ("suppliers", "cancellations")
        }
        truth_parts: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = []
        state = initial_state(pop, lift=self.policy is not None)
        h = cfg.history_start_days
        n_tickets = n_events = 0
        supplier_days = 0.0
        for week in range(self.n_weeks):
            lo, hi = 7 * week, min(7 * week + 7, cfg.days)
            ctx, bill_day = self.context(week)
            alive = np.isinf(self.cancel_time)
            if week > 0 and lo % cfg.truth_every_days == 0 and lo + cfg.horizon_days <= cfg.days:
                active = np.flatnonzero(alive & (pop.signup_time <= lo))
                truth_parts.append((active, lo, *self._truth(state, active, week)))
            # The policy decides on what the app saw up to the week's start (option).
            due = None if self.policy is None else self.policy.decide(week, alive, state.tier)
            # Cancellations during the week, at a uniform time within it (or on the renewal day).
            present = alive & (pop.signup_time < hi)
            hazard = weekly_churn_hazard(state, self.static, ctx)
            churn = present & (self.rng.random(pop.n) < hazard)
            u = self.rng.random(pop.n)
            t_cancel = lo + 7 * u if ctx.renews is None else bill_day + u
            churn &= t_cancel < hi
            self.cancel_time[churn] = t_cancel[churn]
            if due is not None:  # contacts reach suppliers still there; the lift joins the state
                assert self.policy is not None and state.lift is not None
                made, delivered, lift = self.policy.settle(due, self.cancel_time)
                self.contact_truth.append(self._contact_truth(state, made, week))
                state = replace(state, lift=state.lift + lift)
                writers["interventions_log"].add(self._interventions_log(delivered))
            win = Window(
                start=np.where(present, np.maximum(lo, pop.signup_time), np.inf),
                end=np.where(present, np.minimum(hi, self.cancel_time), -np.inf),
            )
            supplier_days += float(np.clip(win.end - np.maximum(win.start, h), 0, None).sum())
            nxt, events = transition(state, self.static, ctx, draw(self.rng, (pop.n,)))
            rows = emit_week(
                week,
                cfg.start.weekday(),
                float(cfg.days),
                pop,
                state,
                nxt,
                events,
                ctx,
                bill_day,
                win,
                self.rng,
                feature_effects=cfg.feature_effects,
            )
            if self.policy is not None:  # the app sees everything, an export's cut aside
                self.policy.observe(week, rows)
            if h:
                rows = _from_history_start(rows, h)
            n_tickets, n_events = self._add(writers, rows, n_tickets, n_events)
            if churn.any():
                self.final_tier[churn] = state.tier[churn]
            state = nxt.where(present & ~churn, state)
            if week % cfg.flush_weeks == cfg.flush_weeks - 1:
                for w in writers.values():
                    w.flush()
        alive = np.isinf(self.cancel_time)
        self.final_tier[alive] = state.tier[alive]
        for w in writers.values():
            w.close()
        kept = self.exported
        summary = SimulationSummary(
            suppliers=int(kept.sum()),
            cancellations=int((kept & ~alive).sum()),
            supplier_months=supplier_days / 30.44,
            rows={name: w.rows for name, w in writers.items()},
            history_start_day=h,
            signed_up_before_history=int((kept & (pop.signup_time < h)).sum()),
            cancelled_before_history=int((~kept).sum()),
        )
        summary.rows["suppliers"] = self._write_suppliers(raw)
        summary.rows["cancellations"] = self._write_cancellations(raw, state)
        self._write_truth(truth_path, truth_parts, summary)
        if self.policy is not None:
            self._write_intervention_truth(truth_path.parent, summary)
        return summary

    @property
    def exported(self) -> np.ndarray:
        """Suppliers in the export: all but those who cancelled before the history start."""
        return ~(self.cancel_time < self.cfg.history_start_days)

    def _truth(self, state: State, active: np.ndarray, week: int) -> tuple[np.ndarray, np.ndarray]:
        horizon_weeks = math.ceil(self.cfg.horizon_days / 7)
        contexts = [self.context(week + j)[0].take(active) for j in range(horizon_weeks)]
        return true_churn_probability(
            state.take(active),
            self.static.take(active),
            contexts,
            self.cfg.horizon_days,
            self.truth_rng,
            self.cfg.truth_paths,
            self.cfg.threads,
        )

    def _contact_truth(self, state: State, made: Contacts, week: int) -> np.ndarray:
        """(4, contacts) float64, the p_churn columns (INTERVENTION_CONTACTS_SCHEMA's order) of
        the week's contacts, rolled forward from ``state``, the state at the week's start (the
        decision), on the calendar the simulation itself uses (so no bill falls due after the
        end of the data)."""
        assert self.policy is not None
        idx = made.supplier
        if len(idx) == 0:
            return np.empty((2 * len(CONTACT_HORIZON_DAYS), 0))
        contexts = [self.context(week + j)[0].take(idx) for j in range(CONTACT_WEEKS)]
        p = contact_churn_probability(
            state.take(idx),
            self.static.take(idx),
            contexts,
            made.sent_at - 7 * week,
            self.policy.assignment.effect[idx, made.kind],
            CONTACT_HORIZON_DAYS,
            self.contact_rng,
            self.cfg.truth_paths,
            self.cfg.threads,
        )
        return p.reshape(2 * len(CONTACT_HORIZON_DAYS), len(idx))

    def _interventions_log(self, delivered: Contacts) -> pa.Table:
        """The delivered contacts as ``interventions_log`` rows (from the history start on)."""
        keep = delivered.sent_at >= self.cfg.history_start_days
        return self._table(
            "interventions_log",
            {
                "supplier_id": self.sid(delivered.supplier[keep]),
                "sent_at": self.ts(delivered.sent_at[keep]),
                "intervention_type": pa.array(
                    np.asarray(contract.INTERVENTION_TYPES)[delivered.kind[keep]].astype(str),
                    pa.string(),
                ),
            },
        )

    def _write_intervention_truth(self, folder: Path, summary: SimulationSummary) -> None:
        """The policy's truth: per exported supplier its group, whether it responds and its
        true effect of each type; and every contact decided from the history start on (held
        out: what the supplier would have received), with its true effect on churn."""
        assert self.policy is not None
        run, kept = self.policy, np.flatnonzero(self.exported)
        a = run.assignment
        effects = {
            f"effect_{kind}": pa.array(a.effect[kept, k].astype(np.float64))
            for k, kind in enumerate(contract.INTERVENTION_TYPES)
        }
        table = pa.table(
            {
                "supplier_id": self.sid(kept),
                "held_out": pa.array(a.held_out[kept]),
                "responder": pa.array(a.responder[kept]),
                "segment": pa.array(
                    np.asarray(contract.SUBSCRIPTION_TIERS)[self.pop.tier0[kept]].astype(str)
                ),
                **effects,
            },
            schema=INTERVENTION_EFFECTS_SCHEMA,
        )
        pq.write_table(table, folder / INTERVENTION_EFFECTS_FILE, compression="zstd")
        contacts = run.contacts()
        kept_contacts = contacts.sent_at >= self.cfg.history_start_days
        contacts = contacts.take(kept_contacts)
        p_churn = np.concatenate(self.contact_truth, axis=1)[:, kept_contacts]
        churn_names = INTERVENTION_CONTACTS_SCHEMA.names[-len(p_churn) :]
        rule_names = np.asarray([rule.name for rule in run.policy.rules] or [""])
        table = pa.table(
            {
                "supplier_id": self.sid(contacts.supplier),
                "sent_at": self.ts(contacts.sent_at),
                "intervention_type": pa.array(
                    np.asarray(contract.INTERVENTION_TYPES)[contacts.kind].astype(str),
                    pa.string(),
                ),
                "rule": pa.array(rule_names[contacts.rule].astype(str), pa.string()),
                "held_out": pa.array(contacts.held_out),
                **{name: pa.array(p) for name, p in zip(churn_names, p_churn, strict=True)},
            },
            schema=INTERVENTION_CONTACTS_SCHEMA,
        )
        pq.write_table(table, folder / INTERVENTION_CONTACTS_FILE, compression="zstd")
        summary.held_out_suppliers = int(a.held_out[kept].sum())
        summary.withheld_contacts = int(contacts.held_out.sum())

    @staticmethod
    def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
        return pa.table(columns, schema=contract.TABLES_BY_NAME[name].schema)

    def _add(
        self, writers: dict[str, _TableWriter], rows: dict, n_tickets: int, n_events: int
    ) -> tuple[int, int]:
        a = rows["activity_daily"]
        writers["activity_daily"].add(
            self._table(
                "activity_daily",
                {
                    "supplier_id": self.sid(a["supplier"]),
                    "date": self.dt(a["day"]),
                    "logins": pa.array(a["logins"], pa.int64()),
                    "session_minutes": pa.array(a["session_minutes"], pa.float64()),
                },
            )
        )
        u = rows["feature_usage_daily"]
        writers["feature_usage_daily"].add(
            self._table(
                "feature_usage_daily",
                {
                    "supplier_id": self.sid(u["supplier"]),
                    "date": self.dt(u["day"]),
                    "feature_key": pa.array(np.asarray(contract.CORE_FEATURES)[u["feature"]]),
                    "uses": pa.array(u["uses"], pa.int64()),
                },
            )
        )
        c = rows["clients_daily"]
        writers["clients_daily"].add(
            self._table(
                "clients_daily",
                {
                    "supplier_id": self.sid(c["supplier"]),
                    "date": self.dt(c["day"]),
                    "total_clients": pa.array(c["total_clients"], pa.int64()),
                    "active_clients_30d": pa.array(c["active_clients_30d"], pa.int64()),
                },
            )
        )
        t = rows["support_tickets"]
        n = len(t["supplier"])
        writers["support_tickets"].add(
            self._table(
                "support_tickets",
                {
                    "ticket_id": self._ids("tkt_", n_tickets, n),
                    "supplier_id": self.sid(t["supplier"]),
                    "created_at": self.ts(t["created"]),
                    "resolved_at": pa.array(
                        self.start_us + np.round(t["resolved"] * US_PER_DAY).astype(np.int64),
                        contract.TIMESTAMP,
                        mask=~t["resolved_ok"],
                    ),
                    "category": pa.array(t["category"].astype(str)),
                    "satisfaction_rating": pa.array(
                        t["rating"].astype(np.int64), pa.int64(), mask=~t["rated"]
                    ),
                },
            )
        )
        b = rows["billing_events"]
        m = len(b["supplier"])
        writers["billing_events"].add(
            self._table(
                "billing_events",
                {
                    "event_id": self._ids("evt_", n_events, m),
                    "supplier_id": self.sid(b["supplier"]),
                    "occurred_at": self.ts(b["time"]),
                    "event_type": pa.array(b["type"].astype(str)),
                    "amount": pa.array(b["amount"], pa.float64()),
                },
            )
        )
        ms = rows["milestones"]
        writers["milestones"].add(
            self._table(
                "milestones",
                {
                    "supplier_id": self.sid(ms["supplier"]),
                    "milestone_type": pa.array(ms["type"].astype(str)),
                    "achieved_at": self.ts(ms["time"]),
                },
            )
        )
        return n_tickets + n, n_events + m

    def _write_suppliers(self, raw: Path) -> int:
        pop, n = self.pop, self.pop.n
        rng = np.random.default_rng([self.cfg.seed, 2])
        first = FIRST_NAMES[rng.integers(0, len(FIRST_NAMES), n)]
        word = BUSINESS_WORDS[rng.integers(0, len(BUSINESS_WORDS), n)]
        vendor = np.asarray(contract.VENDOR_TYPES)[pop.vendor]
        ids = self.ids.to_numpy(zero_copy_only=False)
        business = np.char.add(
            np.char.add(word.astype(str), " "), np.char.replace(vendor.astype(str), "_", " ")
        )
        email = np.char.add(
            np.char.lower(first.astype(str)),
            np.char.add(".", np.char.add(ids.astype(str), "@example.com")),
        )
        n_agents = max(1, math.ceil(n / 500))
        has_agent = rng.random(n) < np.array([0.25, 0.75, 1.0, 1.0])[self.final_tier]
        agent = np.char.add(
            "agent_", np.char.zfill((rng.integers(0, n_agents, n) + 1).astype(str), 2)
        )
        table = pa.table(
            {
                "supplier_id": self.ids,
                "business_name": pa.array(business),
                "first_name": pa.array(first.astype(str)),
                "email": pa.array(email),
                "vendor_type": pa.array(vendor.astype(str)),
                "subscription_tier": pa.array(
                    np.asarray(contract.SUBSCRIPTION_TIERS)[self.final_tier].astype(str)
                ),
                "monthly_revenue": pa.array(TIER_PRICE[self.final_tier], pa.float64()),
                "country": pa.array(np.asarray(COUNTRIES)[pop.country]),
                "signup_at": self.ts(pop.signup_time),
                "cs_agent_id": pa.array(agent.astype(str), mask=~has_agent),
            },
            schema=contract.SUPPLIERS.schema,
        )
        if self.cfg.history_start_days:  # drawn for everyone above, so the rest stay the same
            table = table.filter(pa.array(self.exported))
        pq.write_table(table, raw / "suppliers.parquet", compression="zstd")
        return table.num_rows

    def _write_cancellations(self, raw: Path, state: State) -> int:
        idx = np.flatnonzero(np.isfinite(self.cancel_time))
        rng = np.random.default_rng([self.cfg.seed, 3])
        reason = cancel_reason(state, self.pop.price_sensitivity, idx, rng)
        if self.cfg.history_start_days:
            keep = self.exported[idx]
            idx, reason = idx[keep], reason[keep]
        table = pa.table(
            {
                "supplier_id": self.sid(idx),
                "cancelled_at": self.ts(self.cancel_time[idx]),
                "reason": pa.array(reason, pa.string()),
            },
            schema=contract.CANCELLATIONS.schema,
        )
        pq.write_table(table, raw / "cancellations.parquet", compression="zstd")
        return table.num_rows

    def _write_truth(self, path: Path, parts: list, summary: SimulationSummary) -> None:
        if parts:
            sup = np.concatenate([p[0] for p in parts])
            as_of = np.concatenate([np.full(len(p[0]), p[1], np.float64) for p in parts])
            p_true = np.concatenate([p[2] for p in parts]).astype(np.float64)
            se = np.concatenate([p[3] for p in parts]).astype(np.float64)
        else:
            sup, as_of, p_true, se = (np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0))
        if self.cfg.history_start_days:
            keep = as_of >= self.cfg.history_start_days
            sup, as_of, p_true, se = sup[keep], as_of[keep], p_true[keep], se[keep]
        ct = self.cancel_time[sup]
        label = ((ct > as_of) & (ct <= as_of + self.cfg.horizon_days)).astype(np.int8)
        table = pa.table(
            {
                "supplier_id": self.sid(sup),
                "as_of": self.ts(as_of),
                "p_true": pa.array(p_true),
                "p_true_se": pa.array(se),
                "label": pa.array(label, pa.int8()),
            },
            schema=TRUTH_SCHEMA,
        )
        pq.write_table(table, path, compression="zstd")
        summary.truth_rows = table.num_rows
        if len(sup):
            summary.truth_mean_p = float(p_true.mean())
            summary.truth_label_rate = float(label.mean())
            summary.truth_mean_se = float(se.mean())


def _from_history_start(rows: dict[str, dict[str, np.ndarray]], start: int) -> dict:
    """The week's event rows dated on or after the history start (a cut export keeps no older
    rows; the simulation itself ran over them, so the rest is what it would have been)."""
    out = {}
    for name, columns in rows.items():
        keep = columns[_EVENT_TIME[name]] >= start
        out[name] = {key: values[keep] for key, values in columns.items()}
    return out


def simulate(
    config: SimulationConfig, out_dir: Path, *, overwrite: bool = False
) -> SimulationSummary:
    """Simulate and write ``out_dir/raw/*.parquet`` and ``out_dir/truth.parquet``.

    The folder appears whole or not at all: everything is written to a staging folder beside it
    and renamed into place at the end.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty (use overwrite)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    began = time.perf_counter()
    try:
        (staging / "raw").mkdir()
        summary = _Simulation(config).run(staging / "raw", staging / "truth.parquet")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.seconds = time.perf_counter() - began
    return summary
