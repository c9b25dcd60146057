"""The jobs behind the CLI: IO and printing around the pure parts of the platform."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import typer

from features.raw_reader import RawTables
from simulator import SimulationConfig, SimulationSummary
from wedsync_cs.settings import Settings


def _echo_table(rows: list[tuple[str, str]], title: str) -> None:
    typer.secho(title, bold=True)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"  {key:<{width}}  {value}")


def print_simulation(summary: SimulationSummary, out: Path) -> None:
    rows = [
        ("folder", str(out)),
        ("suppliers", f"{summary.suppliers:,}"),
        ("cancellations", f"{summary.cancellations:,}"),
        ("monthly churn rate", f"{summary.monthly_churn_rate:.2%}"),
        ("truth rows", f"{summary.truth_rows:,}"),
        (
            "mean p_true / label rate",
            f"{summary.truth_mean_p:.4f} / {summary.truth_label_rate:.4f} "
            f"(Monte Carlo s.e. {summary.truth_mean_se:.4f})",
        ),
        ("seconds", f"{summary.seconds:.1f}"),
    ]
    if summary.history_start_day:
        rows.append(
            (
                "event history",
                f"from day {summary.history_start_day}: "
                f"{summary.signed_up_before_history:,} exported accounts signed up before it, "
                f"{summary.cancelled_before_history:,} that cancelled before it left out",
            )
        )
    if summary.held_out_suppliers or summary.withheld_contacts:
        rows.append(
            (
                "intervention policy",
                f"{summary.rows.get('interventions_log', 0):,} contacts delivered; "
                f"{summary.held_out_suppliers:,} suppliers held out, "
                f"{summary.withheld_contacts:,} contacts withheld from them",
            )
        )
    rows += [(f"rows: {name}", f"{n:,}") for name, n in sorted(summary.rows.items())]
    _echo_table(rows, "Simulation")


def run_simulation(
    config: SimulationConfig, out: Path, *, overwrite: bool = False
) -> SimulationSummary:
    from simulator import simulate

    summary = simulate(config, out, overwrite=overwrite)
    print_simulation(summary, out)
    return summary


def run_validation(raw: Path, quarantine: Path | None) -> RawTables | None:
    """Validate ``raw``; print the verdict and any quarantine counts. The tables, when usable."""
    from features.raw_reader import RawDataError, load_raw

    try:
        tables = load_raw(raw, quarantine)
    except RawDataError as err:
        typer.secho(f"INVALID: {err}", fg=typer.colors.RED, err=True)
        return None
    rows = [(name, f"{len(frame):,} valid rows") for name, frame in tables.frames.items()]
    _echo_table(rows, f"Contract check of {raw}: {'OK' if tables.report.ok else 'quarantined'}")
    print_history(tables)
    if not tables.report.ok:
        counts = tables.report.counts()
        typer.secho(f"Quarantined rows written to {quarantine}:", bold=True)
        for name, n in tables.quarantined.items():
            if n:
                typer.echo(f"  {name}: {n:,} rows")
        typer.echo(counts.to_string(index=False))
    return tables


def print_history(tables: RawTables) -> None:
    """Where the export's event history starts, and a warning (not an error) when accounts
    are older than it: what that means for training (see :mod:`features.history`)."""
    from features.feature_table import connect
    from features.history import event_history

    con = connect(tables.frames)
    try:
        history = event_history(con)
    finally:
        con.close()
    firsts = ", ".join(
        f"{name} {day or 'empty'}" for name, day in history.table_first_days.items()
    )
    typer.echo(f"Event history starts {history.start} (first rows: {firsts})")
    warning = history.warning()
    if warning:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW)


# the demo scores these many past weeks (30 to 51 days back) first, so that the report has
# predictions a horizon old to judge, health changes over 30 days and a KPI history
DEMO_BACKFILL_WEEKS = 4
SHOWN_FEATURES = (
    "days_since_last_login",
    "logins_30d",
    "login_ewm_rate_7d",
    "features_used_30d",
    "active_client_ratio",
    "tickets_90d",
    "unresolved_payment_failure",
    "milestones_achieved",
    "subscription_tier",
    "health_segment",
    "health_score",
)


def show_supplier(settings: Settings, supplier_id: str, as_of: pd.Timestamp) -> None:
    """Print a supplier's features from the online store and point-in-time at ``as_of``."""
    from feature_repo.definitions import CHURN_SERVICE, HEALTH_SERVICE
    from feature_repo.readers import historical_features
    from feature_repo.store import open_store
    from wedsync_cs.feature_jobs import store_config

    store = open_store(store_config(settings))
    online = {}
    for service in (CHURN_SERVICE, HEALTH_SERVICE):
        online |= store.get_online_features(
            features=store.get_feature_service(service), entity_rows=[{"supplier_id": supplier_id}]
        ).to_dict()
    entity = pd.DataFrame({"supplier_id": [supplier_id], "event_timestamp": [as_of]})
    past = historical_features(store, (CHURN_SERVICE, HEALTH_SERVICE), entity)
    typer.secho(
        f"Supplier {supplier_id}: online now | point-in-time at {as_of:%Y-%m-%d %H:%M}", bold=True
    )
    for name in SHOWN_FEATURES:
        now, then = online[name][0], past[name].iloc[0]
        typer.echo(f"  {name:<28} {_fmt(now):>14} | {_fmt(then):>14}")


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run_demo(
    settings: Settings,
    *,
    suppliers: int,
    days: int,
    seed: int,
    experiment: Path,
    trials: int,
    time_budget: float,
) -> bool:
    """Simulate a default set under CS_HOME, validate it, build, register and materialise its
    features, show one supplier's features online and point-in-time, train, evaluate and
    register the models on a small tuning budget, score the last day into the operational
    database, then serve the API and send it the contract's example requests."""
    from wedsync_cs.feature_jobs import build_features, materialize_features
    from wedsync_cs.model_jobs import train

    home = settings.ensure_home()
    out = settings.data_dir / "demo"
    typer.secho(f"CS_HOME = {home}", bold=True)
    config = SimulationConfig(suppliers=suppliers, days=days, seed=seed, threads=settings.threads)
    run_simulation(config, out, overwrite=True)
    tables = run_validation(out / "raw", None)
    if tables is None:
        return False
    build = build_features(settings, out / "raw", tables=tables)
    typer.secho("Features", bold=True)
    typer.echo(
        f"  {build.rows_total:,} rows ({build.days_built} days, {build.first_day} to "
        f"{build.last_day}) in {build.seconds:.1f} s -> {settings.feature_table_path}"
    )
    end = materialize_features(settings)
    typer.echo(f"  materialised into the {settings.online_store} online store up to {end}")
    table = pd.read_parquet(
        settings.feature_table_path, columns=["supplier_id", "event_timestamp", "tenure_days"]
    )
    latest = table[table["event_timestamp"] == table["event_timestamp"].max()]
    supplier = latest.sort_values(["tenure_days", "supplier_id"]).iloc[len(latest) // 2]
    show_supplier(settings, supplier["supplier_id"], end - pd.Timedelta(days=56))
    typer.echo("")
    train(
        settings,
        out / "raw",
        experiment,
        trials=trials,
        time_budget=time_budget,
        truth=out / "truth.parquet",
    )
    from serving.db.migrate import upgrade
    from wedsync_cs.daily_job import score_daily
    from wedsync_cs.database import operational_engine
    from wedsync_cs.demo_api import run_api_demo

    engine = operational_engine(settings)
    state = upgrade(engine)
    engine.dispose()
    typer.secho(f"\nOperational database at revision {state.current}", bold=True)
    last = date.fromisoformat(str(build.last_day))
    for weeks in range(DEMO_BACKFILL_WEEKS, 0, -1):  # past days, for outcomes and KPI history
        score_daily(settings, out / "raw", as_of=last - timedelta(days=23 + 7 * weeks))
    score_daily(settings, out / "raw")
    (home / "logs").mkdir(exist_ok=True)
    done = run_api_demo(home / "logs" / "demo-service.log")
    failed = [e for e in done if e.status >= 500]
    typer.echo(
        f"\nNext: wedsync-cs serve --port 3000 (set CS_API_TOKENS); wedsync-cs score-daily "
        f"--raw {out / 'raw'} each day; wedsync-cs predict for batch (supplier_id, as_of) rows; "
        "wedsync-cs report for the monitoring report."
    )
    from wedsync_cs.report_job import write_report

    typer.secho(
        "\nMonitoring report (drift, outcomes, intervention effect, KPIs, agents)", bold=True
    )
    report = write_report(settings)
    for section, reason in report.unavailable.items():
        typer.echo(f"  {section}: not available ({reason})")
    typer.secho(f"Report of {report.as_of}: {report.path}", bold=True)
    return not failed
