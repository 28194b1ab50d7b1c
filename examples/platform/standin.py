"""A stand-in hosting platform for warroom's runbook demos and tests.

It pretends to be the operations API of a SaaS hosting portal: a deployed
version with rollback, a primary/standby database pair, maintenance mode,
replicas, feature flags, and a health endpoint that tells the truth about all
of them. It can be told to break in the ways the incident guide lists, and the
matching runbook repairs it. It also runs the DNS publisher, the outbound mail
relays and the payment providers of the portal, and, when given a TLS port,
the customers' site with its certificate.

Standard library only (the TLS site's certificates are made by ``certs.py``,
which needs ``cryptography``); one process, state in memory.

    python examples/platform/standin.py --port 8100 [--token SECRET] [--tls-port 8443 [--tls-certs DIR]]

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
    GET  /dns/publisher               its state, how many changes wait, the oldest one's age
    GET  /dns/domains/<domain>        what the control panel holds and what the name servers serve
    POST /dns/publisher/restart       the publisher starts again and catches up
    GET  /mail                        the relay in use, each relay's state, the queue
    PUT  /mail/relay {"relay": "secondary"}
    POST /mail/queue/flush            deliver the queued mail through the relay in use
    GET  /payments                    the provider in use (flag payments-provider-b) and each one's state

    POST /service/restart also makes the TLS site serve the certificate installed last.

Demo controls (no token needed):

    POST /break {"mode": "deploy" | "database" | "crash" | "load" | "flag" | "dns" | "mail"
                 | "payments" | "certificate"}   (certificate needs --tls-port)
    POST /repair                      everything back to healthy
    POST /renew-certificate           what a person does by hand: install a renewed
                                      certificate (served after the next restart)
    POST /chaos {"fail_next": 2, "delay_seconds": 0}   the next N operations answer 503
    GET  /calls                       every operation received, and how many health checks (for tests)

With ``--token``, operations need ``Authorization: Bearer <token>``. A request
with an ``Idempotency-Key`` header that was already answered gets the same answer
again without being applied twice.

The TLS site (``--tls-port``) answers any request with a short page; it exists
for its certificate. It is signed by the CA in ``ca.pem`` of the certificate
directory, so a client must trust that file to verify it.
"""

from __future__ import annotations

import argparse
import json
import re
import socketserver
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BREAK_MODES = ("deploy", "database", "crash", "load", "flag", "dns", "mail", "payments", "certificate")
BROKEN_FLAG = "new-checkout"
BACKUP_PAYMENTS_FLAG = "payments-provider-b"
CONTROL_PATHS = ("/break", "/repair", "/renew-certificate", "/chaos", "/calls")
DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}\.?")
NEW_ADDRESS, OLD_ADDRESS = "203.0.113.20", "203.0.113.10"
"""The A record a customer just set in the control panel, and the one it replaced."""


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
    dns_stuck_since: float | None = None
    """When the DNS publisher stopped (wall-clock seconds); None while it runs."""
    dns_queue: int = 0
    """Control-panel changes not yet on the name servers."""
    mail_relays: dict[str, bool] = field(default_factory=lambda: {"primary": True, "secondary": True})
    mail_relay: str = "primary"
    mail_queue: int = 0
    payment_providers: dict[str, bool] = field(default_factory=lambda: {"a": True, "b": True})
    site_certificate: str = "good"
    """The certificate the TLS site serves: good or expired."""
    installed_certificate: str = "good"
    """The certificate on disk, served from the next restart on."""

    @property
    def standby(self) -> str:
        return next(n for n in self.db_nodes if n != self.primary)

    @property
    def payment_provider(self) -> str:
        return "b" if self.flags.get(BACKUP_PAYMENTS_FLAG) else "a"

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
        if self.dns_stuck_since is not None:
            out.append(f"the DNS publisher is stuck: {self.dns_queue} control-panel changes wait to reach "
                       "the name servers")
        if not self.mail_relays[self.mail_relay]:
            out.append(f"outbound mail is not delivered: relay {self.mail_relay} is down, "
                       f"{self.mail_queue} messages wait")
        elif self.mail_queue:
            out.append(f"{self.mail_queue} messages wait in the outbound queue")
        if not self.payment_providers[self.payment_provider]:
            out.append(f"card payments fail: payment provider {self.payment_provider.upper()} is down")
        if self.site_certificate == "expired":
            out.append("the site's TLS certificate has expired: browsers and API clients refuse to connect")
        return out


