"""Schema migrations of the read model (Alembic), driven from Python.

Every schema change is a revision under ``versions/``; ``upgrade`` brings a
database to the newest one. It is safe when several processes start at once
(two workers, an API replica, ``warroom db upgrade``): on PostgreSQL they queue
on an advisory lock held for the migration's transaction; on SQLite on the
database's write lock (``BEGIN IMMEDIATE``), taken before the current revision
is read. Whoever comes second finds the schema current and does nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from warroom.models.tables import Base

log = logging.getLogger("warroom.migrations")

MIGRATIONS_DIR = Path(__file__).resolve().parent
ADVISORY_LOCK_KEY = 0x7761_7272_6F6F_6D  # "warroom": one key for every warroom process


class SchemaNotCurrent(Exception):
    """The database is not at the revision this code needs (and may not migrate it)."""


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this code knows."""
    heads = ScriptDirectory.from_config(_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads ({', '.join(heads)}); merge them")
    return heads[0]


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other migrating process can enter."""
    if engine.dialect.name == "sqlite":
        # pysqlite would run DDL outside any transaction; drive it by hand instead.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    elif engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            yield conn
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {engine.dialect.name}")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the newest by default), under the lock."""
    with _locked(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(_config(conn), revision)
        after = MigrationContext.configure(conn).get_current_revision()
    if before != after:
        log.info("read model migrated from %s to %s", before or "an empty database", after)


def downgrade(engine: Engine, revision: str) -> None:
    """Step the schema back to ``revision`` (``base`` drops every table). Tests and rollbacks only."""
    with _locked(engine) as conn:
        command.downgrade(_config(conn), revision)


def require_current(engine: Engine) -> None:
    """Raise ``SchemaNotCurrent`` unless the database is at this code's head revision."""
    at, want = current(engine), head()
    if at != want:
        raise SchemaNotCurrent(
            f"the read model is at revision {at or '(none: empty database)'} but this warroom needs {want}; "
            "run `warroom db upgrade`"
        )


def schema_diff(engine: Engine) -> list[Any]:
    """What differs between the database and the table definitions (empty when they agree)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def new_revision(engine: Engine, message: str) -> Path:
    """Write a revision that takes a database at head to the current table definitions.

    For developers: run it against a scratch database that ``upgrade`` brought to
    head, then read and edit the generated file before committing it.
    """
    numbered = [m.group(1) for p in (MIGRATIONS_DIR / "versions").glob("*.py") if (m := re.match(r"(\d{4})_", p.name))]
    rev_id = f"{max((int(n) for n in numbered), default=0) + 1:04d}"
    with _locked(engine) as conn:
        script = command.revision(_config(conn), message=message, autogenerate=True, rev_id=rev_id)
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
