"""The read model: tables written only by activities (plus the number allocator).

The workflows are the source of truth; everything here can be rebuilt from
them. Every write is idempotent, because an activity may run more than once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes (SQLite forgets zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the read model")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are fixed here, so that a later migration can name what it alters
(SQLite's batch mode and PostgreSQL's ALTER both need the name)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IncidentNumber(Base):
    """Allocates human-sized incident numbers (#42), once per request key."""

    __tablename__ = "incident_numbers"
    __table_args__ = {"sqlite_autoincrement": True}
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    """``api:`` plus the caller's Idempotency-Key (at most 200 characters)."""
    created_at: Mapped[datetime]


class AlertGroup(Base):
    """Which open incident an alert group feeds; released when that incident resolves."""

    __tablename__ = "alert_groups"
    group_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_key: Mapped[str] = mapped_column(Text)
    incident_number: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime]


class IncidentRow(Base):
    __tablename__ = "incidents"
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(8), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(32))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    declared_at: Mapped[datetime]
    detected_at: Mapped[datetime | None]
    impact_started_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    resolved_at: Mapped[datetime | None]
    postmortem_deadline: Mapped[datetime | None]
    postmortem_submitted_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)


class TimelineRow(Base):
    __tablename__ = "timeline_entries"
    incident_number: Mapped[int] = mapped_column(ForeignKey("incidents.number"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(100))


class StatusUpdateRow(Base):
    __tablename__ = "status_updates"
    incident_number: Mapped[int] = mapped_column(ForeignKey("incidents.number"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)


class NotificationRow(Base):
    """One row per delivery attempt key: the unique key is what makes a send happen once."""

    __tablename__ = "notifications"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    incident_number: Mapped[int] = mapped_column(Integer, index=True)
    person_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]


def make_engine(url: str) -> Engine:
    """An engine for the read model; SQLite gets WAL and a busy timeout so the API
    and the worker can share the file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create every table straight from the metadata: for throw-away test databases.

    Real databases get their schema from the migrations (``warroom db upgrade``);
    a test keeps the two identical."""
    Base.metadata.create_all(engine)


def allocate_incident_number(session: Session, now: datetime, request_key: str | None = None) -> int:
    """A new incident number; the same ``request_key`` always gets the same number."""
    if request_key is not None:
        existing = session.scalar(select(IncidentNumber.number).where(IncidentNumber.request_key == request_key))
        if existing is not None:
            return existing
    try:
        with session.begin_nested():
            row = IncidentNumber(request_key=request_key, created_at=now)
            session.add(row)
            session.flush()
            return row.number
    except IntegrityError:
        number = session.scalar(select(IncidentNumber.number).where(IncidentNumber.request_key == request_key))
        assert number is not None
        return number


def insert_ignoring_duplicates(session: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """INSERT that skips rows whose primary key already exists (both dialects)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    session.execute(dialect_insert(model).on_conflict_do_nothing(), rows)


def upsert_newer(session: Session, values: dict[str, Any]) -> None:
    """Write an incident row unless a newer version is already stored."""
    number, version = values["number"], values["version"]
    result = session.execute(
        update(IncidentRow)
        .where(IncidentRow.number == number, IncidentRow.version < version)
        .values(**values)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        return
    if session.get(IncidentRow, number) is None:
        try:
            with session.begin_nested():
                session.execute(insert(IncidentRow).values(**values))
        except IntegrityError:
            session.execute(
                update(IncidentRow)
                .where(IncidentRow.number == number, IncidentRow.version < version)
                .values(**values)
            )
