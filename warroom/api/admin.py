"""Admin routes: users, API tokens, alert integrations, and the audit log (read and export).

Every route needs the admin role, except ``GET /api/me``. A new token or
integration secret is in the answer once and never again (only its hash is kept).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from warroom.api.auth import Admin, CurrentUser
from warroom.api.params import path_id, query_id
from warroom.auth import store
from warroom.models.access import Role, shown_prefix
from warroom.models.tables import ApiTokenRow, IntegrationRow, UserRow

router = APIRouter()


def _rt(request: Request) -> Any:
    return request.app.state.runtime


async def _db(request: Request, fn: Callable[[Session], Any]) -> Any:
    rt = _rt(request)

    def work() -> Any:
        with Session(rt.engine) as session, session.begin():
            try:
                return fn(session)
            except store.NotFound as err:
                raise HTTPException(status_code=404, detail=str(err)) from None
            except store.Conflict as err:
                raise HTTPException(status_code=409, detail=str(err)) from None
            except store.Invalid as err:
                raise HTTPException(status_code=422, detail=str(err)) from None

    return await run_in_threadpool(work)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("give a time zone, e.g. 2026-12-01T00:00:00Z")
    return value


# --- who am I -------------------------------------------------------------------------------------


class MeOut(BaseModel):
    user: str
    name: str
    role: str
    via: str
    credential: str
    csrf_token: str | None = None


@router.get("/api/me", response_model=MeOut, tags=["access"])
async def me(caller: CurrentUser) -> Any:
    """Who the API takes the caller for, and with which role."""
    return MeOut(user=caller.user, name=caller.name, role=caller.role.value, via=caller.via,
                 credential=caller.credential, csrf_token=caller.csrf)


# --- users ----------------------------------------------------------------------------------------


class UserIn(_In):
    id: str = Field(min_length=1, max_length=100, description="the policy's person id for responders, e.g. alice")
    name: str = Field(default="", max_length=200)
    role: Role = Role.VIEWER
    password: str | None = Field(default=None, max_length=1024, description="none: API tokens only, no web sign-in")


class UserPatch(_In):
    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=1024)


class UserOut(BaseModel):
    id: str
    name: str
    role: str
    can_sign_in: bool
    disabled: bool
    in_policy: bool
    """Whether the policy knows this person (only they can acknowledge, hold roles, run runbooks)."""
    created_at: datetime
    created_by: str
    last_login_at: datetime | None


def _user_out(row: UserRow, people: Any) -> UserOut:
    return UserOut(id=row.id, name=row.name, role=row.role, can_sign_in=row.password_hash is not None,
                   disabled=row.disabled_at is not None, in_policy=row.id in people, created_at=row.created_at,
                   created_by=row.created_by, last_login_at=row.last_login_at)


@router.get("/api/admin/users", response_model=list[UserOut], tags=["access"])
async def list_users(request: Request, caller: Admin) -> Any:
    people = _rt(request).policy.people
    return await _db(request, lambda s: [_user_out(r, people) for r in store.list_users(s)])


@router.post("/api/admin/users", status_code=201, response_model=UserOut, tags=["access"])
async def create_user(request: Request, body: UserIn, caller: Admin) -> Any:
    rt = _rt(request)
    now = rt.clock()

    def create(session: Session) -> UserOut:
        row = store.create_user(session, body.id, name=body.name, role=body.role, password=body.password,
                                by=caller.user, now=now)
        return _user_out(row, rt.policy.people)

    return await _db(request, create)


@router.patch("/api/admin/users/{user_id}", response_model=UserOut, tags=["access"])
async def update_user(
    request: Request, user_id: Annotated[str, Path(max_length=100)], body: UserPatch, caller: Admin
) -> Any:
    rt = _rt(request)
    now = rt.clock()

    def change(session: Session) -> UserOut:
        row = store.update_user(session, user_id, now=now, name=body.name, role=body.role, disabled=body.disabled,
                                password=body.password)
        return _user_out(row, rt.policy.people)

    return await _db(request, change)


# --- API tokens -------------------------------------------------------------------------------------


class TokenIn(_In):
    user: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200, description="what it is for, e.g. 'alice laptop CLI'")
    expires_in_days: int = Field(default=0, ge=0, le=730, description="0: the server's WARROOM_TOKEN_DAYS")
    role: Role | None = Field(default=None, description="a lower role than the user's, e.g. viewer for a dashboard")


class TokenOut(BaseModel):
    id: str
    user: str
    name: str
    role: str | None
    status: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewTokenOut(TokenOut):
    token: str
    """The secret: shown this once."""


def _token_out(row: ApiTokenRow, now: datetime) -> dict[str, Any]:
    return dict(id=shown_prefix("wr", row.prefix), user=row.user_id, name=row.name, role=row.role,
                status=store.token_status(row, now), created_at=row.created_at, created_by=row.created_by,
                expires_at=row.expires_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at)


@router.get("/api/admin/tokens", response_model=list[TokenOut], tags=["access"])
async def list_tokens(
    request: Request, caller: Admin, user: Annotated[str | None, Query(max_length=100)] = None
) -> Any:
    now = _rt(request).clock()
    return await _db(request, lambda s: [TokenOut(**_token_out(r, now)) for r in store.list_tokens(s, user)])


@router.post("/api/admin/tokens", status_code=201, response_model=NewTokenOut, tags=["access"])
async def create_token(request: Request, body: TokenIn, caller: Admin) -> Any:
    rt = _rt(request)
    now = rt.clock()
    days = body.expires_in_days or rt.settings.token_days

    def issue(session: Session) -> NewTokenOut:
        value, row = store.issue_token(session, body.user, name=body.name, role=body.role,
                                       expires_at=now + timedelta(days=days), by=caller.user, now=now)
        return NewTokenOut(token=value, **_token_out(row, now))

    return await _db(request, issue)


@router.delete("/api/admin/tokens/{token_id}", response_model=TokenOut, tags=["access"])
async def revoke_token(request: Request, token_id: Annotated[str, Path(max_length=40)], caller: Admin) -> Any:
    now = _rt(request).clock()
    return await _db(
        request, lambda s: TokenOut(**_token_out(store.revoke_token(s, token_id, by=caller.user, now=now), now))
    )


# --- alert integrations -------------------------------------------------------------------------------


class IntegrationIn(_In):
    name: str = Field(min_length=1, max_length=100, description="e.g. prod-alertmanager")
    source: Literal["alertmanager"] = "alertmanager"


class IntegrationOut(BaseModel):
    id: int
    name: str
    source: str
    secret_id: str
    status: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewIntegrationOut(IntegrationOut):
    secret: str
    """Shown this once: put it in the alert source's webhook URL or Authorization header."""
    webhook_path: str


