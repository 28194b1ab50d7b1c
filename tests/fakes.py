"""Local stand-ins for Twilio and SendGrid, and a phone that answers warroom.

The tests point the real ``twilio`` and ``sendgrid`` SDKs at these servers: the
request shapes are the SDKs' own. Each fake records every request, answers like
the provider (or with the errors a test scripts), and a test must claim every
message it expected with ``expect``; whatever is left over fails the test.

Run by hand (see the README, "By hand, against local fakes")::

    python -m tests.fakes serve                 # fake Twilio on :8701, fake SendGrid on :8702
    python -m tests.fakes sms +15005550006 "ack 1"  # a signed SMS reply, as Twilio would post it
    python -m tests.fakes press CA... 1          # a signed key press on a page call
    python -m tests.fakes status SM... undelivered  # a signed delivery callback

The last three read ``WARROOM_TWILIO_AUTH_TOKEN``, ``WARROOM_PUBLIC_BASE_URL`` and
``WARROOM_TWILIO_FROM_NUMBER`` like warroom does, and post to ``--api``
(default http://127.0.0.1:8000).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-twilio-auth-token-0123456789"
FROM_NUMBER = "+15005550001"
SENDGRID_KEY = "SG.fake-sendgrid-key"
FROM_EMAIL = "pager@warroom.example"


@dataclass
class Recorded:
    kind: str
    """sms | call | email"""
    to: str
    params: dict[str, Any]
    answered: int
    """The HTTP status the fake answered with."""
    sid: str | None = None
    at: float = field(default_factory=time.monotonic)
    claimed: bool = False

    @property
    def text(self) -> str:
        if self.kind == "email":
            content = self.params.get("content") or [{}]
            subject = self.params.get("subject", "")
            return f"{subject}\n{content[0].get('value', '')}"
        return str(self.params.get("Body", ""))

    def __str__(self) -> str:
        return f"{self.kind} to {self.to} answered {self.answered}: {self.text[:120]!r}"


@dataclass
class _Rule:
    kind: str
    status: int
    times: int
    to: str | None
    code: int | None
    message: str
    delay: float = 0.0


class FakeProvider:
    """A threaded HTTP server that records requests; subclasses speak one provider."""

    name = "provider"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[Recorded] = []
        self._rules: list[_Rule] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.on_record: Any = None
        """Called with each Recorded (the by-hand server prints them)."""

    # --- life cycle ---------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload, headers = fake._handle(self.path, dict(self.headers), body)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # kept-alive SDK connections must not delay stop()
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name=f"fake-{self.name}", daemon=True
        )
        self._thread.start()
        return f"http://{host}:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # --- scripting ------------------------------------------------------------------------

    def fail(self, kind: str, status: int, times: int = 1, to: str | None = None, code: int | None = None,
             message: str = "scripted failure") -> None:
        """Answer the next ``times`` requests of ``kind`` (to ``to``) with an error."""
        with self._lock:
            self._rules.append(_Rule(kind, status, times, to, code, message))

    def stall(self, kind: str, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``kind`` only after ``seconds`` (a timeout)."""
        with self._lock:
            self._rules.append(_Rule(kind, 200, times, None, None, "", delay=seconds))

    def _rule_for(self, kind: str, to: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.kind == kind and rule.times > 0 and (rule.to is None or rule.to == to):
                    rule.times -= 1
                    return rule
        return None

    # --- what the tests assert on -----------------------------------------------------------

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.records.append(rec)
        if self.on_record is not None:
            self.on_record(rec)

    def _matching(self, kind: str, to: str | None, contains: str | None, answered: int | None) -> Recorded | None:
        with self._lock:
            for rec in self.records:
                if rec.claimed or rec.kind != kind:
                    continue
                if to is not None and rec.to != to:
                    continue
                if contains is not None and contains not in rec.text:
                    continue
                if answered is not None and rec.answered != answered:
                    continue
                rec.claimed = True
                return rec
        return None

    async def expect(self, kind: str, *, to: str | None = None, contains: str | None = None,
                     answered: int | None = None, within: float = 8.0) -> Recorded:
        """Wait for a request nobody claimed yet that matches, and claim it."""
        deadline = time.monotonic() + within
        while True:
            rec = self._matching(kind, to, contains, answered)
            if rec is not None:
                return rec
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"fake {self.name}: no {kind} to {to or 'anyone'}"
                    f"{f' containing {contains!r}' if contains else ''} within {within} s; "
                    f"unclaimed: {[str(r) for r in self.unclaimed()] or 'none'}"
                )
            await asyncio.sleep(0.05)

    async def expect_nothing(self, within: float) -> None:
        """Wait ``within`` seconds and fail on any request nobody claimed."""
        await asyncio.sleep(within)
        self.assert_all_claimed()

    def claim_all(self) -> None:
        with self._lock:
            for rec in self.records:
                rec.claimed = True

    def unclaimed(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.records if not r.claimed]

    def assert_all_claimed(self) -> None:
        left = self.unclaimed()
        if left:
            raise AssertionError(f"fake {self.name} got messages no test expected: {[str(r) for r in left]}")

    # --- provider specifics -----------------------------------------------------------------

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError


