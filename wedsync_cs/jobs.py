"""The jobs behind the CLI: IO and printing around the pure parts of the platform."""

from __future__ import annotations

from pathlib import Path

import typer

from features.simulator import SimulationConfig, SimulationSummary
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
    ] + [(f"rows: {name}", f"{n:,}") for name, n in sorted(summary.rows.items())]
    _echo_table(rows, "Simulation")


def run_simulation(
    config: SimulationConfig, out: Path, *, overwrite: bool = False
) -> SimulationSummary:
    from features.simulator import simulate

    summary = simulate(config, out, overwrite=overwrite)
    print_simulation(summary, out)
    return summary


def run_validation(raw: Path, quarantine: Path | None) -> bool:
    """Validate ``raw``; print the verdict, and the quarantine counts if any. True when usable."""
    from features.raw_reader import RawDataError, load_raw

    try:
        tables = load_raw(raw, quarantine)
    except RawDataError as err:
        typer.secho(f"INVALID: {err}", fg=typer.colors.RED, err=True)
        return False
    rows = [(name, f"{len(frame):,} valid rows") for name, frame in tables.frames.items()]
    _echo_table(rows, f"Contract check of {raw}: {'OK' if tables.report.ok else 'quarantined'}")
    if not tables.report.ok:
        counts = tables.report.counts()
        typer.secho(f"Quarantined rows written to {quarantine}:", bold=True)
        for name, n in tables.quarantined.items():
            if n:
                typer.echo(f"  {name}: {n:,} rows")
        typer.echo(counts.to_string(index=False))
    return True


def run_demo(settings: Settings, *, suppliers: int, days: int, seed: int) -> bool:
    """Simulate a default set under CS_HOME, validate it and summarise it."""
    home = settings.ensure_home()
    out = settings.data_dir / "demo"
    typer.secho(f"CS_HOME = {home}", bold=True)
    config = SimulationConfig(suppliers=suppliers, days=days, seed=seed, threads=settings.threads)
    run_simulation(config, out, overwrite=True)
    return run_validation(out / "raw", None)
