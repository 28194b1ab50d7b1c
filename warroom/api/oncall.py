"""On-call over HTTP: who is on call now and next, and the configuration in force.

- ``GET /api/oncall`` (``?at=`` any instant): per schedule, the shift in force (from its
  true start), the next one and the coming shifts (``?shifts=N`` or ``?until=``); per team,
  whether it is inside business hours.
- ``GET /api/oncall/preview?severity=SEV-1&at=...``: who an incident declared at
  that instant would page first, and how (routing, level 1, the paging rules).
- ``GET /api/oncall/config``: the configuration in force (``?format=yaml`` for YAML).
- ``PUT /api/oncall/config``: replace it (JSON, or YAML with a YAML content type).
- ``PATCH /api/oncall/config``: change part of it (a JSON merge patch, RFC 7386).

Every change is validated (unknown person, schedule or team, overlapping
overrides, empty rotation, bad zone: 422 naming the key), stored as a new
version (``If-Match: <version>`` guards against overwriting someone else's edit:
409), and in the audit log like every other command: the request's row says who
(the authenticated admin), when and from where, and the route adds what changed
(``config_store.change_summary``: which people, teams, schedules and escalation
policies were added, removed or changed, and other keys' old and new values). The
document itself is not copied into the audit log: it holds everyone's phone numbers.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from warroom.api.auth import Admin, Viewer, note_for_audit
from warroom.api.schemas import check_instant
from warroom.models import routing, untrusted
from warroom.models.config_store import (
    MAX_DOCUMENT_BYTES,
    ConfigConflict,
    CurrentConfig,
    Stored,
    latest,
    seed_from_file,
    store_version,
)
from warroom.models.oncall import EARLIEST, LATEST
from warroom.models.policy import Policy, PolicyError
from warroom.models.severity import Severity, parse_severity

if TYPE_CHECKING:
    from warroom.api.app import Runtime

log = logging.getLogger("warroom.api.oncall")
router = APIRouter(prefix="/api/oncall", tags=["on-call"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


# --- the configuration in force, for the rest of the API -------------------------------------


def seed(rt: "Runtime") -> None:
    """At start: store the policy file if it is new or changed, then use the newest version."""
    version, seeded = seed_from_file(rt.engine, rt.settings.policy, datetime.now(UTC),
                                     where=f"warroom api on {socket.gethostname()}")
    log.info("on-call configuration: version %d%s", version, f" (seeded from {rt.settings.policy})" if seeded else "")
    rt.config = CurrentConfig(rt.engine)
    current = rt.config.get()
    if current is not None:
        rt.policy = current.policy


async def current_policy(rt: "Runtime") -> Policy:
    """The newest stored configuration (what a new incident is declared with); the policy
    loaded at start when none can be read."""
    return (await _current(rt))[0]


async def _current(rt: "Runtime") -> tuple[Policy, int | None]:
    if rt.config is None:
        return rt.policy, None
    try:
        current = await run_in_threadpool(rt.config.get)
    except Exception as err:  # noqa: BLE001 - keep declaring incidents on the last known policy
        log.warning("cannot read the on-call configuration (%s); using the last one known", type(err).__name__)
        return rt.policy, None
    if current is None:
        return rt.policy, None
    rt.policy = current.policy
    return current.policy, current.version


def _rt(request: Request) -> "Runtime":
    return request.app.state.runtime


# --- responses ---------------------------------------------------------------------------------


class ConfigOut(BaseModel):
    version: int
    source: str
    """``file`` (seeded from the policy file) or ``api``."""
    created_at: datetime
    created_by: str
    changed: bool = True
    """False when a PUT or PATCH gave what was already in force (nothing stored)."""
    config: dict[str, Any]


class PreviewOut(BaseModel):
    at: datetime
    severity: Severity
    escalation: str
    team: str | None
    rule: str
    people: list[str]
    targets: str
    """Level 1 in words: ``schedule platform-primary → bob (on call)``."""
    action: str
    """page, defer or none (the paging rules)."""
    methods: list[str]
    until: datetime | None
    why: str


# --- helpers -----------------------------------------------------------------------------------


def _instant(at: datetime | None, rt: "Runtime", name: str = "at") -> datetime:
    if at is None:
        return rt.clock()
    if at.tzinfo is None:
        raise HTTPException(status_code=422, detail=f"{name}: give a time zone offset, e.g. 2026-12-09T03:00:00Z")
    try:
        instant = check_instant(at).astimezone(UTC)
    except ValueError as err:
        raise HTTPException(status_code=422, detail=f"{name}: {err}") from None
    if not EARLIEST <= instant <= LATEST:
        raise HTTPException(status_code=422, detail=f"{name}: give an instant between the years 1971 and 8999")
    return instant


def _out(row: Any, changed: bool = True) -> ConfigOut:
    return ConfigOut(
        version=row.version, source=row.source, created_at=row.created_at, created_by=row.created_by,
        changed=changed, config=row.document,
    )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise HTTPException(status_code=413, detail=f"the configuration is larger than {MAX_DOCUMENT_BYTES} bytes")
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    try:
        # No YAML aliases (a few hundred bytes of them expand to gigabytes) and bounded nesting.
        data = untrusted.load_yaml(raw) if kind in YAML_TYPES else untrusted.load_json(raw or b"null")
    except ValueError as err:
        raise HTTPException(status_code=422, detail=f"the body {err}") from None
    if not isinstance(data, dict):
        raise HTTPException(status_code=422, detail="the body must be a mapping of keys to values")
    return data


def _expected(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().strip('"').removeprefix("W/").strip('"')
    if not text.isdigit():
        raise HTTPException(status_code=422, detail="If-Match: give the version you edited, e.g. 7")
    return int(text)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


async def _store(
    request: Request, rt: "Runtime", document: dict[str, Any], actor: str, expected: int | None, note: str
) -> ConfigOut:
    def store(session: Session) -> Stored:
        stored = store_version(
            session, document, source="api", actor=actor, now=rt.clock(), expected_version=expected, note=note,
            audited_by_request=True,
        )
        session.expunge(stored.row)
        return stored

    try:
        stored = await run_in_threadpool(_in_session, rt, store)
    except PolicyError as err:
        raise HTTPException(status_code=422, detail=str(err)) from None
    except ConfigConflict as err:
        raise HTTPException(status_code=409, detail=str(err)) from None
    # This request's audit row (written by the middleware) says who, when and from where; add what changed.
    if stored.change is not None:
        note_for_audit(request, reason=f"{note} as {stored.change.text}", detail=stored.change.detail)
    else:
        note_for_audit(request, reason=f"nothing changed: version {stored.row.version} already says this",
                       detail=json.dumps({"version": stored.row.version, "changes": {}}))
    await current_policy(rt)
    return _out(stored.row, stored.changed)


def _in_session(rt: "Runtime", fn: Any) -> Any:
    with Session(rt.engine) as session, session.begin():
        return fn(session)


IfMatch = Annotated[str | None, Header(alias="If-Match")]


# --- routes ------------------------------------------------------------------------------------


@router.get("", response_model=routing.OnCallReport)
async def who_is_on_call(
    request: Request,
    caller: Viewer,
    at: Annotated[datetime | None, Query()] = None,
    shifts: Annotated[int | None, Query(ge=0, le=routing.MAX_COMING, description=(
        f"how many shifts after the one in force to list per schedule (default {routing.DEFAULT_COMING}; "
        f"with until, as many as begin before it, at most {routing.MAX_COMING})"))] = None,
    until: Annotated[datetime | None, Query(description=(
        "list the shifts that begin before this instant (at most 92 days after at)"))] = None,
) -> Any:
    """Per schedule: who is on call at ``at`` (default now), since and until when, who is next, and
    the coming shifts (``?shifts=N`` or ``?until=``, times in UTC and in the schedule's zone);
    per team: whether it is inside its business hours and when they next begin."""
    rt = _rt(request)
    instant = _instant(at, rt)
    end = None
    if until is not None:
        end = _instant(until, rt, "until")
        if end <= instant:
            raise HTTPException(status_code=422, detail="until: give an instant after at")
        if end - instant > routing.MAX_WINDOW:
            raise HTTPException(status_code=422, detail=f"until: at most {routing.MAX_WINDOW.days} days after at")
    count = shifts if shifts is not None else routing.MAX_COMING if end is not None else routing.DEFAULT_COMING
    policy, version = await _current(rt)
    return routing.on_call_report(policy, instant, version, coming=count, until=end)


@router.get("/preview", response_model=PreviewOut)
async def preview(
    request: Request,
    caller: Viewer,
    severity: Annotated[str, Query(description="SEV-1 .. SEV-4 (also sev1 or 1)", max_length=10)],
    at: Annotated[datetime | None, Query()] = None,
    component: Annotated[list[str] | None, Query()] = None,
    source: Annotated[str, Query(max_length=32)] = "api",
) -> Any:
    """Who an incident declared at ``at`` would page first, and how."""
    rt = _rt(request)
    instant = _instant(at, rt)
    try:
        sev = parse_severity(severity)
    except ValueError as err:
        raise HTTPException(status_code=422, detail=f"severity: {err}") from None
    policy = await current_policy(rt)
    first = routing.plan_first_page(policy, sev, instant, component or [], source)
    res, decision = first.resolution, first.resolution.decision
    return PreviewOut(
        at=instant, severity=sev, escalation=first.route.escalation, team=first.route.team, rule=first.route.rule,
        people=res.people, targets=res.describe(), action=decision.action,
        methods=[m.value for m in decision.methods], until=decision.until, why=decision.why,
    )


@router.get("/config", response_model=ConfigOut, responses={200: {"content": {"application/yaml": {}}}})
async def get_config(
    request: Request, caller: Admin, format: Annotated[str, Query(pattern="^(json|yaml)$")] = "json"
) -> Any:
    """The configuration in force: people, teams, schedules, escalation policies, routing and paging rules.
    Admins only: it holds everyone's phone numbers and addresses."""
    rt = _rt(request)
    row = await run_in_threadpool(_in_session, rt, lambda s: _detached(s, latest(s)))
    if row is None:
        raise HTTPException(status_code=404, detail="no configuration is stored yet")
    if format == "yaml":
        text = f"# warroom configuration, version {row.version}\n" + yaml.safe_dump(
            row.document, sort_keys=False, allow_unicode=True
        )
        return PlainTextResponse(text, media_type="application/yaml", headers={"ETag": f'"{row.version}"'})
    return _out(row)


def _detached(session: Session, row: Any) -> Any:
    if row is not None:
        session.expunge(row)
    return row


@router.put("/config", response_model=ConfigOut)
async def replace_config(request: Request, caller: Admin, if_match: IfMatch = None) -> Any:
    """Replace the configuration (JSON, or YAML with ``content-type: application/yaml``)."""
    rt, actor = _rt(request), caller.user
    document = await _body(request)
    return await _store(request, rt, document, actor, _expected(if_match), "replaced")


@router.patch("/config", response_model=ConfigOut)
async def patch_config(request: Request, caller: Admin, if_match: IfMatch = None) -> Any:
    """Change part of the configuration with a JSON merge patch: objects merge, ``null`` removes a key."""
    rt, actor = _rt(request), caller.user
    patch = await _body(request)
    row = await run_in_threadpool(_in_session, rt, lambda s: _detached(s, latest(s)))
    if row is None:
        raise HTTPException(status_code=404, detail="no configuration is stored yet; PUT one")
    expected = _expected(if_match)
    if expected is None:
        expected = row.version  # the patch was computed against this version
    try:
        return await _store(request, rt, merge_patch(row.document, patch), actor, expected, "patched")
    except HTTPException as err:
        if err.status_code == 422:
            err.detail = _explain_new_entries(row.document, patch, row.version, str(err.detail))
        raise


NAMED_COLLECTIONS = {"people": "person", "teams": "team", "schedules": "schedule",
                     "escalation_policies": "escalation policy"}


def _explain_new_entries(current: dict[str, Any], patch: dict[str, Any], version: int, detail: str) -> str:
    """A PATCH naming a schedule (team, ...) that does not exist adds it, so a partial one
    fails on the keys it lacks; say that it does not exist rather than only 'Field required'."""
    for collection, kind in NAMED_COLLECTIONS.items():
        entries = patch.get(collection)
        if not isinstance(entries, dict):
            continue
        existing = current.get(collection) if isinstance(current.get(collection), dict) else {}
        for name, value in entries.items():
            if value is None or name in existing:
                continue
            if f"{collection}.{name}." in detail or f"{collection}.{name}:" in detail:
                return (f"{collection}.{name}: there is no {kind} '{name}' in the configuration in force "
                        f"(version {version}), so this PATCH would add it and must give all of it; "
                        f"GET /api/oncall/config to see what exists. {detail}")
    return detail
