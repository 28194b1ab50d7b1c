"""Alembic's environment: always handed an open connection by ``warroom.migrations``.

There is no ``alembic.ini``: the connection (already holding the migration lock)
comes from ``Config.attributes``, and the target metadata is the read model's.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from warroom.models.tables import Base, UTCDateTime

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations through warroom (`warroom db upgrade`), not the alembic command")


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Write the model's UTCDateTime as a plain DateTime: revisions never import the model."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    # SQLite cannot ALTER most things: later revisions rebuild tables in batch mode.
    render_as_batch=connection.dialect.name == "sqlite",
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
