"""``wedsync-cs serve``: check that there is something to serve, then run BentoML."""

from __future__ import annotations

import typer

from wedsync_cs.settings import Settings


def check_servable(settings: Settings) -> None:
    """Raises, with the command that fixes it, when the service could never become ready:
    no champion (``LookupError``: run ``train``), a database behind the migrations, or no
    feature store."""
    from wedsync_cs.service_wiring import build_backend

    build_backend(settings).engine.dispose()


def run_server(settings: Settings, port: int, workers: int) -> None:
    """Serve on 127.0.0.1:``port`` with ``workers`` processes until interrupted."""
    import bentoml

    from serving.service import CustomerSuccess

    if not settings.api_tokens:
        typer.secho(
            "warning: CS_API_TOKENS is empty: every route but /livez and /readyz answers 401",
            fg=typer.colors.YELLOW,
            err=True,
        )
    CustomerSuccess.config["workers"] = workers
    typer.secho(
        f"Serving on http://127.0.0.1:{port} ({workers} worker(s)); OpenAPI at /openapi.json",
        bold=True,
    )
    bentoml.serve(CustomerSuccess, host="127.0.0.1", port=port, blocking=True)
