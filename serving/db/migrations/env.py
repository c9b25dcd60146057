"""Alembic's environment: the operational tables of :mod:`serving.db.models`.

Run through :mod:`serving.db.migrate` (``wedsync-cs db upgrade``), which passes the database
URL or an open connection; SQLite gets batch mode so that later migrations can alter tables.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from serving.db.models import Base

config = context.config
target = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        engine = create_engine(config.get_main_option("sqlalchemy.url"))
        with engine.begin() as connection:
            _run(connection)
        engine.dispose()
