"""``warroom admin ...``: users, API tokens, alert integrations and the audit log, from the server.

It works on the database directly (``WARROOM_DATABASE_URL`` or the SQLite
file under ``WARROOM_DATA_DIR``), so it is how the first admin is made on a
fresh install, and how access is repaired when nobody can sign in. Every
change it makes is written to the audit log as done by ``cli:<os user>``.

    warroom admin create alice --role admin         # asks for the password twice
    warroom admin token create alice --name laptop  # prints the token once
    warroom admin integration create prod-alertmanager

``app`` is a typer application; the main CLI mounts it as ``admin``
(``python -m warroom.auth`` runs it on its own).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Optional

import typer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from warroom.auth import store
from warroom.models.access import ROLE_DUTIES, Role, shown_prefix
from warroom.models.durations import parse_duration
from warroom.models.tables import create_schema, make_engine
from warroom.settings import Settings

app = typer.Typer(
    name="admin",
    help="Users, API tokens, alert integrations and the audit log (run it on the server: it opens the database).",
    no_args_is_help=True,
    add_completion=False,
)
token_app = typer.Typer(help="API tokens: for the CLI, scripts and other machines.", no_args_is_help=True)
integration_app = typer.Typer(help="Alert integrations: the secrets alert sources deliver with.",
                              no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(integration_app, name="integration")


class Context:
    """The composition root of the admin CLI: settings, the engine, the clock, who runs it."""

    def __init__(self, engine: Engine | None = None, clock: Callable[[], datetime] | None = None,
                 operator: str | None = None, settings: Settings | None = None) -> None:
        self._engine = engine
        self._settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.operator = operator or f"cli:{_os_user()}"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            settings = self.settings
            if settings.database_url is None:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            self._engine = make_engine(settings.read_model_url)
            create_schema(self._engine)
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def audit(self, session: Session, action: str, reason: str, target: str | None = None, **detail: Any) -> None:
        store.append_audit(
            session, at=self.clock(), action=action, accepted=True, status_code=0, reason=reason,
            actor=self.operator, credential="cli", method="CLI", path=f"warroom admin {action}", target=target,
            client_ip="local", user_agent="warroom admin", detail=store.compact(store.redact(detail)) if detail else "",
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's random uid)
        return "unknown"


@app.callback()
def _root(ctx: typer.Context) -> None:
    if ctx.obj is None:
        ctx.obj = Context()


def _ctx(ctx: typer.Context) -> Context:
    return ctx.obj  # type: ignore[no-any-return]


def _fail(message: str, code: int = 2) -> None:
    """Stop with ``message`` and the exit code the other warroom commands use for the same kind
    of failure: 1 refused (a conflict), 2 bad input, 3 not found."""
    typer.echo(f"warroom admin: {message}", err=True)
    raise typer.Exit(code=code)


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except store.NotFound as err:
        _fail(str(err), 3)
    except store.Conflict as err:
        _fail(str(err), 1)
    except store.AccessError as err:  # Invalid, and anything else the store refuses as input
        _fail(str(err), 2)


def _password(password_stdin: bool, user: str) -> str:
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            _fail("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    return str(typer.prompt(f"Password for {user}", hide_input=True, confirmation_prompt=True))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


# --- users -----------------------------------------------------------------------------------------

RoleArg = Annotated[
    Role, typer.Option("--role", "-r", help="viewer, responder, operator or admin", case_sensitive=False)
]


@app.command()
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="user id: the policy's person id for responders, e.g. alice")],
    role: RoleArg = Role.VIEWER,
    name: Annotated[str, typer.Option(help="display name")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    no_password: Annotated[bool, typer.Option("--no-password", help="no web sign-in: API tokens only")] = False,
) -> None:
    """Create a user (the first admin of a fresh install: --role admin). Asks for the password."""
    c = _ctx(ctx)
    password = None if no_password else _password(password_stdin, user)
    with _refusals(), c.session() as session:
        row = store.create_user(session, user.strip().lower(), name=name, role=role, password=password,
                                by=c.operator, now=c.clock())
        c.audit(session, "create_user", f"created {row.id} ({row.role})", target=f"user={row.id}",
                role=row.role, can_sign_in=password is not None)
    typer.echo(f"created {row.id} ({role.value}): {ROLE_DUTIES[role]}")


@app.command("list")
def list_users(ctx: typer.Context) -> None:
    """Every user, their role and state."""
    c = _ctx(ctx)
    with c.session() as session:
        rows = store.list_users(session)
        for r in rows:
            state = "disabled" if r.disabled_at else ("sign-in" if r.password_hash else "tokens only")
            typer.echo(f"{r.id:24} {r.role:10} {state:12} last sign-in {_when(r.last_login_at)}  {r.name}")
    if not rows:
        typer.echo("no users yet: warroom admin create NAME --role admin")


def _change(ctx: typer.Context, user: str, action: str, what: str, **changes: Any) -> None:
    c = _ctx(ctx)
    with _refusals(), c.session() as session:
        row = store.update_user(session, user, now=c.clock(), **changes)
        shown = {k: v for k, v in changes.items() if k != "password"}
        c.audit(session, action, f"{row.id}: {what}", target=f"user={row.id}", **shown)
    typer.echo(f"{row.id}: {what}")


@app.command("set-role")
def set_role(ctx: typer.Context, user: str, role: Annotated[Role, typer.Argument(case_sensitive=False)]) -> None:
    """Give a user another role (effective at their next request)."""
    _change(ctx, user, "update_user", f"role is now {role.value}", role=role)


@app.command()
def disable(ctx: typer.Context, user: str) -> None:
    """Stop a user: their sign-ins end and their tokens are refused."""
    _change(ctx, user, "update_user", "disabled", disabled=True)


@app.command()
def enable(ctx: typer.Context, user: str) -> None:
    """Let a disabled user in again."""
    _change(ctx, user, "update_user", "enabled", disabled=False)


@app.command()
def password(
    ctx: typer.Context, user: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Set a user's password (ends their web sign-ins)."""
    _change(ctx, user, "update_user", "password set; web sign-ins ended", password=_password(password_stdin, user))


