"""The ``wedsync-cs`` command line: one entry point, a subcommand per job.

Heavy libraries are imported inside the commands, so ``wedsync-cs --help`` stays fast.
"""

from __future__ import annotations

import logging
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


def _setup_logging() -> None:
    logging.basicConfig(
        level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.callback()
def main() -> None:
    """Every command reads its configuration from ``CS_*`` environment variables."""
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
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
) -> None:
    """Simulate supplier behaviour; write a contract folder and the true churn probabilities."""
    from features.simulator import SimulationConfig
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

    if not run_validation(raw, quarantine):
        raise typer.Exit(1)


@app.command()
def demo(
    suppliers: Annotated[int, typer.Option(min=1, help="Suppliers in the demo set.")] = 2000,
    days: Annotated[int, typer.Option(min=28, help="Days of history.")] = 730,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Run the platform end to end on embedded defaults (everything under CS_HOME)."""
    from wedsync_cs.jobs import run_demo

    if not run_demo(get_settings(), suppliers=suppliers, days=days, seed=seed):
        raise typer.Exit(1)


@app.command()
def config() -> None:
    """Show every setting, its environment variable and its current value."""
    settings = get_settings()
    for name, field in type(settings).model_fields.items():
        typer.echo(f"CS_{name.upper():<14} = {getattr(settings, name)!s:<24} {field.description}")


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"--start must be a date as YYYY-MM-DD, got {text!r}")
        raise


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)
