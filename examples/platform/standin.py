"""A stand-in hosting platform for warroom's runbook demos and tests.

It pretends to be the operations API of a SaaS hosting portal: a deployed
version with rollback, a primary/standby database pair, maintenance mode,
replicas, feature flags, and a health endpoint that tells the truth about all
of them. It can be told to break in the ways the incident guide lists, and the
matching runbook repairs it.

Standard library only; one process, state in memory.

    python examples/platform/standin.py --port 8100 [--token SECRET]

Operations (JSON in and out):

    GET  /health                      200 when healthy, 503 with the problems otherwise
    GET  /deployment                  current version and history
    POST /deployment {"version": "v", "good": true}
    POST /deployment/rollback         back to the previous version
    POST /service/restart
    GET  /database                    primary, standby, their health
    POST /database/failover           promote the standby (refused if it is unhealthy)
    GET  /maintenance   PUT /maintenance {"enabled": true, "message": "..."}
    GET  /replicas      PUT /replicas {"count": 6}
    GET  /flags         PUT /flags/<name> {"enabled": false}

Demo controls (no token needed):

    POST /break {"mode": "deploy" | "database" | "crash" | "load" | "flag"}
    POST /repair                      everything back to healthy
    POST /chaos {"fail_next": 2, "delay_seconds": 0}   the next N operations answer 503
    GET  /calls                       every operation received (for tests)

With ``--token``, operations need ``Authorization: Bearer <token>``. A request
with an ``Idempotency-Key`` header that was already answered gets the same answer
again without being applied twice.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BREAK_MODES = ("deploy", "database", "crash", "load", "flag")
BROKEN_FLAG = "new-checkout"
CONTROL_PATHS = ("/break", "/repair", "/chaos", "/calls")


@dataclass
class Deployment:
    version: str
    good: bool = True


@dataclass
class PlatformState:
    deployments: list[Deployment] = field(default_factory=lambda: [Deployment("2024.11.1"), Deployment("2024.11.2")])
    db_nodes: dict[str, bool] = field(default_factory=lambda: {"db-a": True, "db-b": True})
    primary: str = "db-a"
    maintenance: bool = False
    maintenance_message: str = ""
    replicas: int = 3
    load: int = 2
    """Replicas needed to carry the current traffic."""
    flags: dict[str, bool] = field(
        default_factory=lambda: {BROKEN_FLAG: False, "dns-fast-publish": True, "payments-provider-b": False}
    )
    broken_flags: set[str] = field(default_factory=set)
    wedged: bool = False
    restarts: int = 0

    @property
    def standby(self) -> str:
        return next(n for n in self.db_nodes if n != self.primary)

    def problems(self) -> list[str]:
        out = []
        current = self.deployments[-1]
        if not current.good:
            out.append(f"version {current.version} answers 500 on most requests")
        if not self.db_nodes[self.primary]:
            out.append(f"primary database {self.primary} is unreachable")
        if self.wedged:
            out.append("the application is wedged (threads stuck); a restart clears it")
        if self.replicas < self.load:
            out.append(f"overloaded: {self.replicas} replicas for traffic that needs {self.load}")
        for name in sorted(self.broken_flags):
            if self.flags.get(name):
                out.append(f"feature flag {name} is on and its code path fails")
        return out


class Platform:
    """The state machine behind the HTTP handler; thread-safe."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.state = PlatformState()
        self.calls: list[dict[str, Any]] = []
        self.fail_next = 0
        self.delay_seconds = 0.0
        self._answers: dict[str, tuple[int, dict[str, Any]]] = {}

    # --- demo controls -----------------------------------------------------------

    def break_(self, mode: str) -> dict[str, Any]:
        s = self.state
        if mode == "deploy":
            last = s.deployments[-1].version
            s.deployments.append(Deployment(_next_version(last), good=False))
        elif mode == "database":
            s.db_nodes[s.primary] = False
        elif mode == "crash":
            s.wedged = True
        elif mode == "load":
            s.load = s.replicas + 3
        elif mode == "flag":
            s.broken_flags.add(BROKEN_FLAG)
            s.flags[BROKEN_FLAG] = True
        return self.health()[1]

    def repair(self) -> None:
        self.state = PlatformState()
        self.fail_next = 0
        self.delay_seconds = 0.0

    def health(self) -> tuple[int, dict[str, Any]]:
        s = self.state
        problems = s.problems()
        body = {
            "status": "failing" if problems else "ok",
            "problems": problems,
            "version": s.deployments[-1].version,
            "database_primary": s.primary,
            "replicas": s.replicas,
            "maintenance": s.maintenance,
        }
        return (503 if problems else 200), body

    # --- operations --------------------------------------------------------------

    def operate(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        s = self.state
        if method == "GET":
            if path == "/deployment":
                return 200, self._deployment()
            if path == "/database":
                return 200, self._database()
            if path == "/maintenance":
                return 200, {"enabled": s.maintenance, "message": s.maintenance_message}
            if path == "/replicas":
                return 200, {"count": s.replicas, "needed": s.load}
            if path == "/flags":
                return 200, {"flags": dict(s.flags)}
            return 404, {"error": f"no such resource {path}"}
        if method == "POST" and path == "/deployment":
            version = body.get("version")
            if not isinstance(version, str) or not version:
                return 422, {"error": "give a version"}
            s.deployments.append(Deployment(version, good=bool(body.get("good", True))))
            return 200, self._deployment()
        if method == "POST" and path == "/deployment/rollback":
            if len(s.deployments) < 2:
                return 409, {"error": "no earlier version to roll back to"}
            gone = s.deployments.pop()
            return 200, {**self._deployment(), "rolled_back_from": gone.version}
        if method == "POST" and path == "/service/restart":
            s.wedged = False
            s.restarts += 1
            return 200, {"restarted": True, "restarts": s.restarts}
        if method == "POST" and path == "/database/failover":
            standby = s.standby
            if not s.db_nodes[standby]:
                return 409, {"error": f"standby {standby} is unhealthy; refusing to promote it"}
            s.primary = standby
            return 200, self._database()
        if method == "PUT" and path == "/maintenance":
            enabled = body.get("enabled")
            if not isinstance(enabled, bool):
                return 422, {"error": "enabled must be true or false"}
            s.maintenance = enabled
            s.maintenance_message = str(body.get("message", "")) if enabled else ""
            return 200, {"enabled": s.maintenance, "message": s.maintenance_message}
        if method == "PUT" and path == "/replicas":
            count = body.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100:
                return 422, {"error": "count must be an integer from 1 to 100"}
            s.replicas = count
            return 200, {"count": s.replicas, "needed": s.load}
        match = re.fullmatch(r"/flags/([A-Za-z0-9._-]+)", path)
        if method == "PUT" and match:
            name = match.group(1)
            if name not in s.flags:
                return 404, {"error": f"no feature flag named {name}"}
            enabled = body.get("enabled")
            if not isinstance(enabled, bool):
                return 422, {"error": "enabled must be true or false"}
            s.flags[name] = enabled
            return 200, {"flag": name, "enabled": enabled}
        return 404, {"error": f"no operation {method} {path}"}

    def _deployment(self) -> dict[str, Any]:
        s = self.state
        return {
            "version": s.deployments[-1].version,
            "previous": s.deployments[-2].version if len(s.deployments) > 1 else None,
            "history": [d.version for d in s.deployments],
        }

    def _database(self) -> dict[str, Any]:
        s = self.state
        return {"primary": s.primary, "standby": s.standby, "nodes": dict(s.db_nodes)}

    # --- one request ---------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        path = path.split("?", 1)[0]
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return 400, {"error": "the body is not JSON"}
        if not isinstance(body, dict):
            return 400, {"error": "the body must be a JSON object"}
        if path in CONTROL_PATHS:
            return self._control(method, path, body)
        with self.lock:
            delay = self.delay_seconds
        if delay:
            time.sleep(delay)
        with self.lock:
            if path == "/health" and method == "GET":
                if self.fail_next > 0:
                    self.fail_next -= 1
                    return 503, {"error": "temporarily unavailable (chaos)"}
                return self.health()
            if self.token is not None and headers.get("authorization") != f"Bearer {self.token}":
                return 401, {"error": "missing or wrong bearer token"}
            key = headers.get("idempotency-key")
            mutating = method != "GET"
            if mutating:
                self.calls.append({"method": method, "path": path, "key": key, "body": body, "replayed": False})
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, {"error": "temporarily unavailable (chaos)"}
            if mutating and key and key in self._answers:
                self.calls[-1]["replayed"] = True
                return self._answers[key]
            answer = self.operate(method, path, body)
            if mutating and key:
                self._answers[key] = answer
            return answer

    def _control(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if path == "/calls" and method == "GET":
                return 200, {"calls": list(self.calls)}
            if method != "POST":
                return 405, {"error": "use POST"}
            if path == "/break":
                mode = body.get("mode")
                if mode not in BREAK_MODES:
                    return 422, {"error": f"mode must be one of {', '.join(BREAK_MODES)}"}
                return 200, self.break_(mode)
            if path == "/repair":
                self.repair()
                return 200, self.health()[1]
            fail_next, delay = body.get("fail_next", 0), body.get("delay_seconds", 0)
            if not isinstance(fail_next, int) or not isinstance(delay, (int, float)) or fail_next < 0 or delay < 0:
                return 422, {"error": "fail_next and delay_seconds must be non-negative numbers"}
            self.fail_next, self.delay_seconds = fail_next, float(delay)
            return 200, {"fail_next": self.fail_next, "delay_seconds": self.delay_seconds}


def _next_version(version: str) -> str:
    head, _, tail = version.rpartition(".")
    return f"{head}.{int(tail) + 1}" if tail.isdigit() else f"{version}.1"


def make_server(platform: Platform, host: str = "127.0.0.1", port: int = 0, quiet: bool = False) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        server_version = "standin-platform/1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = platform.handle(self.command, self.path, headers, raw)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            if not quiet:
                sys.stderr.write(f"platform: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A stand-in hosting platform for warroom runbook demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", default=None, help="require this bearer token on operations")
    args = parser.parse_args(argv)
    server = make_server(Platform(args.token), args.host, args.port)
    print(f"stand-in platform on http://{args.host}:{server.server_address[1]}", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