def _integration_out(row: IntegrationRow, now: datetime) -> dict[str, Any]:
    return dict(id=row.id, name=row.name, source=row.source, secret_id=shown_prefix("wri", row.prefix),
                status=store.token_status(row, now), created_at=row.created_at, created_by=row.created_by,
                last_used_at=row.last_used_at, revoked_at=row.revoked_at)


@router.get("/api/admin/integrations", response_model=list[IntegrationOut], tags=["access"])
async def list_integrations(request: Request, caller: Admin) -> Any:
    now = _rt(request).clock()
    return await _db(
        request, lambda s: [IntegrationOut(**_integration_out(r, now)) for r in store.list_integrations(s)]
    )


@router.post("/api/admin/integrations", status_code=201, response_model=NewIntegrationOut, tags=["access"])
async def create_integration(request: Request, body: IntegrationIn, caller: Admin) -> Any:
    now = _rt(request).clock()

    def create(session: Session) -> NewIntegrationOut:
        value, row = store.create_integration(session, body.name, source=body.source, by=caller.user, now=now)
        return NewIntegrationOut(secret=value, webhook_path=f"/api/webhooks/{row.source}/{value}",
                                 **_integration_out(row, now))

    return await _db(request, create)


@router.delete("/api/admin/integrations/{integration_id}", response_model=IntegrationOut, tags=["access"])
async def revoke_integration(
    request: Request, integration_id: Annotated[int, path_id("the integration's id")], caller: Admin
) -> Any:
    now = _rt(request).clock()
    return await _db(request, lambda s: IntegrationOut(**_integration_out(
        store.revoke_integration(s, integration_id, by=caller.user, now=now), now)))


