"""The operational database of these settings (wiring only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wedsync_cs.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


def operational_engine(settings: Settings) -> Engine:
    """An engine on ``CS_DATABASE_URL``, or on the SQLite file under CS_HOME (folder made)."""
    from serving.db.migrate import engine_for

    if settings.database_url is None:
        (settings.home_dir / "db").mkdir(parents=True, exist_ok=True)
    return engine_for(settings.operational_database_url)
