"""The ``wedsync-cs`` command line: one entry point, a subcommand per job.

Heavy libraries are imported inside the commands, so ``wedsync-cs --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import warnings
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from wedsync_cs.settings import get_settings

app = typer.Typer(
    name="wedsync-cs",
    no_args_is_help=True,
    add_completion=False,
    help="WedSync customer-success ML platform: simulate, validate, build features, train, "
    "serve and monitor supplier churn models.",
)


features_app = typer.Typer(no_args_is_help=True, help="Build, register and serve features.")
app.add_typer(features_app, name="features")
db_app = typer.Typer(no_args_is_help=True, help="The operational database: migrate and check.")
app.add_typer(db_app, name="db")
monitor_app = typer.Typer(no_args_is_help=True, help="Watch the models: drift and outcomes.")
app.add_typer(monitor_app, name="monitor")


def _setup_logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Feast logs every registry refresh at INFO, Alembic every plugin and migration context.
    for noisy in ("feast", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    # MLflow's own SQLAlchemy use warns on every start; its artifact copies draw progress bars
    warnings.filterwarnings("ignore", message=".*noload.*", module="mlflow")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@app.callback()
def main() -> None:
    """Every command reads its configuration from ``CS_*`` environment variables."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as err:  # a bad CS_* variable: name it, no traceback
        problems = "; ".join(
            f"CS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in err.errors()
        )
        _fail(f"bad configuration: {problems}")
    _setup_logging()


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write (raw/*.parquet and truth.parquet).")],
    suppliers: Annotated[int, typer.Option(min=1, help="Supplier accounts to simulate.")] = 2000,
    days: Annotated[int, typer.Option(min=28, help="Days of history.")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    start: Annotated[str, typer.Option(help="First day of the data (YYYY-MM-DD).")] = "2024-01-01",
    horizon: Annotated[int, typer.Option(min=1, help="Churn horizon of the truth (days).")] = 30,
    truth_every: Annotated[
        int, typer.Option(min=7, help="Days between truth snapshots (a multiple of 7).")
    ] = 7,
    truth_paths: Annotated[
        int, typer.Option(min=2, help="Monte Carlo paths per truth estimate.")
    ] = 128,
    history_start_days: Annotated[
        int,
        typer.Option(
            min=0,
            help="Start the exported history on this day of the simulation (older events, "
            "suppliers cancelled before it and earlier truth rows are left out; suppliers keep "
            "their true signup). Must leave at least 60 days.",
        ),
    ] = 0,
    yearly_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of suppliers on a yearly plan (10 monthly prices every 365 days).",
        ),
    ] = 0.0,
    cancel_at_renewal: Annotated[
        bool,
        typer.Option(
            "--cancel-at-renewal",
            help="Suppliers can cancel only on a renewal day of their plan (monthly or yearly).",
        ),
    ] = False,
    feature_effects: Annotated[
        bool,
        typer.Option(
            "--feature-effects",
            help="Adopted core features shift the churn hazard (payments and journeys retain; "
            "document library and analytics signal leaving), and disengaging suppliers use "
            "the document library and analytics more.",
        ),
    ] = False,
    interventions: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Apply the intervention policy of this YAML file (e.g. "
            "experiments/sim_interventions.yaml): delivered contacts fill interventions_log "
            "and change behaviour by known effects, written with the held-out group beside "
            "the truth.",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Simulate supplier behaviour; write a contract folder and the true churn probabilities."""
    from simulator import SimulationConfig
    from simulator.interventions import load_policy
    from wedsync_cs.jobs import run_simulation

    try:
        config = SimulationConfig(
            suppliers=suppliers,
            days=days,
            seed=seed,
            start=_parse_date(start),
            horizon_days=horizon,
            truth_every_days=truth_every,
            truth_paths=truth_paths,
            threads=get_settings().threads,
            history_start_days=history_start_days,
            yearly_share=yearly_share,
            cancel_at_renewal=cancel_at_renewal,
            feature_effects=feature_effects,
            interventions=None if interventions is None else load_policy(interventions),
        )
        run_simulation(config, out, overwrite=overwrite)
    except (FileExistsError, ValueError) as err:
        _fail(str(err))


@app.command()
def validate(
    raw: Annotated[Path, typer.Option(help="Contract folder holding <table>.parquet files.")],
    quarantine: Annotated[
        Path | None,
        typer.Option(help="Write bad rows with their reasons here and go on with the valid ones."),
    ] = None,
) -> None:
    """Check a raw folder against the data contract; exit 1 (writing nothing) on a violation."""
    from wedsync_cs.jobs import run_validation

    if run_validation(raw, quarantine) is None:
        raise typer.Exit(1)


DEFAULT_EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "churn_v3.yaml"


@app.command()
def demo(
    suppliers: Annotated[int, typer.Option(min=1, help="Suppliers in the demo set.")] = 2000,
    days: Annotated[int, typer.Option(min=28, help="Days of history.")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials for the demo's training.")] = 8,
    time_budget: Annotated[
        float, typer.Option(min=1, help="Tuning time budget in seconds for the demo's training.")
    ] = 150,
) -> None:
    """Run the platform end to end on embedded defaults (everything under CS_HOME): simulate,
    validate, build and serve features, then train, evaluate and register the models."""
    from wedsync_cs.jobs import run_demo

    ok = run_demo(
        get_settings(),
        suppliers=suppliers,
        days=days,
        seed=seed,
        experiment=DEFAULT_EXPERIMENT,
        trials=trials,
        time_budget=time_budget,
    )
    if not ok:
        raise typer.Exit(1)


@features_app.command("build")
def features_build(
    raw: Annotated[Path, typer.Option(help="Contract folder holding <table>.parquet files.")],
    quarantine: Annotated[
        Path | None, typer.Option(help="Set bad rows aside here instead of failing.")
    ] = None,
    incremental: Annotated[
        bool, typer.Option(help="Compute only grid days not yet in the feature table.")
    ] = False,
) -> None:
    """Validate a raw folder, compute the supplier features and register them in Feast."""
    from features.raw_reader import RawDataError
    from wedsync_cs.feature_jobs import build_features

    try:
        build = build_features(get_settings(), raw, quarantine=quarantine, incremental=incremental)
    except RawDataError as err:
        typer.secho(f"INVALID: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err
    typer.echo(
        f"features: {build.rows_written:,} rows written for {build.days_built} days "
        f"({build.rows_total:,} in the table) from {build.first_day} to {build.last_day} "
        f"in {build.seconds:.1f} s -> {get_settings().feature_table_path}"
    )


@features_app.command("materialize")
def features_materialize(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="Load rows up to the end of this day (YYYY-MM-DD); default: the "
            "last day of the data."
        ),
    ] = None,
) -> None:
    """Load each supplier's latest features into the online store (SQLite or Redis)."""
    from datetime import timedelta

    import pandas as pd

    from wedsync_cs.feature_jobs import materialize_features

    end = None
    if as_of is not None:
        end = pd.Timestamp(_parse_date(as_of, "--as-of") + timedelta(days=1), tz="UTC")
    try:
        done = materialize_features(get_settings(), end)
    except FileNotFoundError as err:
        _fail(str(err))
        raise
    typer.echo(f"online store ({get_settings().online_store}) holds features up to {done}")


@app.command()
def train(
    raw: Annotated[Path, typer.Option(help="Contract folder holding <table>.parquet files.")],
    experiment: Annotated[
        Path, typer.Option(help="Experiment YAML (services, horizon, split, tuning, thresholds).")
    ] = DEFAULT_EXPERIMENT,
    train_until: Annotated[
        str | None,
        typer.Option(
            help="Use only rows whose label is observed by the end of this day (YYYY-MM-DD): "
            "as_of + horizon <= the next midnight UTC. Default: the end of the data."
        ),
    ] = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Optuna trials (overrides the experiment).")
    ] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(min=1, help="Tuning time budget in seconds (overrides the experiment)."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            help="True churn probabilities of the rows (a simulator's truth.parquet): the "
            "evaluation's ceiling. Default: truth.parquet beside or inside the raw folder, if "
            "there is one."
        ),
    ] = None,
) -> None:
    """Train, evaluate, log and register the churn and health models.

    Evaluates on a time holdout against baselines (and the simulator's truth when found), logs
    to MLflow and moves each champion alias only when the new version wins.
    """
    from datetime import timedelta

    import pandas as pd

    from features.raw_reader import RawDataError
    from simulator.files import find_truth
    from wedsync_cs.model_jobs import train as run_train

    if truth is not None and not truth.is_file():
        _fail(f"--truth {truth} is not a file")
    until = None
    if train_until is not None:
        day = _parse_date(train_until, "--train-until")
        until = pd.Timestamp(day + timedelta(days=1), tz="UTC")
    try:
        run_train(
            get_settings(),
            raw,
            experiment,
            train_until=until,
            trials=trials,
            time_budget=time_budget,
            truth=truth or find_truth(raw),
        )
    except RawDataError as err:
        typer.secho(f"INVALID: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err
    except (ValueError, RuntimeError) as err:
        _fail(str(err))


@app.command()
def predict(
    raw: Annotated[Path, typer.Option(help="Contract folder the features are computed from.")],
    entities: Annotated[
        Path,
        typer.Option(help="Parquet file of rows to score: supplier_id (string), as_of (UTC)."),
    ],
    out: Annotated[Path, typer.Option(help="Parquet file to write (atomically).")],
) -> None:
    """Score (supplier_id, as_of) rows with the champion models, point in time.

    Every input row comes out, in order, with a status: ok, unknown_supplier, not_active or
    no_features.
    """
    from features.raw_reader import RawDataError
    from serving.batch import EntitiesError
    from wedsync_cs.model_jobs import predict as run_predict

    try:
        run_predict(get_settings(), raw, entities, out)
    except RawDataError as err:
        typer.secho(f"INVALID: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err
    except (EntitiesError, LookupError) as err:
        _fail(str(err))


@app.command("score-daily")
def score_daily(
    raw: Annotated[
        Path | None,
        typer.Option(help="Contract folder of the export; default: the demo's simulated export."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="The day to score (YYYY-MM-DD), with that day's features and never newer "
            "ones; default: the last day of the export."
        ),
    ] = None,
) -> None:
    """Build the day's features, materialise them, sync the supplier directory, score every
    active supplier and store the day's health scores and churn predictions (a rerun of a day
    replaces its rows)."""
    from features.raw_reader import RawDataError
    from serving.db.migrate import DatabaseNotReadyError
    from wedsync_cs.daily_job import score_daily as run_daily

    settings = get_settings()
    folder = raw or settings.data_dir / "demo" / "raw"
    if not folder.is_dir():
        _fail(f"no export at {folder}: pass --raw DIR (or run `wedsync-cs demo` first)")
    day = _parse_date(as_of, "--as-of") if as_of is not None else None
    try:
        run_daily(settings, folder, day)
    except RawDataError as err:
        typer.secho(f"INVALID: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err
    except (DatabaseNotReadyError, LookupError, ValueError) as err:
        _fail(str(err))


@app.command()
def deliver(
    limit: Annotated[
        int | None, typer.Option(min=1, help="Deliver at most this many (the most urgent).")
    ] = None,
    retry: Annotated[
        list[str] | None,
        typer.Option(
            help="Make this failed execution due again first (for example one whose outcome "
            "was unknown, after checking the mail server's log); repeatable."
        ),
    ] = None,
) -> None:
    """Deliver the due interventions: emails (SMTP with CS_SMTP_URL, else the Maildir under
    CS_HOME/outbox), in-app messages and feature tours, and calls booked for agents; failed
    ones are retried with backoff (score-daily runs this after recording the day's)."""
    from datetime import UTC, datetime

    from serving.db.migrate import DatabaseNotReadyError, require_current
    from serving.dispatch import retry as make_due
    from wedsync_cs.daily_job import deliver as run_delivery
    from wedsync_cs.daily_job import print_delivery
    from wedsync_cs.database import operational_engine

    settings = get_settings()
    settings.ensure_home()
    engine = operational_engine(settings)
    try:
        require_current(engine)
        for execution in retry or []:
            if not make_due(engine, execution, datetime.now(UTC)):
                _fail(f"execution {execution!r} is not a failed execution waiting for a retry")
        report = run_delivery(settings, engine, limit)
    except DatabaseNotReadyError as err:
        _fail(str(err))
        raise
    except ValueError as err:  # a bad CS_SMTP_URL
        _fail(str(err))
        raise
    finally:
        engine.dispose()
    print_delivery(report)


@app.command()
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 3000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (each loads the models).")
    ] = 1,
) -> None:
    """Serve the customer-success API (shared/API_CONTRACT.md) with BentoML on 127.0.0.1."""
    from serving.db.migrate import DatabaseNotReadyError
    from wedsync_cs.serve_job import check_servable, run_server

    settings = get_settings()
    try:
        check_servable(settings)
    except (DatabaseNotReadyError, LookupError, FileNotFoundError) as err:
        _fail(str(err))
    run_server(settings, port, workers)


@app.command()
def config() -> None:
    """Show every setting, its environment variable and its current value."""
    from serving.db.migrate import redact

    settings = get_settings()
    for name, field in type(settings).model_fields.items():
        value = redact(str(getattr(settings, name)))
        if name == "api_tokens":  # never print a token
            value = f"{len(settings.api_tokens)} token(s)"
        typer.echo(f"CS_{name.upper():<14} = {value:<24} {field.description}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the operational database (CS_DATABASE_URL) to the newest schema."""
    from serving.db.migrate import DatabaseNotReadyError, redact, schema_state, upgrade
    from wedsync_cs.database import operational_engine

    settings = get_settings()
    engine = operational_engine(settings)
    where = redact(settings.operational_database_url)
    try:
        before = schema_state(engine).current
        after = upgrade(engine)
    except Exception as err:  # the driver's own error: unreachable, refused, ...
        _fail(str(DatabaseNotReadyError(f"cannot migrate {where}: {err}")))
        raise
    finally:
        engine.dispose()
    if before == after.current:
        typer.echo(f"{where}: already at revision {after.current} (the newest)")
    else:
        typer.echo(f"{where}: migrated from {before or 'an empty database'} to {after.current}")


@db_app.command("status")
def db_status() -> None:
    """Say whether the operational database is at the newest schema (exit 1 when behind)."""
    from serving.db.migrate import DatabaseNotReadyError, require_current, schema_state
    from wedsync_cs.database import operational_engine

    engine = operational_engine(get_settings())
    try:
        require_current(engine)
        typer.echo(f"up to date: revision {schema_state(engine).current}")
    except DatabaseNotReadyError as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from err
    finally:
        engine.dispose()


@monitor_app.command("drift")
def monitor_drift(
    reference: Annotated[
        str | None,
        typer.Option(
            help="Reference window FROM..TO (dates); default: the rows the champion was "
            "trained on."
        ),
    ] = None,
    current: Annotated[
        str | None,
        typer.Option(help="Current window FROM..TO; default: the feature table's last 30 days."),
    ] = None,
    max_rows: Annotated[
        int, typer.Option(min=100, help="Rows drawn from each window at most (seeded).")
    ] = 100_000,
) -> None:
    """Feature and prediction drift of the champion (Evidently): the HTML report under
    CS_HOME/reports, its metrics logged to the champion's MLflow run; exits 1 when the share of
    drifted columns passes experiments/monitoring.yaml's drift.max_drifted_share."""
    from wedsync_cs.monitor_jobs import Window, run_drift

    settings = get_settings()
    try:
        windows = [Window.parse(w) if w else None for w in (reference, current)]
        run = run_drift(settings, windows[0], windows[1], max_rows)
    except (LookupError, ValueError, KeyError) as err:
        _fail(str(err))
        raise
    m = run.metrics
    typer.secho("Drift of the champion's columns and churn probability", bold=True)
    typer.echo(
        f"  reference {run.reference} ({run.reference_rows:,} rows), current {run.current} "
        f"({run.current_rows:,} rows)"
    )
    drifted = sorted(
        ((c, v) for c, v in m["columns"].items() if v["drifted"]), key=lambda cv: cv[0]
    )
    typer.echo(
        f"  drifted: {m['drifted_count']} columns, share {m['drifted_share']:.1%} "
        f"(alarm above {run.max_drifted_share:.0%})"
    )
    for column, v in drifted[:15]:
        typer.echo(f"    {column}: {v['method']} {v['score']:.4g} (threshold {v['threshold']:g})")
    if m["prediction"] is not None:
        p = m["prediction"]
        typer.echo(
            f"  churn probability: {p['method']} {p['score']:.4g}"
            f" ({'drifted' if p['drifted'] else 'no drift'})"
        )
    typer.echo(f"  report: {run.report}")
    if run.run_id:
        typer.echo(f"  logged to the champion's MLflow run {run.run_id}")
    if run.alarm:
        typer.secho(
            f"DRIFT: {m['drifted_share']:.1%} of the columns drifted, above "
            f"{run.max_drifted_share:.0%}: look at the report; retraining may be due",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)


@monitor_app.command("outcomes")
def monitor_outcomes(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="The last day whose cancellations count (YYYY-MM-DD); default: the newest "
            "scored day."
        ),
    ] = None,
    horizon: Annotated[int, typer.Option(min=1, max=365, help="Label horizon in days.")] = 30,
) -> None:
    """The stored predictions at least one horizon old against the churn that followed:
    realised AUC, PR-AUC, Brier and calibration, per segment and month, for the churn model
    and the health score; saved under CS_HOME/reports and logged to the champion's MLflow run;
    exits 1 when the champion falls below its holdout by the margins of
    experiments/monitoring.yaml (retrain)."""
    from serving.db.migrate import DatabaseNotReadyError
    from wedsync_cs.monitor_jobs import run_outcomes

    settings = get_settings()
    day = _parse_date(as_of, "--as-of") if as_of is not None else None
    try:
        run = run_outcomes(settings, day, horizon)
    except (LookupError, ValueError, KeyError, DatabaseNotReadyError) as err:
        _fail(str(err))
        raise
    s = run.summary

    def figures(m: dict) -> str:
        shown = [f"{m['n']:,} rows, {m['positives']:,} churned"]
        shown += [
            f"{k} {m[k]:.4f}" for k in ("auc", "pr_auc", "brier", "ece") if m.get(k) is not None
        ]
        return ", ".join(shown)

    typer.secho(
        f"Outcomes of the predictions of {s['days'][0]} to {s['days'][1]} "
        f"({run.horizon_days}-day horizon, cancellations known by {run.as_of})",
        bold=True,
    )
    typer.echo(f"  churn model: {figures(s['churn']['overall'])}")
    typer.echo(f"  health score: {figures(s['health']['overall'])}")
    if "holdout" in s:
        h = s["holdout"]
        typer.echo(
            f"  champion's holdout: auc {h['auc']:.4f}, pr_auc {h['pr_auc']:.4f}, "
            f"brier {h['brier']:.4f}"
        )
    archive = s["archive"]
    typer.echo(
        f"  days read: {archive['days_from_archive']} from the prediction archive, "
        f"{archive['days_from_database']} from the database ({archive['days_archived']} "
        f"archived now)"
    )
    if archive["days_not_archived"]:
        typer.echo(
            "  not archived (being written, or stored without a scored_days row): "
            + ", ".join(archive["days_not_archived"][:5])
            + (" ..." if len(archive["days_not_archived"]) > 5 else "")
        )
    typer.echo(f"  report: {run.report}")
    if run.flags:
        for flag in run.flags:
            typer.secho(f"RETRAIN: {flag}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo("  no retrain flag")


@monitor_app.command("uplift")
def monitor_uplift(
    as_of: Annotated[
        str | None,
        typer.Option(
            help="The last day whose cancellations count (YYYY-MM-DD); default: the newest "
            "scored day."
        ),
    ] = None,
) -> None:
    """Per intervention type, an uplift model (T-learner) of the randomised rule executions,
    fitted on the earlier 70 % of decision days and judged against random targeting (Qini) on
    the later 30 %: the decision and the day's scores under CS_HOME/models/uplift (the worklist
    ranks calls by uplift x LTV when phone_call's is on), the JSON under CS_HOME/reports, the
    figures logged to the champion's MLflow run. Exits 0 whatever the verdict (not an alarm)."""
    from serving.db.migrate import DatabaseNotReadyError
    from wedsync_cs.uplift_job import run_uplift

    settings = get_settings()
    day = _parse_date(as_of, "--as-of") if as_of is not None else None
    try:
        run = run_uplift(settings, day)
    except (LookupError, ValueError, KeyError, DatabaseNotReadyError) as err:
        _fail(str(err))
        raise
    typer.secho(f"Uplift targeting, executions judged by {run.as_of}", bold=True)
    for r in run.records:
        counts = (
            f"{r['n_train']:,} train ({r['n_train_contacted']:,} contacted, "
            f"{r['n_train_held_out']:,} held out), {r['n_test']:,} test"
        )
        qini = (
            f"Qini {r['qini_coefficient']:.4f} (95% CI {r['ci_low']:.4f} to {r['ci_high']:.4f})"
            if r["qini_coefficient"] is not None
            else "no model"
        )
        state = "ON" if r["targeting"] else "off"
        typer.echo(f"  {r['intervention_type']}: {counts}; {qini}; targeting {state}")
        typer.echo(f"    {r['reason']}")
    on = ", ".join(run.on) or "none: every worklist ranks by risk"
    typer.echo(f"  uplift x LTV ranking on for: {on}")
    typer.echo(f"  decision: {run.decision}")
    if run.scores is not None:
        typer.echo(f"  scores: {run.scores}")
    typer.echo(f"  report: {run.report}")
    if run.run_id:
        typer.echo(f"  logged to the champion's MLflow run {run.run_id}")


def _parse_date(text: str, option: str = "--start") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{option} must be a date as YYYY-MM-DD, got {text!r}")
        raise


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def report() -> None:
    """Write one self-contained HTML report under CS_HOME/reports: drift (runs `monitor
    drift`), outcomes (runs `monitor outcomes`), the measured effect of interventions against
    the control group, uplift targeting, the KPIs of the last 90 days and the agents; prints
    its path. A section not available yet says why."""
    from serving.db.migrate import DatabaseNotReadyError
    from wedsync_cs.report_job import write_report

    try:
        run = write_report(get_settings())
    except (LookupError, DatabaseNotReadyError) as err:
        _fail(str(err))
        raise
    for section, reason in run.unavailable.items():
        typer.echo(f"  {section}: not available ({reason})")
    typer.secho(f"Report of {run.as_of}: {run.path}", bold=True)