class Platform:
    """The state machine behind the HTTP handler; thread-safe."""

    def __init__(self, token: str | None = None, site_certs: Path | None = None) -> None:
        self.token = token
        self.lock = threading.Lock()
        self.state = PlatformState()
        self.calls: list[dict[str, Any]] = []
        self.health_checks = 0
        self.site_certs = site_certs
        """Directory with good.pem/.key and expired.pem/.key (see certs.py), when the TLS site runs."""
        self._site_contexts: dict[str, ssl.SSLContext] = {}
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
        elif mode == "dns":
            s.dns_stuck_since = time.time() - 600  # nobody noticed for ten minutes
            s.dns_queue = 42
        elif mode == "mail":
            s.mail_relays[s.mail_relay] = False
            s.mail_queue = 1200
        elif mode == "payments":
            s.payment_providers[s.payment_provider] = False
        elif mode == "certificate":
            if self.site_certs is None:
                raise ValueError("mode certificate needs the TLS site: start the stand-in with --tls-port")
            s.site_certificate = s.installed_certificate = "expired"
        return self.health()[1]

    def repair(self) -> None:
        self.state = PlatformState()
        self.fail_next = 0
        self.delay_seconds = 0.0

    def renew_certificate(self) -> dict[str, Any]:
        """A person renewed the certificate and installed it; the site serves it after a restart."""
        if self.site_certs is None:
            raise ValueError("there is no TLS site: start the stand-in with --tls-port")
        self.state.installed_certificate = "good"
        return {"installed": "good", "served": self.state.site_certificate}

    def site_context(self) -> ssl.SSLContext:
        """The TLS context of the certificate the site serves now."""
        assert self.site_certs is not None
        with self.lock:
            name = self.state.site_certificate
            if name not in self._site_contexts:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(self.site_certs / f"{name}.pem", self.site_certs / f"{name}.key")
                self._site_contexts[name] = ctx
            return self._site_contexts[name]

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
            if path == "/dns/publisher":
                return 200, self._dns_publisher()
            if path.startswith("/dns/domains/"):
                domain = path.removeprefix("/dns/domains/")
                if not DOMAIN.fullmatch(domain):
                    return 422, {"error": f"not a domain name: {domain[:80]}"}
                served = OLD_ADDRESS if s.dns_queue else NEW_ADDRESS
                return 200, {"domain": domain, "control_panel": {"A": NEW_ADDRESS}, "name_servers": {"A": served},
                             "in_sync": served == NEW_ADDRESS}
            if path == "/mail":
                return 200, self._mail()
            if path == "/payments":
                return 200, {"provider": s.payment_provider,
                             "providers": {p: "up" if up else "down" for p, up in s.payment_providers.items()}}
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
            s.site_certificate = s.installed_certificate
            return 200, {"restarted": True, "restarts": s.restarts}
        if method == "POST" and path == "/dns/publisher/restart":
            caught_up, s.dns_queue, s.dns_stuck_since = s.dns_queue, 0, None
            return 200, {**self._dns_publisher(), "published": caught_up}
        if method == "PUT" and path == "/mail/relay":
            relay = body.get("relay")
            if relay not in s.mail_relays:
                return 422, {"error": f"relay must be one of {', '.join(s.mail_relays)}"}
            s.mail_relay = relay
            return 200, self._mail()
        if method == "POST" and path == "/mail/queue/flush":
            if not s.mail_relays[s.mail_relay]:
                return 409, {"error": f"relay {s.mail_relay} is down; nothing can be delivered through it"}
            delivered, s.mail_queue = s.mail_queue, 0
            return 200, {**self._mail(), "delivered": delivered}
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

    def _dns_publisher(self) -> dict[str, Any]:
        s = self.state
        oldest = None if s.dns_stuck_since is None else round(time.time() - s.dns_stuck_since)
        return {"state": "running" if s.dns_stuck_since is None else "stuck", "queue": s.dns_queue,
                "oldest_change_seconds": oldest, "fast_publish": s.flags.get("dns-fast-publish", False)}

    def _mail(self) -> dict[str, Any]:
        s = self.state
        return {"relay": s.mail_relay, "relays": {r: "up" if up else "down" for r, up in s.mail_relays.items()},
                "queue": s.mail_queue}

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
                self.health_checks += 1
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
                return 200, {"calls": list(self.calls), "health_checks": self.health_checks}
            if method != "POST":
                return 405, {"error": "use POST"}
            if path == "/break":
                mode = body.get("mode")
                if mode not in BREAK_MODES:
                    return 422, {"error": f"mode must be one of {', '.join(BREAK_MODES)}"}
                try:
                    return 200, self.break_(mode)
                except ValueError as err:
                    return 409, {"error": str(err)}
            if path == "/repair":
                self.repair()
                return 200, self.health()[1]
            if path == "/renew-certificate":
                try:
                    return 200, self.renew_certificate()
                except ValueError as err:
                    return 409, {"error": str(err)}
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