# --- tokens ------------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: str,
    name: Annotated[str, typer.Option(help="what it is for, e.g. 'laptop CLI'")] = "cli",
    expires_in: Annotated[Optional[str], typer.Option(
        help="lifetime, e.g. 30d or 12h (at most 730d); default WARROOM_TOKEN_DAYS (90 days)")] = None,
    role: Annotated[Optional[Role], typer.Option(help="a lower role than the user's", case_sensitive=False)] = None,
) -> None:
    """Create an API token for USER and print it (once: only its hash is kept)."""
    c = _ctx(ctx)
    try:
        lifetime = parse_duration(expires_in) if expires_in else timedelta(days=c.settings.token_days)
    except ValueError as err:
        _fail(f"--expires-in: {err}")
    now = c.clock()
    with _refusals(), c.session() as session:
        value, row = store.issue_token(session, user, name=name, role=role, expires_at=now + lifetime,
                                       by=c.operator, now=now)
        shown = shown_prefix("wr", row.prefix)
        c.audit(session, "create_token", f"token {shown} for {row.user_id}", target=f"token_id={shown}",
                user=row.user_id, name=row.name, role=row.role, expires_at=row.expires_at.isoformat())
    typer.echo(value)
    typer.echo(f"token {shown} for {row.user_id}, expires {_when(row.expires_at)} UTC; it is not shown again. "
               "Use it as: export WARROOM_API_TOKEN=<token>", err=True)


@token_app.command("list")
def token_list(
    ctx: typer.Context, user: Annotated[Optional[str], typer.Option(help="only this user's")] = None
) -> None:
    """API tokens (never their secrets): id, user, state, expiry, last use."""
    c = _ctx(ctx)
    now = c.clock()
    with c.session() as session:
        for r in store.list_tokens(session, user):
            typer.echo(f"{shown_prefix('wr', r.prefix)}  {r.user_id:20} {store.token_status(r, now):8} "
                       f"expires {_when(r.expires_at)}  last used {_when(r.last_used_at)}  "
                       f"{r.role or '(user role)':10} {r.name}")


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="e.g. wr_3f9a1c0b7d2e")]) -> None:
    """Revoke an API token at once."""
    c = _ctx(ctx)
    with _refusals(), c.session() as session:
        row = store.revoke_token(session, token_id, by=c.operator, now=c.clock())
        shown = shown_prefix("wr", row.prefix)
        c.audit(session, "revoke_token", f"revoked {shown} of {row.user_id}", target=f"token_id={shown}")
    typer.echo(f"revoked {shown} ({row.user_id}, {row.name})")


