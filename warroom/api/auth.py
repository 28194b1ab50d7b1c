"""Who is calling, and may they: one FastAPI dependency per rule, applied to every route.

- ``require(role)`` (aliases ``Viewer``, ``Responder``, ``Operator``, ``Admin``;
  ``CurrentUser`` is any signed-in caller): an API token (``Authorization:
  Bearer wr_...``) or a web session cookie. No identity, or an unknown, expired
  or revoked one: 401 with the reason. A role too low: 403 with the reason. A
  session (cookie) caller must send the session's CSRF token with every
  non-GET request (``csrf_token`` form field or ``X-CSRF-Token`` header).
- ``page(role)``: the same for HTML pages, which send a browser to the sign-in
  page instead of answering 401.
- ``integration(source)``: alert webhooks, with a per-integration secret in the
  URL path or as a bearer token; rate limited per client address.
- ``signed_by_twilio``: Twilio's webhooks, which check ``X-Twilio-Signature``
  themselves (``warroom.api.twilio_webhooks``).
- ``public(why)``: the status page, its JSON and subscriptions, health, sign-in.

Every dependency carries an ``Access`` marker, so a test can walk
``app.routes`` and fail on a route that says nothing about who may call it.

The person acting is the caller: ``acting_as`` refuses (403) a request body
that names someone else as the actor. Also here: the sign-in and account pages.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from warroom.auth import store
from warroom.models.access import ROLE_DUTIES, Bucket, Caller, Role, password_problem, safe_next
from warroom.settings import Settings

log = logging.getLogger("warroom.api.auth")

SESSION_COOKIE = "warroom_session"
LOGIN_CSRF_COOKIE = "warroom_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM = 10_000
MAX_SIGNED_IN_FORM = 200_000
"""A form from a known session (the postmortem editor) may be long; it is read only once the session is known."""
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

ACCESS_ATTR = "warroom_access"


@dataclass(frozen=True)
class Access:
    """Who may call a route: ``kind`` is public, role, integration or twilio."""

    kind: str
    role: Role | None = None
    why: str = ""
    audited: bool = True
    """Whether its non-GET requests go to the audit log (every command does; public forms do not)."""


def access_of(route: Any) -> list[Access]:
    """The access markers of a route's dependencies, however deeply nested."""
    found: list[Access] = []
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        marker = getattr(dependant.call, ACCESS_ATTR, None)
        if marker is not None:
            found.append(marker)
        stack.extend(dependant.dependencies)
    return found


def routes_of(app: FastAPI) -> list[Any]:
    """Every route of the app as served, with the dependencies it runs (newer FastAPI keeps
    included routers as branches, whose effective routes carry the merged dependencies)."""
    found: list[Any] = []
    for route in app.routes:
        branch = getattr(route, "effective_route_contexts", None)
        found.extend(branch() if branch is not None else [route])
    return found


def _mark(fn: Callable[..., Any], access: Access) -> Callable[..., Any]:
    setattr(fn, ACCESS_ATTR, access)
    return fn


# --- plumbing ---------------------------------------------------------------------------------


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


async def _db(request: Request, fn: Callable[[Session], Any]) -> Any:
    rt = _runtime(request)

    def work() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return await run_in_threadpool(work)


def client_ip(request: Request) -> str | None:
    """The peer address (behind a proxy, run uvicorn with --forwarded-allow-ips so this is the client)."""
    return request.client.host if request.client else None


AUDIT_NOTES = "warroom.audit"
"""Scope key of the notes a request leaves for the audit log. Not ``request.state``: some servers
and test harnesses share that dict between requests, and a note must never outlive its request."""


def note_for_audit(request: Request, *, actor: str | None = None, credential: str | None = None,
                   reason: str | None = None, incident: int | None = None, detail: str | None = None) -> None:
    """What a route learned for the audit log that its answer does not say in JSON: who acted (Twilio's
    signature), why it was accepted or refused, which incident (a web form's answer is a page), and
    a ``detail`` to record instead of the request body (what a configuration change changed)."""
    notes = {"audit_actor": actor, "audit_credential": credential, "audit_reason": reason,
             "audit_incident": incident, "audit_detail": detail}
    _state(request, **{k: v for k, v in notes.items() if v is not None})


def _state(request: Request, **values: Any) -> None:
    """Notes for the audit log (caller, reason, ...), which writes its row once the answer is known."""
    request.scope.setdefault(AUDIT_NOTES, {}).update(values)


