"""The read model's schema comes from the migrations, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, Table, insert, inspect, select, text
from sqlalchemy.orm import Session

from tests.conftest import TestDatabase
from warroom import migrations
from warroom.models.tables import (
    Base,
    IncidentNumber,
    StatusUpdateRow,
    allocate_incident_number,
    first_slack_request,
    instance_secret,
)
from warroom.settings import Settings
from warroom.startup import open_read_model

MODEL_TABLES = set(Base.metadata.tables)


def tables(db: TestDatabase) -> set[str]:
    eng = db.engine()
    try:
        return set(inspect(eng).get_table_names()) - {"alembic_version"}
    finally:
        eng.dispose()


def test_upgrade_from_empty_then_downgrade_to_base_then_upgrade_again(database: TestDatabase) -> None:
    eng = database.engine()
    assert tables(database) == set()
    assert migrations.current(eng) is None

    migrations.upgrade(eng)
    assert migrations.current(eng) == migrations.head()
    assert tables(database) == MODEL_TABLES
    with Session(eng) as session, session.begin():
        first = allocate_incident_number(session, datetime.now(UTC), "before-downgrade")

    migrations.downgrade(eng, "base")
    assert migrations.current(eng) is None
    assert tables(database) == set()

    migrations.upgrade(eng)
    assert migrations.current(eng) == migrations.head()
    assert tables(database) == MODEL_TABLES
    with Session(eng) as session, session.begin():
        # The tables are usable again, and empty: the downgrade really dropped them.
        assert session.scalars(select(IncidentNumber)).all() == []
        assert allocate_incident_number(session, datetime.now(UTC), "after-upgrade") == first


def test_upgrading_a_current_database_changes_nothing(database: TestDatabase) -> None:
    eng = database.engine()
    migrations.upgrade(eng)
    with Session(eng) as session, session.begin():
        number = allocate_incident_number(session, datetime.now(UTC), "kept")
    migrations.upgrade(eng)
    with Session(eng) as session:
        assert session.scalar(select(IncidentNumber.number).where(IncidentNumber.request_key == "kept")) == number


def test_migration_head_matches_the_table_definitions(database: TestDatabase) -> None:
    """A change to warroom/models/tables.py must come with a migration.

    If this fails, write one: bring a scratch database to head with
    `warroom db upgrade`, then `warroom db revision -m "what changed"` against it,
    and read the generated file under warroom/migrations/versions/."""
    eng = database.engine()
    migrations.upgrade(eng)
    assert migrations.schema_diff(eng) == []


def test_the_diff_check_notices_a_table_the_migrations_lack(database: TestDatabase) -> None:
    eng = database.engine()
    migrations.upgrade(eng)
    with eng.begin() as conn:
        conn.execute(text("DROP TABLE alert_groups"))
    diff = migrations.schema_diff(eng)
    assert [(d[0], d[1].name) for d in diff] == [("add_table", "alert_groups")]


def test_processes_starting_together_migrate_once(database: TestDatabase) -> None:
    """Workers and API replicas all upgrade at start-up; the lock makes that safe."""
    engines = [database.engine() for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(eng: object) -> None:
        try:
            barrier.wait(timeout=10)
            migrations.upgrade(eng)  # type: ignore[arg-type]
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=start, args=(eng,)) for eng in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert migrations.current(engines[0]) == migrations.head()
    with engines[0].connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    assert tables(database) == MODEL_TABLES


def test_start_up_migrates_an_empty_database_by_default(database: TestDatabase) -> None:
    eng = open_read_model(Settings(database_url=database.url))
    try:
        assert migrations.current(eng) == migrations.head()
    finally:
        eng.dispose()


def test_start_up_without_auto_migrate_refuses_an_old_schema(database: TestDatabase) -> None:
    settings = Settings(database_url=database.url, auto_migrate=False)
    with pytest.raises(migrations.SchemaNotCurrent, match="warroom db upgrade"):
        open_read_model(settings)
    migrations.upgrade(database.engine())
    eng = open_read_model(settings)
    eng.dispose()


def test_0008_adds_the_instance_secrets_table_and_its_downgrade_removes_it(database: TestDatabase) -> None:
    eng = database.engine()
    migrations.upgrade(eng, "0007_detection")
    assert "instance_secrets" not in tables(database)

    migrations.upgrade(eng, "0008_instance_secrets")
    assert "instance_secrets" in tables(database)
    assert {c["name"] for c in inspect(eng).get_columns("instance_secrets")} == {"name", "value", "created_at"}
    now = datetime.now(UTC)
    assert instance_secret(eng, "statuspage", "first", now) == ("first", True)
    assert instance_secret(eng, "statuspage", "second", now) == ("first", False)  # the name is the key

    migrations.downgrade(eng, "0007_detection")
    assert migrations.current(eng) == "0007_detection"
    assert "instance_secrets" not in tables(database)
    assert "alert_deliveries" in tables(database)  # 0007's tables stay

    migrations.upgrade(eng)
    assert instance_secret(eng, "statuspage", "third", now) == ("third", True)  # dropped with its rows


def test_0009_adds_the_status_update_phase_and_keeps_older_updates(database: TestDatabase) -> None:
    """Updates written before 0009 get no phase (the status page reads that as "kept the
    phase in force"); a downgrade drops the column and keeps the updates."""
    eng = database.engine()
    migrations.upgrade(eng, "0008_instance_secrets")
    old = MetaData()
    incidents = Table("incidents", old, autoload_with=eng)
    updates = Table("status_updates", old, autoload_with=eng)
    assert "phase" not in updates.c
    now = datetime.now(UTC)
    stored = now.replace(tzinfo=None)  # the reflected tables take what the database keeps: UTC without a zone
    with eng.begin() as conn:
        conn.execute(insert(incidents).values(
            number=1, title="DNS slow", severity="SEV-2", status="acknowledged", source="api", components=[],
            declared_at=stored, version=1, state={}))
        conn.execute(insert(updates).values(
            incident_number=1, seq=1, at=stored, kind="update", author="alice", message="Looking into it."))

    migrations.upgrade(eng, "0009_status_update_phase")
    assert {c["name"]: c["nullable"] for c in inspect(eng).get_columns("status_updates")}["phase"] is True
    with Session(eng) as session, session.begin():
        assert session.scalars(select(StatusUpdateRow.phase)).all() == [None]
        session.add(StatusUpdateRow(incident_number=1, seq=2, at=now, kind="update", author="alice",
                                    message="Found it.", phase="identified"))
    with Session(eng) as session:
        phases = session.scalars(select(StatusUpdateRow.phase).order_by(StatusUpdateRow.seq)).all()
        assert phases == [None, "identified"]

    migrations.downgrade(eng, "0008_instance_secrets")
    assert "phase" not in {c["name"] for c in inspect(eng).get_columns("status_updates")}
    with eng.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM status_updates")) == 2


def test_0010_adds_the_slack_requests_table_and_a_request_is_first_only_once(database: TestDatabase) -> None:
    eng = database.engine()
    migrations.upgrade(eng, "0009_status_update_phase")
    assert "slack_requests" not in tables(database)

    migrations.upgrade(eng, "0010_slack_requests")
    assert {c["name"] for c in inspect(eng).get_columns("slack_requests")} == {"signature", "received_at"}
    now = datetime.now(UTC)
    long_ago = now - timedelta(minutes=10)
    with Session(eng) as session, session.begin():
        assert first_slack_request(session, "v0=aa", long_ago, long_ago - timedelta(minutes=10))
        assert first_slack_request(session, "v0=bb", now, now - timedelta(minutes=10))
        assert not first_slack_request(session, "v0=bb", now, now - timedelta(minutes=10))
    with Session(eng) as session, session.begin():
        # Past the window a signature is forgotten (its timestamp would be refused anyway).
        assert first_slack_request(session, "v0=aa", now, now - timedelta(minutes=5))

    migrations.downgrade(eng, "0009_status_update_phase")
    assert "slack_requests" not in tables(database)
    assert "status_updates" in tables(database)  # the tables before it stay
