"""Uptime checks without Temporal: the judging rules table-style, and each probe against
local servers that go down, come back, slow down and present an expiring certificate."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.checks_servers import LocalServer, self_signed
from tests.stack import free_port
from warroom.activities.uptime import PROBES
from warroom.models.checks import CheckSpec, CheckState, Observation, Verdict, advance, judge
from warroom.models.detection import DetectionError, parse_detection

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def spec(**fields: Any) -> CheckSpec:
    base: dict[str, Any] = {"name": "cp", "kind": "http", "component": "control-panel", "url": "http://x/",
                            "every": "1s", "timeout": "1s"}
    return CheckSpec.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("given", "seen", "ok", "detail"),
    [
        (spec(), Observation(at=T0, status=200, latency_seconds=0.1), True, "up in 0.10 s"),
        (spec(), Observation(at=T0, status=302, latency_seconds=0.1), True, "up"),
        (spec(), Observation(at=T0, status=503, latency_seconds=0.1), False, "HTTP 503"),
        (spec(expect_status=[204]), Observation(at=T0, status=200), False, "HTTP 200 (expected 204)"),
        (spec(body_contains="OK"), Observation(at=T0, status=200, body_matched=False), False, "does not contain 'OK'"),
        (spec(max_latency="0.5s"), Observation(at=T0, status=200, latency_seconds=0.8), False, "slow: 0.80 s"),
        (spec(url="https://x/", tls_expires_within="7d"),
         Observation(at=T0, status=200, cert_expires_at=T0 + timedelta(days=2)), False, "expires in 2.0 days"),
        (spec(url="https://x/", tls_expires_within="7d"),
         Observation(at=T0, status=200, cert_expires_at=T0 - timedelta(hours=1)), False, "has expired"),
        (spec(url="https://x/", tls_expires_within="7d"),
         Observation(at=T0, status=200, cert_expires_at=T0 + timedelta(days=30)), True, "up"),
        (spec(), Observation(at=T0, error="cannot connect: refused"), False, "cannot connect: refused"),
        (spec(kind="dns", url=None, hostname="h", expect_addresses=["10.0.0.1"]),
         Observation(at=T0, addresses=["10.0.0.2"]), False, "expected 10.0.0.1"),
    ],
)
def test_judge(given: CheckSpec, seen: Observation, ok: bool, detail: str) -> None:
    verdict = judge(given, seen)
    assert verdict.ok is ok
    assert detail in verdict.detail


BAD, GOOD = Verdict(ok=False, detail="down"), Verdict(ok=True, detail="up")


@pytest.mark.parametrize(
    ("before", "verdict", "fail_after", "after", "action"),
    [
        (CheckState(), BAD, 3, CheckState(failures=1), "none"),
        (CheckState(failures=2), BAD, 3, CheckState(failures=3, alerting_since=T0), "fire"),
        (CheckState(), BAD, 1, CheckState(failures=1, alerting_since=T0), "fire"),
        # still failing: no second alert
        (CheckState(failures=3, alerting_since=T0 - timedelta(minutes=1)), BAD, 3,
         CheckState(failures=4, alerting_since=T0 - timedelta(minutes=1)), "none"),
        # one success resets the count; after an alert it resolves it
        (CheckState(failures=2), GOOD, 3, CheckState(), "none"),
        (CheckState(failures=5, alerting_since=T0 - timedelta(minutes=1)), GOOD, 3, CheckState(), "resolve"),
    ],
)
def test_advance(before: CheckState, verdict: Verdict, fail_after: int, after: CheckState, action: str) -> None:
    assert advance(before, verdict, T0, fail_after) == (after, action)


@pytest.mark.parametrize(
    ("check", "reason"),
    [
        ({"kind": "http"}, "needs url"),
        ({"kind": "http", "url": "ftp://x"}, "needs url"),
        ({"kind": "tcp", "host": "h"}, "host and port"),
        ({"kind": "dns"}, "needs hostname"),
        ({"kind": "dns", "hostname": "h", "every": "10s", "timeout": "30s"}, "no longer than 'every'"),
        ({"kind": "http", "url": "http://x", "tls_expires_within": "7d"}, "https"),
        ({"kind": "smtp"}, "kind"),
    ],
)
def test_bad_checks_are_refused_with_the_reason(check: dict[str, Any], reason: str) -> None:
    with pytest.raises(DetectionError) as err:
        parse_detection({"checks": [{"name": "c", "component": "dns", **check}]})
    assert reason in str(err.value)


async def test_http_probe_down_back_slow(tmp_path: Path) -> None:
    server = LocalServer().start()
    check = spec(url=server.url, body_contains="systems go", max_latency="0.5s", timeout="2s", every="5s")
    try:
        assert judge(check, await PROBES["http"](check, T0)).ok
        server.behaviour.status = 500
        assert judge(check, await PROBES["http"](check, T0)).detail.startswith("HTTP 500")
        server.behaviour.status, server.behaviour.body = 200, b"maintenance"
        assert "does not contain" in judge(check, await PROBES["http"](check, T0)).detail
        server.behaviour.body, server.behaviour.delay = b"all systems go", 0.8
        assert "slow" in judge(check, await PROBES["http"](check, T0)).detail
        server.behaviour.delay = 2.5
        assert "no answer within 2 s" in judge(check, await PROBES["http"](check, T0)).detail
        server.behaviour.delay = 0
        server.stop()
        assert "cannot connect" in judge(check, await PROBES["http"](check, T0)).detail
        server.start()
        assert judge(check, await PROBES["http"](check, T0)).ok
    finally:
        server.stop()


async def test_https_probe_reports_an_expiring_certificate(tmp_path: Path) -> None:
    cert = self_signed(tmp_path, dt.timedelta(days=2))
    server = LocalServer(cert).start()
    try:
        check = spec(url=server.url, ca_file=str(cert[0]), tls_expires_within="7d", timeout="2s", every="5s")
        seen = await PROBES["http"](check, datetime.now(UTC))
        assert seen.status == 200 and seen.cert_expires_at is not None
        verdict = judge(check, seen)
        assert not verdict.ok and "expires in 2.0 days" in verdict.detail
        # without the CA the certificate is not trusted: a failure, and the expiry is still read
        untrusted = spec(url=server.url, tls_expires_within="1d", timeout="2s", every="5s")
        seen = await PROBES["http"](untrusted, datetime.now(UTC))
        assert seen.error and "certificate" in seen.error.lower()
        assert seen.cert_expires_at is not None
    finally:
        server.stop()


async def test_tcp_and_dns_probes() -> None:
    server = LocalServer().start()
    try:
        up = spec(kind="tcp", url=None, host="127.0.0.1", port=server.port)
        assert judge(up, await PROBES["tcp"](up, T0)).ok
        closed = spec(kind="tcp", url=None, host="127.0.0.1", port=free_port())
        assert "cannot connect" in judge(closed, await PROBES["tcp"](closed, T0)).detail
    finally:
        server.stop()
    local = spec(kind="dns", url=None, hostname="localhost", expect_addresses=["127.0.0.1"])
    assert judge(local, await PROBES["dns"](local, T0)).ok
    missing = spec(kind="dns", url=None, hostname="no-such-host.invalid")
    assert "does not resolve" in judge(missing, await PROBES["dns"](missing, T0)).detail