class FakeTwilio(FakeProvider):
    """Messages.json and Calls.json of the 2010-04-01 REST API, basic auth checked."""

    name = "twilio"

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        lower = {k.lower(): v for k, v in headers.items()}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if lower.get("authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}, {}
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/"
        resource = path.split("?", 1)[0].removeprefix(prefix)
        kind = {"Messages.json": "sms", "Calls.json": "call"}.get(resource)
        if not path.startswith(prefix) or kind is None:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}, {}
        params = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        to = str(params.get("To", ""))
        rule = self._rule_for(kind, to)
        if rule is not None and rule.delay:
            time.sleep(rule.delay)
        if rule is not None and not rule.delay:
            self._record(Recorded(kind, to, params, rule.status))
            error = {"code": rule.code, "message": rule.message, "more_info": "", "status": rule.status}
            return rule.status, error, {}
        sid = ("SM" if kind == "sms" else "CA") + secrets.token_hex(16)
        self._record(Recorded(kind, to, params, 201, sid=sid))
        resource_body = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": params.get("From"),
            "status": "queued",
            "uri": f"{prefix}{resource.removesuffix('.json')}/{sid}.json",
        }
        if kind == "sms":
            resource_body |= {"body": params.get("Body"), "num_segments": "1", "direction": "outbound-api"}
        return 201, resource_body, {}


class FakeSendGrid(FakeProvider):
    """v3 mail send, bearer key checked."""

    name = "sendgrid"

    def __init__(self, api_key: str = SENDGRID_KEY) -> None:
        super().__init__()
        self.api_key = api_key

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        lower = {k.lower(): v for k, v in headers.items()}
        if lower.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"errors": [{"message": "The provided authorization grant is invalid"}]}, {}
        if path.split("?", 1)[0] != "/v3/mail/send":
            return 404, {"errors": [{"message": "not found"}]}, {}
        payload = json.loads(body or b"{}")
        to = ",".join(t.get("email", "") for p in payload.get("personalizations", []) for t in p.get("to", []))
        flat = {"subject": payload.get("subject", ""), "content": payload.get("content", []),
                "from": payload.get("from", {}), "custom_args": payload.get("custom_args", {}),
                "headers": payload.get("headers", {})}
        rule = self._rule_for("email", to)
        if rule is not None and rule.delay:
            time.sleep(rule.delay)
        if rule is not None and not rule.delay:
            self._record(Recorded("email", to, flat, rule.status))
            return rule.status, {"errors": [{"message": rule.message}]}, {}
        message_id = secrets.token_hex(11)
        self._record(Recorded("email", to, flat, 202, sid=message_id))
        return 202, None, {"X-Message-Id": message_id}


# --- signed requests, as Twilio sends them -------------------------------------------------


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


def inbound_sms(sender: str, body: str, to: str = FROM_NUMBER, sid: str | None = None) -> dict[str, str]:
    sid = sid or "SM" + secrets.token_hex(16)
    return {
        "MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "MessagingServiceSid": "",
        "From": sender, "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1",
        "FromCountry": "US", "ToCountry": "US", "ApiVersion": "2010-04-01",
    }


