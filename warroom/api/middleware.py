"""Three ASGI middlewares: a bound on request bodies, the audit log of every command, and
security headers on every answer.

``BodyLimitMiddleware`` refuses a request body larger than its route's limit
with 413 and the reason, before anything reads it: at once when the
Content-Length says so, else as soon as the streamed (chunked) body passes the
limit. It runs before authentication and body parsing, so a caller without a
token cannot make the API hold a large body in memory.

``AuditMiddleware`` writes one row per non-GET request to a route that is not
plainly public (commands, configuration changes, sign-ins, alert and Twilio
webhooks), once the answer is known: accepted (2xx/3xx) or refused, with the
reason from the answer's ``detail`` (or what the route noted in the
request's scope), the caller, the incident, the client address and user
agent, and the request body with secrets redacted (for a configuration change, what it
changed instead). Refusals that happen before any route code runs (401, 403, 422, 429)
are recorded the same way, with the caller named by a valid token or session even when
the body was refused before authentication ran. Whatever the body holds (lone
surrogates, NUL characters, 100,000 levels of nesting), the row is written: at most
``KEEP`` bytes of it are kept, nesting and size are bounded, text the database cannot
store is replaced, and if describing the request fails the row is written without it.

``SecurityHeadersMiddleware`` adds nosniff, a Referrer-Policy, frame denial and
a Content-Security-Policy; HTML pages get a CSP that allows exactly the inline
scripts they carry (by hash), so no page needs 'unsafe-inline' for scripts.
HSTS is sent when warroom is served over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from sqlalchemy.orm import Session

from warroom.api.auth import AUDIT_NOTES, SAFE_METHODS, SESSION_COOKIE, access_of, caller_for, credentials_in
from warroom.api.params import MAX_ID
from warroom.models.access import Caller
from warroom.models.paging import mask_contact, mask_contacts_in
from warroom.auth import store

log = logging.getLogger("warroom.api.audit")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KEEP = 64 * 1024
"""Bytes of request and response body kept to describe the request (the rest passes through untouched)."""
FORM_FIELDS_KEPT = ("username", "next", "title", "severity", "summary", "impact", "components", "message", "phase",
                    "role", "person", "reason", "runbook", "note", "decision", "confirm_destructive")
"""Form fields worth recording: the console's commands, as the JSON API's bodies are (others, like
passwords, CSRF tokens, a runbook's parameters (a value may be a secret) or an SMS's sender
number, are not)."""
SECRET_PATH_PARAMS = ("token",)
BODY_NOT_KEPT = frozenset({"replace_config", "patch_config"})
"""Routes whose request body is described (size and type), not copied: the on-call configuration
holds everyone's phone numbers and addresses. The route notes what changed instead."""
CONTACTS_MASKED = frozenset({"report_api", "report_form"})
"""Routes whose bodies carry a customer's phone number or email address (problem reports): the
audit log, which is append-only, records them masked (``***0123``, ``p***@example.com``)."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; FastAPI and Starlette
    pass HTTPExceptions from the body reader through, so the route answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large(limit), headers={"Connection": "close"})


def too_large(limit: int) -> str:
    shown = f"{limit // 1024**2} MiB" if limit % 1024**2 == 0 else f"{limit} bytes"
    return f"the request body is larger than {shown}, the most this endpoint accepts"


class BodyLimitMiddleware:
    """Refuses request bodies over ``limit_for(path)`` bytes with 413 (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _refuse(send, 400, "the Content-Length header is not a number")
                return
            if int(declared) > limit:
                await _refuse(send, 413, too_large(limit))
                return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            if seen > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge as err:  # a reader that let it through: answer here if nothing was sent yet
            if started:
                raise
            await _refuse(send, 413, str(err.detail))


async def _refuse(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"detail": reason}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        scope[AUDIT_NOTES] = {}  # what the route learns about the caller and its refusal
        request_body = bytearray()
        response_body = bytearray()
        status = {"code": 500}

        async def tapped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request_body) < KEEP:
                request_body.extend(message.get("body", b"")[: KEEP - len(request_body)])
            return message

        async def tapped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body" and len(response_body) < KEEP:
                response_body.extend(message.get("body", b"")[: KEEP - len(response_body)])
            await send(message)

        try:
            await self.app(scope, tapped_receive, tapped_send)
        finally:
            try:
                await self._record(scope, status["code"], bytes(request_body), bytes(response_body))
            except Exception:  # noqa: BLE001 - the answer is already sent; never hide a missing audit row
                log.exception("could not write the audit log entry for %s %s", scope["method"], scope["path"])

    async def _record(self, scope: Scope, status: int, body: bytes, answer: bytes) -> None:
        route = scope.get("route")
        if route is None:
            return  # no such route (404/405): nothing was asked of warroom
        markers = access_of(route)
        if markers and all(m.kind == "public" and not m.audited for m in markers):
            return
        app = scope.get("app")
        runtime = getattr(getattr(app, "state", None), "runtime", None)
        if runtime is None:
            return
        state = scope.get(AUDIT_NOTES, {})
        try:
            entry = self._entry(scope, route, markers, runtime, state, status, body, answer)
        except Exception as err:  # noqa: BLE001 - a request we cannot describe is still recorded
            log.exception("could not describe %s %s for the audit log", scope["method"], scope["path"])
            entry = self._bare_entry(scope, route, runtime, state, status, err)
        # A route that needs a signed-in caller, refused before authentication ran (a body that could
        # not be parsed): name the caller its token or session would have named.
        identify = state.get("caller") is None and "audit_actor" not in state and any(m.kind == "role" for m in markers)
        credentials = _credentials(scope) if identify else None
        clean = {k: _storable(v) if isinstance(v, str) else v for k, v in entry.items()}
        if getattr(route, "name", "") in CONTACTS_MASKED:
            clean.update({k: mask_contacts_in(clean[k]) for k in ("reason", "detail") if clean.get(k)})

        def write() -> None:
            with Session(runtime.engine) as session, session.begin():
                if credentials is not None:
                    clean.update(_known_caller(session, credentials, clean["at"]))
                store.append_audit(session, **clean)

        await run_in_threadpool(write)

    def _entry(self, scope: Scope, route: Any, markers: list[Any], runtime: Any, state: dict[str, Any], status: int,
               body: bytes, answer: bytes) -> dict[str, Any]:
        caller = state.get("caller")
        params = dict(scope.get("path_params", {}))
        path = scope["path"]
        for name in SECRET_PATH_PARAMS:
            if name in params:
                secret = str(params.pop(name))
                path = path.replace(secret, secret[:16] + "...")
        content_type = _header(scope, b"content-type") or ""
        route_name = getattr(route, "name", "")
        answer_json = _json(answer) if answer else None
        accepted = 200 <= status < 400 and state.get("audit_accepted", True)
        reason = state.get("audit_reason") or _answer_text(answer_json, accepted)
        entry = dict(
            at=runtime.clock(),
            action=getattr(route, "name", None) or path,
            accepted=accepted,
            status_code=status,
            reason=reason,
            actor=caller.user if caller is not None else state.get("audit_actor"),
            role=caller.role.value if caller is not None else None,
            credential=caller.credential if caller is not None else state.get(
                "audit_credential", "twilio signature" if any(m.kind == "twilio" for m in markers) else "none"),
            method=scope["method"],
            path=path,
            incident_number=_incident(params, answer_json, getattr(route, "name", "")) or state.get("audit_incident"),
            target=", ".join(f"{k}={v}" for k, v in params.items() if k != "incident_id") or None,
            client_ip=(scope.get("client") or (None,))[0],
            user_agent=_header(scope, b"user-agent"),
            detail=state.get("audit_detail") or _detail(body, content_type, keep=route_name not in BODY_NOT_KEPT,
                                                        contacts=route_name in CONTACTS_MASKED),
        )
        return entry

    @staticmethod
    def _bare_entry(scope: Scope, route: Any, runtime: Any, state: dict[str, Any], status: int,
                    err: Exception) -> dict[str, Any]:
        """What is known without looking at the body or the answer."""
        caller = state.get("caller")
        return dict(
            at=runtime.clock(), action=getattr(route, "name", None) or scope["path"],
            accepted=200 <= status < 400 and state.get("audit_accepted", True), status_code=status,
            reason=str(state.get("audit_reason") or ""),
            actor=caller.user if caller is not None else state.get("audit_actor"),
            role=caller.role.value if caller is not None else None,
            credential=caller.credential if caller is not None else state.get("audit_credential", "none"),
            method=scope["method"], path=scope["path"], client_ip=(scope.get("client") or (None,))[0],
            user_agent=_header(scope, b"user-agent"),
            detail=f"(the request could not be described: {type(err).__name__})",
        )


