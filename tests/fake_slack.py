"""A local stand-in for the Slack Web API, for the real ``slack_sdk.WebClient``.

It answers the methods warroom calls (conversations.create / invite / history,
chat.postMessage / update, pins.add) the way Slack does, keeps the channels and
messages it was given, and records every call with its parameters and bearer
token so a test can assert on the exact requests. ``down = True`` makes it
answer 503 like an outage; ``fail(method, error)`` scripts one Slack error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_TOKEN = "xoxb-fake-bot-token-0123456789"
SIGNING_SECRET = "fake-slack-signing-secret-0123456789abcdef"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    status: int


@dataclass
class Channel:
    id: str
    name: str
    members: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    """ts -> text (the latest text after chat.update)"""
    pinned: list[str] = field(default_factory=list)


class FakeSlack:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.channels: dict[str, Channel] = {}
        self.down = False
        self._errors: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> str:
        return self.start_on(0)

    def start_on(self, port: int) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = fake._handle(self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - conversations.history is a GET
                query = self.path.split("?", 1)[1] if "?" in self.path else ""
                headers = {**dict(self.headers), "Content-Type": "application/x-www-form-urlencoded"}
                status, payload = fake._handle(self.path, headers, query.encode())
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        server = self._server
        threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/api/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail(self, method: str, error: str) -> None:
        with self._lock:
            self._errors.append((method, error))

    # --- what tests read ----------------------------------------------------------------------

    def called(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.status == 200]

    def only_channel(self) -> Channel:
        with self._lock:
            assert len(self.channels) == 1, f"channels: {list(self.channels.values())}"
            return next(iter(self.channels.values()))

    def pinned_text(self, channel: Channel) -> str:
        with self._lock:
            assert len(channel.pinned) == 1, f"pinned: {channel.pinned}"
            return channel.messages[channel.pinned[0]]

    def texts(self, channel: Channel) -> list[str]:
        with self._lock:
            return [t for ts, t in channel.messages.items() if ts not in channel.pinned]

    async def wait(self, check: Any, within: float = 15.0, what: str = "the Slack calls") -> Any:
        deadline = time.monotonic() + within
        last: Any = None
        while True:
            try:
                result = check()
                if result:
                    return result
                last = result
            except (AssertionError, KeyError, IndexError) as err:
                last = err
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what} did not happen within {within} s; last: {last!r}; "
                                     f"calls: {[(c.method, c.status) for c in self.calls]}")
            await asyncio.sleep(0.05)

    # --- the API -------------------------------------------------------------------------------

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        method = path.rsplit("/", 1)[-1].split("?", 1)[0]
        ctype = headers.get("Content-Type", "") or headers.get("content-type", "")
        if "json" in ctype:
            params = json.loads(body or b"{}")
        else:
            params = dict(parse_qsl(body.decode()))
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else None
        with self._lock:
            if self.down:
                self.calls.append(Call(method, params, token, 503))
                return 503, {"ok": False, "error": "service_unavailable"}
            status, payload = 200, self._answer(method, params, token)
            self.calls.append(Call(method, params, token, status if payload.get("ok") else 200))
            return status, payload

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        if token != BOT_TOKEN:
            return {"ok": False, "error": "invalid_auth"}
        for i, (m, error) in enumerate(self._errors):
            if m == method:
                del self._errors[i]
                return {"ok": False, "error": error}
        if method == "conversations.create":
            name = params["name"]
            if any(c.name == name for c in self.channels.values()):
                return {"ok": False, "error": "name_taken"}
            channel = Channel(id=f"C{next(self._ids):08d}", name=name)
            self.channels[channel.id] = channel
            return {"ok": True, "channel": {"id": channel.id, "name": name}}
        channel = self.channels.get(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if method == "conversations.invite":
            users = str(params["users"]).split(",")
            if all(u in channel.members for u in users):
                return {"ok": False, "error": "already_in_channel"}
            channel.members.extend(u for u in users if u not in channel.members)
            return {"ok": True, "channel": {"id": channel.id}}
        if method == "chat.postMessage":
            ts = f"{1_800_000_000 + next(self._ts)}.000100"
            channel.messages[ts] = str(params.get("text", ""))
            return {"ok": True, "channel": channel.id, "ts": ts}
        if method == "chat.update":
            ts = str(params["ts"])
            if ts not in channel.messages:
                return {"ok": False, "error": "message_not_found"}
            channel.messages[ts] = str(params.get("text", ""))
            return {"ok": True, "channel": channel.id, "ts": ts}
        if method == "pins.add":
            ts = str(params["timestamp"])
            if ts in channel.pinned:
                return {"ok": False, "error": "already_pinned"}
            channel.pinned.append(ts)
            return {"ok": True}
        if method == "conversations.history":
            ts = str(params.get("latest", ""))
            text = channel.messages.get(ts)
            return {"ok": True, "messages": [{"type": "message", "ts": ts, "text": text}] if text else []}
        return {"ok": False, "error": "unknown_method"}


# --- by hand (README, "The incident channel in Slack") -------------------------------------------


def _serve(port: int) -> None:
    fake = FakeSlack()
    server_url = fake.start_on(port)
    print(f"fake Slack Web API on {server_url} (bot token {BOT_TOKEN}); Ctrl-C to stop", flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            with fake._lock:
                new, seen = fake.calls[seen:], len(fake.calls)
            for call in new:
                shown = {k: v for k, v in call.params.items() if k != "blocks"}
                print(f"{call.method} -> {call.status} {json.dumps(shown)[:300]}", flush=True)
    except KeyboardInterrupt:
        fake.stop()


def _receive(port: int, secret: str) -> None:
    """A webhook receiver that verifies each delivery the way the README describes."""
    from warroom.models.chat import verify_webhook

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ok = verify_webhook(secret, self.headers.get("X-Warroom-Timestamp", ""),
                                self.headers.get("X-Warroom-Signature", ""), body, now=time.time())
            self.send_response(204 if ok else 401)
            self.end_headers()
            event = json.loads(body) if ok else {}
            print(f"{'verified' if ok else 'REFUSED (bad signature)'} {event.get('type', '')} "
                  f"{event.get('entry', {}).get('text', '')}", flush=True)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    print(f"webhook receiver on http://127.0.0.1:{port}/", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _post(api: str, path: str, body: bytes, kind: str) -> None:
    import os

    import httpx

    from warroom.models.chat import slack_signature

    secret = os.environ.get("WARROOM_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    ts = str(int(time.time()))
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_signature(secret, ts, body),
               "Content-Type": kind}
    answer = httpx.post(api.rstrip("/") + path, content=body, headers=headers, timeout=15)
    print(answer.status_code, answer.text)


def main(argv: list[str] | None = None) -> None:
    import argparse
    from urllib.parse import urlencode

    parser = argparse.ArgumentParser(prog="python -m tests.fake_slack")
    sub = parser.add_subparsers(dest="what", required=True)
    serve = sub.add_parser("serve", help="a fake Slack Web API that prints every call")
    serve.add_argument("--port", type=int, default=8703)
    receive = sub.add_parser("receive", help="an outgoing-webhook receiver that verifies signatures")
    receive.add_argument("--port", type=int, default=8704)
    receive.add_argument("--secret", required=True)
    command = sub.add_parser("command", help="a signed /warroom slash command, as Slack would post it")
    command.add_argument("text")
    command.add_argument("--user", required=True, help="the Slack member id, e.g. U0ALICE")
    command.add_argument("--channel", default="", help="the channel id (an incident's channel)")
    command.add_argument("--api", default="http://127.0.0.1:8000")
    react = sub.add_parser("pin", help="a signed :pushpin: reaction_added event on a message")
    react.add_argument("channel")
    react.add_argument("ts")
    react.add_argument("--user", required=True)
    react.add_argument("--api", default="http://127.0.0.1:8000")
    args = parser.parse_args(argv)
    if args.what == "serve":
        _serve(args.port)
    elif args.what == "receive":
        _receive(args.port, args.secret)
    elif args.what == "command":
        body = urlencode({"command": "/warroom", "text": args.text, "user_id": args.user,
                          "channel_id": args.channel, "trigger_id": secrets.token_hex(8)}).encode()
        _post(args.api, "/api/slack/commands", body, "application/x-www-form-urlencoded")
    else:
        event = {"type": "event_callback", "event": {"type": "reaction_added", "user": args.user,
                 "reaction": "pushpin", "item": {"type": "message", "channel": args.channel, "ts": args.ts}}}
        _post(args.api, "/api/slack/events", json.dumps(event).encode(), "application/json")


if __name__ == "__main__":
    main()
