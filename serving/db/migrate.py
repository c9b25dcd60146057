"""Making and checking the operational database's schema with its Alembic migrations.

``wedsync-cs db upgrade`` brings a database to the newest revision; the service and the jobs
call :func:`require_current` first and refuse a database behind the migrations, naming the
command that fixes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseNotReadyError(RuntimeError):
    """The operational database is unreachable or behind the migrations; the message says what
    to run."""


def redact(url: str) -> str:
    """A database URL without its password, for messages."""
    return re.sub(r"(//[^:/@]+):[^@/]+@", r"\1:***@", url)


CONNECT_SECONDS = 5


def engine_for(url: str) -> Engine:
    """An engine for ``url``; SQLite with foreign keys enforced and a wait on locks (several
    workers and the daily job share one file)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    # an unreachable server fails in seconds, not after the system's TCP timeout (a request
    # waiting on it holds its worker)
    timeout = {"connect_timeout": CONNECT_SECONDS}
    return create_engine(url, pool_pre_ping=True, connect_args=timeout)


def insert_for(bind: Engine | Connection):
    """The dialect's ``insert`` (SQLite or PostgreSQL), which has ``on_conflict_do_*``."""
    return {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[bind.dialect.name]


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_state(engine: Engine) -> SchemaState:
    """The database's revision against the code's newest one."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(current=current, head=head_revision())


def upgrade(engine: Engine, revision: str = "head") -> SchemaState:
    """Migrate the database to ``revision`` (default: the newest), in one transaction per
    migration; a database already there is left as it is."""
    cfg = _config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    return schema_state(engine)


def downgrade(engine: Engine, revision: str) -> SchemaState:
    cfg = _config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
    return schema_state(engine)


def require_current(engine: Engine) -> None:
    """Refuse a database that is unreachable or not at the newest revision.

    Raises:
        DatabaseNotReadyError: naming the database, its revision and ``wedsync-cs db upgrade``.
    """
    where = redact(engine.url.render_as_string(hide_password=False))
    try:
        state = schema_state(engine)
    except Exception as err:  # any driver's connection error
        raise DatabaseNotReadyError(
            f"the operational database {where} is unreachable: {err}"
        ) from err
    if not state.up_to_date:
        raise DatabaseNotReadyError(
            f"the operational database {where} is at revision {state.current or 'none'}, "
            f"the code needs {state.head}: run `wedsync-cs db upgrade`"
        )