async def rate_limit(request: Request, key: str, bucket: Bucket, what: str) -> None:
    """429 with Retry-After when ``key``'s bucket is empty; the buckets live in the database,
    so every API replica shares them."""
    now = _runtime(request).clock().timestamp()
    wait = await _db(request, lambda s: store.take(s, key, bucket, now))
    if wait:
        _state(request, audit_reason=f"rate limited: too many {what} from {client_ip(request)}")
        raise HTTPException(
            status_code=429, detail=f"too many {what} from your address; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def login_bucket(settings: Settings) -> Bucket:
    return Bucket(capacity=settings.login_rate_burst, per_minute=settings.login_rate_per_minute)


def webhook_bucket(settings: Settings) -> Bucket:
    return Bucket(capacity=settings.webhook_rate_burst, per_minute=settings.webhook_rate_per_minute)


async def read_form(request: Request, limit: int = MAX_FORM) -> dict[str, str]:
    """A small urlencoded form (first value of each field). The body stays readable for the route."""
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(status_code=413, detail="form too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(status_code=400, detail="not a form") from None
    return {k: v[0] for k, v in parsed.items()}


# --- identities -----------------------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False, scheme_name="token",
    description="An API token (wr_...): `warroom admin token create USER`, shown once.",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, scheme_name="session",
    description="The web sign-in (/login); every non-GET request also needs the session's X-CSRF-Token.",
)


class Unauthorized(HTTPException):
    def __init__(self, reason: str, token_given: bool = False) -> None:
        challenge = 'Bearer realm="warroom"' + (', error="invalid_token"' if token_given else "")
        super().__init__(status_code=401, detail=reason, headers={"WWW-Authenticate": challenge})


def credentials_in(authorization: str | None, session_cookie: str | None) -> tuple[str, str] | None:
    """What a request presents: ``("token", value)`` from a bearer Authorization header,
    else ``("session", cookie)``, else None. A malformed Authorization header is refused
    (``store.Unauthenticated``), not passed over for the cookie."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise store.Unauthenticated("send the API token as 'Authorization: Bearer <token>'")
        return "token", value.strip()
    return ("session", session_cookie) if session_cookie else None


def caller_for(session: Session, presented: tuple[str, str], now: Any) -> Caller:
    """The caller those credentials name (``store.Unauthenticated`` with the reason if none)."""
    kind, value = presented
    lookup = store.caller_for_token if kind == "token" else store.caller_for_session
    return lookup(session, value, now)


async def identify(
    request: Request,
    _token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _session: Annotated[str | None, Depends(_cookie)],
) -> Caller:
    """The caller of a request, or 401 with the reason. (The two security parameters only
    document the schemes in the OpenAPI; the header and cookie are read here.)"""
    rt = _runtime(request)
    now = rt.clock()
    header = request.headers.get("authorization")
    try:
        presented = credentials_in(header, request.cookies.get(SESSION_COOKIE))
        if presented is None:
            raise store.Unauthenticated(
                "no credentials: send 'Authorization: Bearer <API token>' or sign in at /login"
            )
        caller: Caller = await _db(request, lambda s: caller_for(s, presented, now))
    except store.Unauthenticated as err:
        _state(request, audit_actor=err.actor, audit_credential=err.credential)
        raise Unauthorized(err.reason, token_given=bool(header)) from None
    _state(request, caller=caller)
    if caller.via == "session" and request.method not in SAFE_METHODS:
        await check_csrf(request, caller.csrf)
    return caller


async def check_csrf(request: Request, expected: str | None) -> None:
    given = request.headers.get(CSRF_HEADER)
    if not given and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        given = (await read_form(request, MAX_SIGNED_IN_FORM)).get(CSRF_FIELD)
    if not expected or not given or not secrets.compare_digest(given.encode(), expected.encode()):
        _state(request, audit_reason="CSRF token missing or wrong")
        raise HTTPException(
            status_code=403,
            detail=f"the request carries no valid CSRF token (form field '{CSRF_FIELD}' or header '{CSRF_HEADER}'); "
            "reload the page and try again",
        )


def _too_low(caller: Caller, role: Role) -> str:
    return f"{caller.user} is {caller.role.article} {caller.role.value}; this needs the {role.value} role or higher"


_REQUIRED: dict[Role, Callable[..., Any]] = {}


def require(role: Role) -> Callable[..., Any]:
    """The dependency for 'signed in with at least ``role``' (one function per role, so FastAPI
    resolves it once per request however many parameters use it)."""
    if role in _REQUIRED:
        return _REQUIRED[role]

    async def dependency(request: Request, caller: Annotated[Caller, Depends(identify)]) -> Caller:
        if not caller.role.at_least(role):
            _state(request, audit_reason=_too_low(caller, role))
            raise HTTPException(status_code=403, detail=_too_low(caller, role))
        return caller

    dependency.__name__ = f"require_{role.value}"
    _REQUIRED[role] = _mark(dependency, Access("role", role))
    return dependency


Viewer = Annotated[Caller, Depends(require(Role.VIEWER))]
Responder = Annotated[Caller, Depends(require(Role.RESPONDER))]
Operator = Annotated[Caller, Depends(require(Role.OPERATOR))]
Admin = Annotated[Caller, Depends(require(Role.ADMIN))]
CurrentUser = Viewer
"""Anyone signed in (every role can read)."""


def acting_as(caller: Caller, claimed: str | None, field: str) -> str:
    """The actor of a command: the caller. A body naming someone else is refused, so nobody
    acknowledges (or resolves, or runs a runbook) in another person's name."""
    if claimed is not None and claimed.strip() and claimed.strip() != caller.user:
        reason = (f"you are {caller.user}; '{field}' names {claimed.strip()[:100]}, and nobody acts in someone "
                  f"else's name (leave '{field}' out: the caller is the actor)")
        raise HTTPException(status_code=403, detail=reason)
    return caller.user


def public(why: str, *, audited: bool = False) -> Callable[..., Any]:
    """Marks a route that anyone may call, and says why."""

    def dependency() -> None:
        return None

    dependency.__name__ = "public"
    return _mark(dependency, Access("public", why=why, audited=audited))


def signed_by_twilio() -> None:
    """Twilio's webhooks authenticate by X-Twilio-Signature, checked by the route itself."""


_mark(signed_by_twilio, Access("twilio", why="X-Twilio-Signature over WARROOM_PUBLIC_BASE_URL + path"))


@dataclass(frozen=True)
class Integration:
    id: int
    name: str
    source: str


def integration(source: str) -> Callable[..., Any]:
    """The dependency of an alert webhook: the integration's secret from the URL path
    (``.../{token}``) or ``Authorization: Bearer``; 401 without a valid one, 429 when flooding."""

    async def dependency(request: Request) -> Integration:
        rt = _runtime(request)
        await rate_limit(request, f"webhook:{source}:{client_ip(request)}", webhook_bucket(rt.settings),
                         "alert deliveries")
        presented = request.path_params.get("token")
        header = request.headers.get("authorization", "")
        if presented is None and header.lower().startswith("bearer "):
            presented = header[7:].strip()
        if not presented:
            _state(request, audit_credential="none")
            raise Unauthorized(
                f"alert deliveries need the integration's secret: POST to /api/webhooks/{source}/<secret> or send "
                "'Authorization: Bearer <secret>' (an admin creates one with 'warroom admin integration create')"
            )
        now = rt.clock()
        try:
            row = await _db(request, lambda s: _integration(s, presented, source, now))
        except store.Unauthenticated as err:
            _state(request, audit_credential=err.credential)
            raise Unauthorized(err.reason, token_given=True) from None
        _state(request, audit_actor=f"integration:{row.name}", audit_credential=f"integration {row.id} ({row.name})")
        return row

    dependency.__name__ = f"integration_{source}"
    return _mark(dependency, Access("integration", why=f"{source} integration secret"))


def _integration(session: Session, presented: str, source: str, now: Any) -> Integration:
    row = store.integration_for(session, presented, source, now)
    return Integration(id=row.id, name=row.name, source=row.source)


# --- web pages: sign in, sign out, account ----------------------------------------------------------


class LoginRequired(Exception):
    def __init__(self, next_path: str, reason: str) -> None:
        self.next_path, self.reason = next_path, reason


class PageForbidden(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


_PAGES: dict[Role, Callable[..., Any]] = {}


def page(role: Role) -> Callable[..., Any]:
    """``require(role)`` for HTML pages: a browser without a sign-in is sent to /login."""
    if role in _PAGES:
        return _PAGES[role]

    async def dependency(request: Request) -> Caller:
        try:
            caller = await identify(request, None, None)
        except HTTPException as err:
            if err.status_code == 401:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method not in SAFE_METHODS:
                    target = "/console"
                raise LoginRequired(target, str(err.detail)) from None
            raise PageForbidden(str(err.detail)) from None
        if not caller.role.at_least(role):
            _state(request, audit_reason=_too_low(caller, role))
            raise PageForbidden(_too_low(caller, role))
        return caller

    dependency.__name__ = f"page_{role.value}"
    _PAGES[role] = _mark(dependency, Access("role", role))
    return dependency


PageUser = Annotated[Caller, Depends(page(Role.VIEWER))]


def _secure(request: Request) -> bool:
    base = _runtime(request).settings.public_base_url or ""
    return base.startswith("https://") or request.url.scheme == "https"


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)


router = APIRouter(tags=["sign-in"])


def _login_page(request: Request, next_path: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = _render(request, "login.html", status, csrf=token, next=next_path, error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict",
                        secure=_secure(request), path="/login")
    return response


@router.get("/login", response_class=HTMLResponse, dependencies=[Depends(public("the sign-in form"))])
async def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_page(request, safe_next(next))


@router.post(
    "/login", response_class=HTMLResponse,
    dependencies=[Depends(public("signing in is how an identity starts", audited=True))],
)
async def login(request: Request) -> Response:
    rt = _runtime(request)
    form = await read_form(request)
    user_id = form.get("username", "").strip().lower()[:100]
    next_path = safe_next(form.get("next"))
    _state(request, audit_actor=user_id or None, audit_credential="password")
    try:
        await rate_limit(request, f"login:{client_ip(request)}", login_bucket(rt.settings), "sign-in attempts")
    except HTTPException as err:
        return _login_page(request, next_path, str(err.detail), 429)
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = form.get(CSRF_FIELD, "")
    if not cookie_token or not secrets.compare_digest(cookie_token.encode(), given.encode()):
        _state(request, audit_reason="CSRF token missing or wrong")
        return _login_page(request, next_path, "The form expired. Please sign in again.", 403)
    now = rt.clock()
    lifetime = timedelta(hours=rt.settings.session_hours)

    def sign_in(session: Session) -> str:
        user = store.check_login(session, user_id, form.get("password", ""), now)
        value, _ = store.open_session(session, user, now=now, lifetime=lifetime, client_ip=client_ip(request),
                                      user_agent=request.headers.get("user-agent"))
        return value

    try:
        value = await _db(request, sign_in)
    except store.Unauthenticated as err:
        _state(request, audit_reason=err.reason, audit_actor=err.actor or user_id or None)
        return _login_page(request, next_path, "Wrong user name or password.", 401)
    _state(request, audit_reason=f"signed in; the session lasts {rt.settings.session_hours:g} h")
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, value, max_age=int(lifetime.total_seconds()), httponly=True, samesite="lax",
                        secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, caller: PageUser) -> Response:
    if caller.session_id is None:
        raise HTTPException(status_code=400, detail="signing out ends a web session; API tokens are revoked with "
                            "'warroom admin token revoke' instead")
    now = _runtime(request).clock()
    sid = caller.session_id
    await _db(request, lambda s: store.end_session(s, sid, now))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _account(request: Request, caller: Caller, status: int = 200, message: str | None = None,
             error: str | None = None) -> HTMLResponse:
    duties = [(r.value, ROLE_DUTIES[r]) for r in Role if caller.role.at_least(r)]
    return _render(request, "account.html", status, caller=caller, duties=duties, message=message, error=error)


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, caller: PageUser) -> HTMLResponse:
    return _account(request, caller)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, caller: PageUser) -> HTMLResponse:
    rt = _runtime(request)
    form = await read_form(request)
    try:
        await rate_limit(request, f"login:{client_ip(request)}", login_bucket(rt.settings), "password attempts")
    except HTTPException as err:
        return _account(request, caller, 429, error=str(err.detail))
    new = form.get("new_password", "")
    if new != form.get("confirm_password", ""):
        _state(request, audit_reason="the new passwords differ")
        return _account(request, caller, 422, error="The two new passwords differ.")
    if problem := password_problem(new):
        _state(request, audit_reason=problem)
        return _account(request, caller, 422, error=problem[0].upper() + problem[1:] + ".")
    now = rt.clock()

    def change(session: Session) -> None:
        store.check_login(session, caller.user, form.get("current_password", ""), now)
        store.update_user(session, caller.user, now=now, password=new, keep_session=caller.session_id)

    try:
        await _db(request, change)
    except store.Unauthenticated as err:
        _state(request, audit_reason=err.reason)
        return _account(request, caller, 403, error="The current password is not right.")
    _state(request, audit_reason="password changed; other sign-ins ended")
    return _account(request, caller, message="Password changed. Your other sign-ins have ended.")


# --- installing ------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Mount the sign-in pages and the handlers that turn page refusals into pages."""

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        return _render(request, "forbidden.html", 403, reason=exc.reason)

    app.include_router(router)