def _storable(text: str) -> str:
    """Text every database stores: lone surrogates and NUL characters replaced."""
    return _UNSTORABLE.sub("\ufffd", text)


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _credentials(scope: Scope) -> tuple[str, str] | None:
    """("token", value) or ("session", cookie) the request carries, as authentication reads them."""
    try:
        return credentials_in(_header(scope, b"authorization"),
                              cookie_parser(_header(scope, b"cookie") or "").get(SESSION_COOKIE))
    except store.Unauthenticated:
        return None


def _known_caller(session: Session, credentials: tuple[str, str], now: Any) -> dict[str, Any]:
    """Who the credentials name, for a request refused before authentication ran (a body that
    could not be parsed): the same actor and credential authentication would have recorded."""
    try:
        caller: Caller = caller_for(session, credentials, now)
    except store.Unauthenticated as err:
        return {"actor": err.actor, "credential": err.credential}
    return {"actor": caller.user, "role": caller.role.value, "credential": caller.credential}


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past the parser's depth
        return None


def _answer_text(answer: Any, accepted: bool) -> str:
    if not isinstance(answer, dict):
        return ""
    value = answer.get("detail") if not accepted else answer.get("message", answer.get("action", ""))
    if isinstance(value, str):
        return value
    return store.compact(value, 2000) if value else ""