# --- the audit log ----------------------------------------------------------------------------------------


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str | None
    role: str | None
    credential: str
    action: str
    method: str
    path: str
    incident_id: int | None
    target: str | None
    accepted: bool
    status_code: int
    reason: str
    client_ip: str | None
    user_agent: str | None
    detail: str


def _audit_out(row: Any) -> AuditOut:
    data = store.audit_dict(row)
    data["incident_id"] = data.pop("incident_number")
    return AuditOut(**data)


def _filters(
    actor: str | None, action: str | None, incident_id: int | None, accepted: bool | None,
    since: datetime | None, until: datetime | None,
) -> store.AuditFilter:
    try:
        return store.AuditFilter(actor=actor, action=action, incident=incident_id, accepted=accepted,
                                 since=_aware(since), until=_aware(until))
    except ValueError as err:
        raise HTTPException(status_code=422, detail=f"since/until: {err}") from None


ActorQ = Annotated[str | None, Query(max_length=200, description="user id, or integration:<name>")]
ActionQ = Annotated[str | None, Query(max_length=100, description="e.g. acknowledge, start_run, login")]
IncidentQ = Annotated[int | None, query_id("the incident number")]
AcceptedQ = Annotated[bool | None, Query(description="true: accepted only; false: refused only")]
SinceQ = Annotated[datetime | None, Query(description="from this instant (inclusive)")]
UntilQ = Annotated[datetime | None, Query(description="up to this instant (exclusive)")]


@router.get("/api/audit", response_model=list[AuditOut], tags=["access"])
async def audit(
    request: Request, caller: Admin, actor: ActorQ = None, action: ActionQ = None, incident_id: IncidentQ = None,
    accepted: AcceptedQ = None, since: SinceQ = None, until: UntilQ = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, query_id("entries older than this id (paging)")] = None,
) -> Any:
    """Newest first. Page back with ``before`` = the smallest id of the previous page."""
    f = _filters(actor, action, incident_id, accepted, since, until)
    return await _db(request, lambda s: [_audit_out(r) for r in store.audit_page(s, f, limit=limit, before=before)])


EXPORT_PAGE = 1000


@router.get("/api/audit/export", tags=["access"], response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}})
async def audit_export(
    request: Request, caller: Admin, format: Annotated[Literal["csv", "jsonl"], Query()] = "jsonl",
    actor: ActorQ = None, action: ActionQ = None, incident_id: IncidentQ = None, accepted: AcceptedQ = None,
    since: SinceQ = None, until: UntilQ = None,
) -> StreamingResponse:
    """Every matching entry, oldest first, as CSV or JSON lines (one object per line)."""
    f = _filters(actor, action, incident_id, accepted, since, until)
    rt = _rt(request)

    def page(after: int) -> list[dict[str, Any]]:
        with Session(rt.engine) as session:
            return [store.audit_dict(r) for r in store.audit_page(session, f, limit=EXPORT_PAGE, after=after)]

    async def rows() -> AsyncIterator[dict[str, Any]]:
        after = 0
        while True:
            batch = await run_in_threadpool(page, after)
            for row in batch:
                yield row
            if len(batch) < EXPORT_PAGE:
                return
            after = batch[-1]["id"]

    async def body() -> AsyncIterator[bytes]:
        if format == "jsonl":
            async for row in rows():
                yield (json.dumps(row, ensure_ascii=False) + "\n").encode()
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(store.AUDIT_FIELDS))
        writer.writeheader()
        async for row in rows():
            writer.writerow(row)
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    stamp = rt.clock().strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(body(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="warroom-audit-{stamp}.{format}"',
    })
