"""``warroom admin``: the first admin of a fresh install, tokens, integrations, all audited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from warroom.auth import store
from warroom.auth.cli import Context, app
from warroom.models.tables import AuditRow, UserRow, create_schema, make_engine

PASSWORD = "correct horse battery"
runner = CliRunner()


def admin(engine: Engine, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input, obj=Context(engine=engine, operator="cli:root"))


def now() -> datetime:
    return datetime.now(UTC)


def test_the_first_admin_on_a_fresh_install(tmp_path: Path) -> None:
    """Through the real entry point and settings: an empty data directory, a password on stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARROOM_")}
    env["WARROOM_DATA_DIR"] = str(tmp_path / "var")
    done = subprocess.run(
        [sys.executable, "-m", "warroom.auth", "create", "root", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "created root (admin)" in done.stdout
    engine = make_engine(f"sqlite:///{(tmp_path / 'var' / 'warroom.db').resolve()}")
    with Session(engine) as session:
        assert store.check_login(session, "root", PASSWORD, now()).role == "admin"
        entry = session.scalars(select(AuditRow)).one()
        assert (entry.action, entry.credential, entry.accepted) == ("create_user", "cli", True)
        assert entry.actor.startswith("cli:") and PASSWORD not in entry.detail
    engine.dispose()


def test_create_asks_for_the_password_twice_and_never_invents_one(engine: Engine) -> None:
    asked = admin(engine, "create", "alice", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert asked.exit_code == 0, asked.output
    assert asked.output.count("Password for alice") == 1 and "Repeat for confirmation" in asked.output

    mismatch = admin(engine, "create", "bob", input=f"{PASSWORD}\nsomething else\n")
    nothing = admin(engine, "create", "carl")  # no terminal input: no user, no default password
    short = admin(engine, "create", "dora", "--password-stdin", input="short\n")
    assert mismatch.exit_code != 0 and nothing.exit_code != 0
    assert short.exit_code == 2 and "at least 12 characters" in short.output  # bad input
    machine = admin(engine, "create", "deploy-bot", "--role", "responder", "--no-password")
    assert machine.exit_code == 0
    with Session(engine) as session:
        users = {u.id: u for u in session.scalars(select(UserRow))}
    assert sorted(users) == ["alice", "deploy-bot"]
    assert users["deploy-bot"].password_hash is None
    duplicate = admin(engine, "create", "alice", "--no-password")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output  # refused: a conflict


def test_tokens_are_printed_once_listed_without_secrets_and_revoked(engine: Engine) -> None:
    assert admin(engine, "create", "bob", "--role", "operator", "--no-password").exit_code == 0
    made = admin(engine, "token", "create", "bob", "--name", "laptop", "--expires-in", "30d")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    with Session(engine) as session, session.begin():
        caller = store.caller_for_token(session, token, now())
    assert (caller.user, caller.role.value) == ("bob", "operator")

    listed = admin(engine, "token", "list")
    shown = "wr_" + token.split("_")[1]
    assert shown in listed.output and token not in listed.output and "active" in listed.output
    assert admin(engine, "token", "create", "bob", "--expires-in", "soon").exit_code == 2
    assert admin(engine, "token", "create", "nobody").exit_code == 3  # as the other commands: not found

    revoked = admin(engine, "token", "revoke", shown)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with Session(engine) as session, session.begin(), pytest.raises(store.Unauthenticated, match="revoked"):
        store.caller_for_token(session, token, now())
    assert admin(engine, "token", "revoke", "wr_000000000000").exit_code == 3


def test_integrations_roles_and_the_audit_trail(engine: Engine) -> None:
    assert admin(engine, "create", "alice", "--role", "admin", "--no-password").exit_code == 0
    made = admin(engine, "integration", "create", "prod-alertmanager")
    secret = made.stdout.strip().splitlines()[0]
    assert made.exit_code == 0 and secret.startswith("wri_")
    assert "prod-alertmanager" in admin(engine, "integration", "list").output
    last = admin(engine, "set-role", "alice", "viewer")
    assert last.exit_code == 1 and "last active admin" in last.output
    assert admin(engine, "disable", "alice").exit_code == 1
    assert admin(engine, "create", "bob", "--role", "admin", "--no-password").exit_code == 0
    assert admin(engine, "set-role", "alice", "viewer").exit_code == 0
    assert admin(engine, "integration", "revoke", "1").exit_code == 0

    printed = admin(engine, "audit")
    entries = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [e["action"] for e in entries] == [
        "create_user", "create_integration", "create_user", "update_user", "revoke_integration"]
    assert {e["actor"] for e in entries} == {"cli:root"}
    assert secret not in printed.stdout
    users = admin(engine, "list")
    assert "alice" in users.output and "viewer" in users.output and "tokens only" in users.output


def test_the_cli_creates_the_schema_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that has never seen the API gets its tables from the CLI."""
    monkeypatch.setenv("WARROOM_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("WARROOM_DATABASE_URL", raising=False)
    done = runner.invoke(app, ["list"])
    assert done.exit_code == 0, done.output
    assert "no users yet: warroom admin create NAME --role admin" in done.output
    engine = make_engine(f"sqlite:///{(tmp_path / 'fresh' / 'warroom.db').resolve()}")
    create_schema(engine)  # idempotent: the tables are there already
    engine.dispose()


@pytest.mark.parametrize(("source", "says", "never"), [
    ("alertmanager", ["Alertmanager", "/api/webhooks/alertmanager", "http_config.authorization"], ["Grafana"]),
    ("grafana", ["Grafana: a webhook contact point", "/api/webhooks/grafana"], ["Alertmanager", "http_config"]),
    ("generic", ["/api/webhooks/generic", "Authorization: Bearer <secret>"], ["Alertmanager", "http_config"]),
    ("heartbeat", ["/api/heartbeats/nightly-backup/<secret>", "under heartbeats: in the detection file"],
     ["Alertmanager", "http_config", "/api/webhooks"]),
])
def test_a_new_integration_says_where_its_secret_goes_for_its_own_source(
        engine: Engine, source: str, says: list[str], never: list[str]) -> None:
    made = admin(engine, "integration", "create", "nightly-backup", "--source", source)
    assert made.exit_code == 0, made.output
    assert made.stdout.strip().startswith("wri_")
    for text in says:
        assert text in made.stderr
    for text in never:
        assert text not in made.stderr