# --- integrations ------------------------------------------------------------------------------------


@integration_app.command("create")
def integration_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="e.g. prod-alertmanager")],
    source: Annotated[
        str, typer.Option(help="the alert source: " + ", ".join(store.INTEGRATION_SOURCES))
    ] = "alertmanager",
) -> None:
    """Create an alert integration and print its secret (once)."""
    c = _ctx(ctx)
    with _refusals(), c.session() as session:
        value, row = store.create_integration(session, name, source=source, by=c.operator, now=c.clock())
        c.audit(session, "create_integration", f"integration {row.id} ({row.name})",
                target=f"integration_id={row.id}", source=row.source)
    typer.echo(value)
    typer.echo(f"integration {row.id} ({row.name}); the secret is not shown again. "
               f"{integration_hint(row.source, row.name)}", err=True)


def integration_hint(source: str, name: str) -> str:
    """Where a new integration's secret goes, in the words of its alert source."""
    base = "$WARROOM_PUBLIC_BASE_URL"
    if source == "heartbeat":
        return (f"After each run the job POSTs to {base}/api/heartbeats/{name}/<secret> (or to "
                f"{base}/api/heartbeats/{name} with 'Authorization: Bearer <secret>'). The heartbeat "
                f"'{name}' must be listed under heartbeats: in the detection file (WARROOM_DETECTION), "
                "or the call is refused with 404.")
    if source == "grafana":
        return (f"Grafana: a webhook contact point with URL {base}/api/webhooks/grafana and "
                "Authorization header scheme Bearer, credentials <secret> (or the URL "
                f"{base}/api/webhooks/grafana/<secret>).")
    if source == "generic":
        return (f"POST JSON alerts to {base}/api/webhooks/generic with 'Authorization: Bearer <secret>' "
                f"(or to {base}/api/webhooks/generic/<secret>).")
    return (f"Alertmanager: a webhook receiver with url {base}/api/webhooks/alertmanager and "
            f"http_config.authorization.credentials <secret> (or the url {base}/api/webhooks/alertmanager/<secret>).")


@integration_app.command("list")
def integration_list(ctx: typer.Context) -> None:
    """Alert integrations and their state."""
    c = _ctx(ctx)
    now = c.clock()
    with c.session() as session:
        for r in store.list_integrations(session):
            typer.echo(f"{r.id:4} {r.name:30} {r.source:14} {store.token_status(r, now):8} "
                       f"last used {_when(r.last_used_at)}")


@integration_app.command("revoke")
def integration_revoke(ctx: typer.Context, integration_id: int) -> None:
    """Revoke an integration's secret: its deliveries are refused from now on."""
    c = _ctx(ctx)
    with _refusals(), c.session() as session:
        row = store.revoke_integration(session, integration_id, by=c.operator, now=c.clock())
        c.audit(session, "revoke_integration", f"revoked integration {row.id} ({row.name})",
                target=f"integration_id={row.id}")
    typer.echo(f"revoked integration {row.id} ({row.name})")


# --- the audit log -----------------------------------------------------------------------------------


@app.command()
def audit(
    ctx: typer.Context,
    since: Annotated[Optional[str], typer.Option(help="entries of the last ..., e.g. 24h or 7d")] = None,
    actor: Annotated[Optional[str], typer.Option()] = None,
    refused: Annotated[bool, typer.Option("--refused", help="refused requests only")] = False,
) -> None:
    """Print the audit log as JSON lines, oldest first (for a quick look or a pipe to jq)."""
    c = _ctx(ctx)
    start = None
    if since:
        try:
            start = c.clock() - parse_duration(since)
        except ValueError as err:
            _fail(f"--since: {err}")
    f = store.AuditFilter(actor=actor, since=start, accepted=False if refused else None)
    after = 0
    with c.session() as session:
        while True:
            rows = store.audit_page(session, f, limit=1000, after=after)
            for r in rows:
                typer.echo(json.dumps(store.audit_dict(r), ensure_ascii=False))
            if len(rows) < 1000:
                break
            after = rows[-1].id


def main() -> None:
    app(prog_name="warroom admin")