def call_webhook(call_sid: str, callee: str, digits: str | None = None, caller: str = FROM_NUMBER) -> dict[str, str]:
    params = {
        "CallSid": call_sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": callee,
        "CallStatus": "in-progress", "Direction": "outbound-api", "ApiVersion": "2010-04-01",
    }
    if digits is not None:
        params |= {"Digits": digits, "FinishedOnKey": ""}
    return params


def status_callback(sid: str, status: str, error_code: str = "") -> dict[str, str]:
    if sid.startswith("CA"):
        return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "CallStatus": status, "ApiVersion": "2010-04-01"}
    params = {"MessageSid": sid, "AccountSid": ACCOUNT_SID, "MessageStatus": status, "ApiVersion": "2010-04-01"}
    if error_code:
        params["ErrorCode"] = error_code
    return params


# --- by hand ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> None:
    twilio = FakeTwilio(os.environ.get("WARROOM_TWILIO_ACCOUNT_SID", ACCOUNT_SID),
                        os.environ.get("WARROOM_TWILIO_AUTH_TOKEN", AUTH_TOKEN))
    sendgrid = FakeSendGrid(os.environ.get("WARROOM_SENDGRID_API_KEY", SENDGRID_KEY))

    def show(rec: Recorded) -> None:
        sid = f" [{rec.sid}]" if rec.sid else ""
        print(f"{time.strftime('%H:%M:%S')} {rec.kind:5} to {rec.to}{sid} -> {rec.answered}: {rec.text}", flush=True)

    twilio.on_record = show
    sendgrid.on_record = show
    t_url = twilio.start(args.host, args.twilio_port)
    s_url = sendgrid.start(args.host, args.sendgrid_port)
    print(f"fake Twilio on {t_url} (WARROOM_TWILIO_API_BASE), fake SendGrid on {s_url} "
          f"(WARROOM_SENDGRID_API_BASE); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        twilio.stop()
        sendgrid.stop()


def _post(args: argparse.Namespace, path: str, params: dict[str, str]) -> None:
    token = os.environ.get("WARROOM_TWILIO_AUTH_TOKEN")
    public = os.environ.get("WARROOM_PUBLIC_BASE_URL")
    if not token or not public:
        sys.exit("set WARROOM_TWILIO_AUTH_TOKEN and WARROOM_PUBLIC_BASE_URL as for warroom")
    signature = sign(token, public.rstrip("/") + path, params)
    started = time.perf_counter()
    response = httpx.post(args.api.rstrip("/") + path, data=params, headers={"X-Twilio-Signature": signature})
    took = (time.perf_counter() - started) * 1000
    print(f"{response.status_code} in {took:.0f} ms\n{response.text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run fake Twilio and SendGrid servers that print every message")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--twilio-port", type=int, default=8701)
    serve.add_argument("--sendgrid-port", type=int, default=8702)
    sms = sub.add_parser("sms", help="post a signed inbound SMS to warroom")
    sms.add_argument("sender")
    sms.add_argument("body")
    press = sub.add_parser("press", help="post a signed key press on a page call")
    press.add_argument("call_sid")
    press.add_argument("digits", nargs="?")
    press.add_argument("--callee", default="")
    status = sub.add_parser("status", help="post a signed delivery status callback")
    status.add_argument("sid")
    status.add_argument("status")
    status.add_argument("--error-code", default="")
    for p in (sms, press, status):
        p.add_argument("--api", default="http://127.0.0.1:8000", help="where warroom's API listens")
    args = parser.parse_args(argv)
    own = os.environ.get("WARROOM_TWILIO_FROM_NUMBER", FROM_NUMBER)
    if args.command == "serve":
        _serve(args)
    elif args.command == "sms":
        _post(args, "/api/webhooks/twilio/sms", inbound_sms(args.sender, args.body, to=own))
    elif args.command == "press":
        _post(args, "/api/webhooks/twilio/voice", call_webhook(args.call_sid, args.callee, args.digits, caller=own))
    else:
        _post(args, "/api/webhooks/twilio/status", status_callback(args.sid, args.status, args.error_code))


if __name__ == "__main__":
    main()