def _incident(params: dict[str, Any], answer: Any, action: str) -> int | None:
    value = params.get("incident_id")
    if value is None and isinstance(answer, dict):
        value = answer.get("incident_id")
        if value is None and action == "declare":
            value = answer.get("id")
    try:
        number = int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    # Only a number an incident can have: a path like /api/incidents/99999999999999999999/...
    # is refused with 422 and audited with its path, never lost to an integer overflow.
    return number if number is not None and 1 <= number <= MAX_ID else None


def _detail(body: bytes, content_type: str, keep: bool = True, contacts: bool = False) -> str:
    if not body:
        return ""
    if not keep:
        return f"({len(body)} bytes of {content_type or 'unknown type'})"
    if content_type.startswith("application/json"):
        data = _json(body)
        if contacts and isinstance(data, dict) and isinstance(data.get("contact"), str):
            data["contact"] = mask_contact(data["contact"])  # whatever it is, not only a number or address
        return store.compact(store.redact(data)) if data is not None else "(not JSON)"
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
        except (UnicodeDecodeError, ValueError):
            return "(not a form)"
        kept = {k: v[0][:200] for k, v in form.items() if k in FORM_FIELDS_KEPT}
        return store.compact(kept) if kept else ""
    return f"({len(body)} bytes of {content_type or 'unknown type'})"


# --- security headers ---------------------------------------------------------------------------

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)
DOCS_PATHS = ("/docs", "/redoc")
PAGE_CSP = (
    "default-src 'self'; script-src 'self'{scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' https://cdn.jsdelivr.net{scripts}; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def script_hashes(html: bytes) -> list[str]:
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        has_session = any(
            k == b"cookie" and SESSION_COOKIE.encode() in v for k, v in scope.get("headers", [])
        )
        https = self.https or scope.get("scheme") == "https"
        held: dict[str, Any] = {}

        def add(headers: list[tuple[bytes, bytes]], csp: str) -> None:
            present = {k.lower() for k, _ in headers}
            extra = [
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"),
                (b"x-frame-options", b"DENY"),
                (b"content-security-policy", csp.encode()),
            ]
            if https:
                extra.append((b"strict-transport-security", b"max-age=31536000"))
            if has_session and b"cache-control" not in present:
                extra.append((b"cache-control", b"no-store"))
            headers.extend((k, v) for k, v in extra if k not in present)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    held["start"], held["headers"], held["body"] = message, headers, bytearray()
                    return
                add(headers, API_CSP)
                message["headers"] = headers
                await send(message)
                return
            if message["type"] == "http.response.body" and "start" in held:
                held["body"].extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = bytes(held["body"])
                hashes = "".join(" " + h for h in script_hashes(body))
                template = DOCS_CSP if path.startswith(DOCS_PATHS) else PAGE_CSP
                headers = held["headers"]
                add(headers, template.format(scripts=hashes))
                start = dict(held.pop("start"))
                start["headers"] = headers
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, wrapped)
