"""Uptime check activities: probe a target (HTTP(S), TCP, DNS) and record the result.

``probe`` never raises for a target that is down: what it saw (or the error) is
the observation, and ``warroom.models.checks.judge`` decides. ``record`` keeps
the check's state in the read model (failures in a row, the open alert) and
answers what to do; a retried ``record`` for the same run answers from the row.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio import activity

from warroom.models.checks import (
    CheckRunResult,
    CheckSpec,
    CheckState,
    Observation,
    RecordCheckInput,
    advance,
    check_alert,
    judge,
)
from warroom.models.ids import PROBE_ACTIVITY, RECORD_CHECK_ACTIVITY
from warroom.models.tables import UptimeCheckRow

Clock = Callable[[], datetime]
MAX_BODY = 1024 * 1024
"""Read at most this much of a page when looking for ``body_contains``."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _tls_context(spec: CheckSpec, verify: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=spec.ca_file) if spec.ca_file else ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _cert_expiry(spec: CheckSpec, timeout: float) -> datetime:
    """When the server's certificate expires (read without trusting it: an untrusted or
    expired certificate must still be reported, not hidden behind a handshake error)."""
    parts = urlsplit(str(spec.url))
    host, port = parts.hostname or "", parts.port or 443
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=_tls_context(spec, verify=False), server_hostname=host), timeout)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der).not_valid_after_utc


async def probe_http(spec: CheckSpec, now: datetime) -> Observation:
    timeout = spec.timeout.total_seconds()
    verify: Any = _tls_context(spec) if str(spec.url).startswith("https://") else True
    start = time.monotonic()
    cert = None
    try:
        if spec.tls_expires_within is not None:
            cert = await _cert_expiry(spec, timeout)
        async with httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=True) as http:
            async with http.stream("GET", str(spec.url), headers={"user-agent": "warroom-uptime-check"}) as resp:
                matched = None
                if spec.body_contains is not None:
                    body = b""
                    async for chunk in resp.aiter_bytes():
                        body += chunk
                        if len(body) >= MAX_BODY:
                            break
                    matched = spec.body_contains in body.decode("utf-8", errors="replace")
                else:
                    await resp.aread()
                latency = time.monotonic() - start
                return Observation(at=now, latency_seconds=latency, status=resp.status_code, body_matched=matched,
                                   cert_expires_at=cert)
    except httpx.TimeoutException:
        return Observation(at=now, error=f"no answer within {timeout:g} s", cert_expires_at=cert)
    except (httpx.HTTPError, OSError, ssl.SSLError) as err:
        return Observation(at=now, error=f"cannot connect: {_reason(err)}", cert_expires_at=cert)


async def probe_tcp(spec: CheckSpec, now: datetime) -> Observation:
    timeout = spec.timeout.total_seconds()
    start = time.monotonic()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(spec.host, spec.port), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        return Observation(at=now, error=f"no connection within {timeout:g} s")
    except OSError as err:
        return Observation(at=now, error=f"cannot connect: {_reason(err)}")
    latency = time.monotonic() - start
    writer.close()
    return Observation(at=now, latency_seconds=latency)


async def probe_dns(spec: CheckSpec, now: datetime) -> Observation:
    timeout = spec.timeout.total_seconds()
    start = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        answers = await asyncio.wait_for(loop.getaddrinfo(spec.hostname, None, type=socket.SOCK_STREAM), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        return Observation(at=now, error=f"no answer within {timeout:g} s")
    except OSError as err:
        return Observation(at=now, error=f"does not resolve: {_reason(err)}")
    addresses = sorted({str(a[4][0]) for a in answers})
    return Observation(at=now, latency_seconds=time.monotonic() - start, addresses=addresses)


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text[:300]


PROBES = {"http": probe_http, "tcp": probe_tcp, "dns": probe_dns}


class UptimeActivities:
    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    @activity.defn(name=PROBE_ACTIVITY)
    async def probe(self, spec: CheckSpec) -> Observation:
        return await PROBES[spec.kind](spec, self.clock())

    @activity.defn(name=RECORD_CHECK_ACTIVITY)
    def record(self, inp: RecordCheckInput) -> CheckRunResult:
        spec, seen = inp.spec, inp.observation
        verdict = judge(spec, seen)
        with Session(self.engine) as session, session.begin():
            row = session.get(UptimeCheckRow, spec.name, with_for_update=True)
            if row is None:
                row = UptimeCheckRow(name=spec.name, component=spec.component, kind=spec.kind, failures=0,
                                     last_run_id="", last_detail="", last_action="none")
                session.add(row)
            elif row.last_run_id == inp.run_id:
                # This run was recorded already (the activity is being retried): same answer.
                return self._answer(spec, verdict, row.last_action, row.last_alert_since, row.last_detail)
            before = CheckState(failures=row.failures, alerting_since=row.alerting_since)
            after, action = advance(before, verdict, seen.at, spec.fail_after)
            since = after.alerting_since or before.alerting_since
            row.component, row.kind = spec.component, spec.kind
            row.failures, row.alerting_since = after.failures, after.alerting_since
            row.last_run_id, row.last_at, row.last_ok = inp.run_id, seen.at, verdict.ok
            row.last_detail, row.last_action, row.last_latency = verdict.detail[:2000], action, seen.latency_seconds
            if action != "none":
                row.last_alert_since = since
            return self._answer(spec, verdict, action, since, verdict.detail)

    @staticmethod
    def _answer(spec: CheckSpec, verdict: Any, action: str, since: datetime | None, detail: str) -> CheckRunResult:
        alert = None
        if action in ("fire", "resolve") and since is not None:
            alert = check_alert(spec, "firing" if action == "fire" else "resolved", since, detail)
        return CheckRunResult(verdict=verdict, action=action, alert=alert)  # type: ignore[arg-type]

    def all(self) -> list[Callable[..., object]]:
        return [self.probe, self.record]