PAGE = (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 25\r\nconnection: close\r\n\r\n"
        b"A customer's hosted site\n")


def make_site(platform: Platform, host: str = "127.0.0.1", port: int = 0) -> socketserver.ThreadingTCPServer:
    """The customers' TLS site: it serves the certificate the platform says, and a short page."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.settimeout(5)
            try:
                with platform.site_context().wrap_socket(self.request, server_side=True) as tls:
                    if tls.recv(4096):
                        tls.sendall(PAGE)
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate, or went away

    return _SiteServer((host, port), Handler)


class _SiteServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _site_certs(given: Path | None) -> Path:
    if given is not None:
        names = ("ca.pem", "good.pem", "good.key", "expired.pem", "expired.key")
        missing = [n for n in names if not (given / n).exists()]
        if missing:
            raise SystemExit(f"{given} lacks {', '.join(missing)}: make them with "
                             f"python examples/platform/certs.py {given}")
        return given
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from certs import make_site_certs  # noqa: PLC0415 - only with --tls-port, needs cryptography
    except ImportError as err:
        raise SystemExit(f"making the TLS site's certificates needs the cryptography package ({err}); "
                         "or give --tls-certs DIR made elsewhere") from None
    return make_site_certs(Path(tempfile.mkdtemp(prefix="standin-certs-")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A stand-in hosting platform for warroom runbook demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", default=None, help="require this bearer token on operations")
    parser.add_argument("--tls-port", type=int, default=None, help="also serve the customers' TLS site here")
    parser.add_argument("--tls-certs", type=Path, default=None,
                        help="the TLS site's certificates, made by certs.py (default: new ones, in a temp dir)")
    args = parser.parse_args(argv)
    certs = _site_certs(args.tls_certs) if args.tls_port is not None else None
    platform = Platform(args.token, certs)
    server = make_server(platform, args.host, args.port)
    print(f"stand-in platform on http://{args.host}:{server.server_address[1]}", file=sys.stderr)
    site = None
    if certs is not None:
        site = make_site(platform, args.host, args.tls_port)
        threading.Thread(target=site.serve_forever, name="tls-site", daemon=True).start()
        print(f"TLS site on {args.host}:{site.server_address[1]}; trust {certs / 'ca.pem'} to verify it",
              file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if site is not None:
            site.shutdown()
            site.server_close()


if __name__ == "__main__":
    main()
