"""Built-in uptime checks: their configuration and the rules that judge them.

A check (HTTP(S), TCP connect or DNS resolution) runs on a Temporal schedule,
one run at a time. Each run's observation is judged here (:func:`judge_http`,
:func:`judge_latency`), then :func:`advance` decides, from the check's recorded
state, whether this is the ``fail_after``-th failure in a row (fire an alert),
the first success after an alert (resolve it) or nothing new. Pure functions;
times are passed in.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warroom.models.durations import Duration
from warroom.models.incident import AlertEvent
from warroom.models.severity import Severity

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
CHECK_SCHEDULE_PREFIX = "uptime-check-"


def check_schedule_id(name: str) -> str:
    return f"{CHECK_SCHEDULE_PREFIX}{name}"


class CheckSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["http", "tcp", "dns"]
    component: str = Field(min_length=1, max_length=100)
    every: Duration = timedelta(minutes=1)
    timeout: Duration = timedelta(seconds=10)
    fail_after: int = Field(default=3, ge=1, le=100)
    """Alert on this many failures in a row (one bad probe is often the network, not the service)."""
    severity: Severity = Severity.SEV2
    # http
    url: str | None = None
    expect_status: list[int] = Field(default_factory=list)
    """Empty: any 2xx or 3xx."""
    body_contains: str | None = Field(default=None, max_length=1000)
    max_latency: Duration | None = None
    """Slower than this counts as a failure ("slow")."""
    tls_expires_within: Duration | None = None
    """HTTPS: a certificate expiring within this long counts as a failure."""
    ca_file: str | None = None
    """HTTPS: trust this CA bundle (a private CA); default: the system's."""
    # tcp
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    # dns
    hostname: str | None = None
    expect_addresses: list[str] = Field(default_factory=list)
    """DNS: at least one of these must be among the answers (empty: any answer)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits, '-', '_' or '.' (at most 63)")
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        from warroom.models.detection import severity_word

        return severity_word(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _fields_of_kind(self) -> "CheckSpec":
        if self.every < timedelta(seconds=1):
            raise ValueError("every: at least 1s")
        if self.timeout <= timedelta(0) or self.timeout > self.every:
            raise ValueError("timeout: positive and no longer than 'every' (runs never overlap)")
        if self.kind == "http":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("an http check needs url: http://... or https://...")
            if self.tls_expires_within is not None and not self.url.startswith("https://"):
                raise ValueError("tls_expires_within needs an https:// url")
        if self.kind == "tcp" and (not self.host or self.port is None):
            raise ValueError("a tcp check needs host and port")
        if self.kind == "dns" and not self.hostname:
            raise ValueError("a dns check needs hostname")
        return self

    def target(self) -> str:
        if self.kind == "http":
            return str(self.url)
        if self.kind == "tcp":
            return f"{self.host}:{self.port}"
        return str(self.hostname)


class Observation(BaseModel):
    """What one probe saw (the activity's result); ``error`` when it could not even get an answer."""

    at: datetime
    latency_seconds: float | None = None
    status: int | None = None
    body_matched: bool | None = None
    cert_expires_at: datetime | None = None
    addresses: list[str] = Field(default_factory=list)
    error: str | None = None


class Verdict(BaseModel):
    ok: bool
    detail: str


def judge(spec: CheckSpec, seen: Observation) -> Verdict:
    """Pass or fail, with the reason in words."""
    if seen.error:
        return Verdict(ok=False, detail=seen.error)
    problems: list[str] = []
    if spec.kind == "http":
        if spec.expect_status:
            if seen.status not in spec.expect_status:
                problems.append(f"HTTP {seen.status} (expected {', '.join(map(str, spec.expect_status))})")
        elif seen.status is None or not 200 <= seen.status < 400:
            problems.append(f"HTTP {seen.status}")
        if spec.body_contains is not None and not seen.body_matched:
            problems.append(f"the page does not contain '{spec.body_contains[:60]}'")
        if spec.tls_expires_within is not None and seen.cert_expires_at is not None:
            left = seen.cert_expires_at - seen.at
            if left <= spec.tls_expires_within:
                days = left.total_seconds() / 86400
                problems.append("the TLS certificate has expired" if left <= timedelta(0)
                                else f"the TLS certificate expires in {days:.1f} days")
    if spec.kind == "dns" and spec.expect_addresses and not set(spec.expect_addresses) & set(seen.addresses):
        problems.append(f"resolves to {', '.join(seen.addresses) or 'nothing'}, "
                        f"expected {', '.join(spec.expect_addresses)}")
    if spec.max_latency is not None and seen.latency_seconds is not None:
        if seen.latency_seconds > spec.max_latency.total_seconds():
            problems.append(f"slow: {seen.latency_seconds:.2f} s (limit {spec.max_latency.total_seconds():g} s)")
    if problems:
        return Verdict(ok=False, detail="; ".join(problems))
    took = f" in {seen.latency_seconds:.2f} s" if seen.latency_seconds is not None else ""
    return Verdict(ok=True, detail=f"up{took}")


class CheckState(BaseModel):
    """What the read model remembers of a check between runs."""

    failures: int = 0
    """Failures in a row."""
    alerting_since: datetime | None = None
    """The instant of the failure that fired the alert (None: no alert open)."""


Action = Literal["fire", "resolve", "none"]


def advance(state: CheckState, verdict: Verdict, at: datetime, fail_after: int) -> tuple[CheckState, Action]:
    """The state after one more run, and what to do about it."""
    if verdict.ok:
        if state.alerting_since is not None:
            return CheckState(), "resolve"
        return CheckState(), "none"
    failures = state.failures + 1
    if state.alerting_since is None and failures >= fail_after:
        return CheckState(failures=failures, alerting_since=at), "fire"
    return CheckState(failures=failures, alerting_since=state.alerting_since), "none"


class CheckRunResult(BaseModel):
    """The ``record_check`` activity's answer to the workflow."""

    verdict: Verdict
    action: Action
    alert: AlertEvent | None = None


def check_alert(spec: CheckSpec, status: str, since: datetime, detail: str) -> AlertEvent:
    """The alert of one failing episode (its start is the failure that fired it)."""
    title = f"{spec.component}: {spec.kind.upper()} check '{spec.name}' failing"
    return AlertEvent(
        source="uptime",
        fingerprint=f"uptime:{spec.name}"[:100],
        status=status,
        name=title,
        summary=title if status == "firing" else f"{spec.component}: check '{spec.name}' recovered",
        description=f"{spec.target()}: {detail}",
        labels={"check": spec.name, "kind": spec.kind},
        starts_at=since,
        severity=spec.severity,
        component=spec.component,
        dedup_key=f"uptime:{spec.name}",
    )


class CheckRunInput(BaseModel):
    spec: CheckSpec


class RecordCheckInput(BaseModel):
    spec: CheckSpec
    observation: Observation
    run_id: str
    """The workflow run: a retried activity answers from what it already recorded."""
