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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
