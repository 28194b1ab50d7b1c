"""The automated step kinds: what ``http``, ``shell`` and ``wait_until_healthy`` do.

Each executor takes the step definition, the request (parameters, idempotency
key) and the worker's runbook configuration, and returns a ``StepOutcome``
instead of raising: whether a failure may be retried is the step's business
(its retry policy), and the workflow applies it. Outputs are trimmed and every
configured secret value is blanked out before anything leaves the executor.

Secrets reach a request only through headers, and a command only through its
environment; neither is ever recorded. A shell step gets a minimal environment
of its own, never the worker's (which holds those secrets).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from warroom.models.runbook import (
    OUTPUT_LIMIT,
    HttpStep,
    ShellStep,
    StepOutcome,
    StepRequest,
    TemplateError,
    WaitStep,
    render_argv,
    render_body,
    render_headers,
    render_path,
    render_text,
    scrub,
    trim,
)

Beat = Callable[[], None]
SHELL_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
KILL_GRACE = 2.0


@dataclass(frozen=True)
class RunbookConfig:
    """What the worker knows that runbooks only name: base URLs and secrets."""

    endpoints: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    def base_url(self, name: str) -> str:
        url = self.endpoints.get(name)
        if not url:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise TemplateError(
                f"endpoint '{name}' is not configured (WARROOM_RUNBOOK_ENDPOINTS; configured: {known})"
            )
        return url.rstrip("/")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every step (building one reads the CA bundle: ~0.2 s)."""
    return ssl.create_default_context()


def _values(req: StepRequest) -> dict[str, Any]:
    return {**req.params, "incident": req.incident_number, "run": req.run}


def step_header_key(req: StepRequest) -> str:
    """The Idempotency-Key sent to operations APIs: one per step, shared by its
    attempts, so a target that honours it never applies a retried step twice."""
    return req.key.rsplit("/attempt-", 1)[0]


def _fail(summary: str, *, retryable: bool = False, output: str = "", in_doubt: bool = False) -> StepOutcome:
    return StepOutcome(ok=False, retryable=retryable, summary=summary, output=output, in_doubt=in_doubt)


def _body_text(response: httpx.Response) -> str:
    try:
        return json.dumps(response.json(), sort_keys=True)
    except ValueError:
        return response.text


def _status_ok(status: int, expected: list[int]) -> bool:
    return status in expected if expected else 200 <= status < 300


async def run_http(step: HttpStep, req: StepRequest, config: RunbookConfig, beat: Beat) -> StepOutcome:
    values = _values(req)
    try:
        url = config.base_url(step.endpoint) + render_path(step.path, values)
        query = {k: render_text(v, values) for k, v in step.query.items()}
        headers = render_headers(step.headers, values, config.secrets)
        body = render_body(step.body, values) if step.body is not None else None
    except TemplateError as err:
        return _fail(str(err))
    headers.setdefault("Idempotency-Key", step_header_key(req))
    seconds = step.timeout.total_seconds()
    started = time.monotonic()
    beat()
    try:
        async with httpx.AsyncClient(timeout=seconds, follow_redirects=False, verify=_tls()) as client:
            response = await asyncio.wait_for(
                client.request(step.method, url, params=query or None, headers=headers, json=body), seconds
            )
    except (httpx.ConnectError, httpx.ConnectTimeout) as err:
        return _fail(f"cannot connect to {step.endpoint}: {type(err).__name__}", retryable=True)
    except (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError):
        took = f"no answer from {step.endpoint} within {seconds:g} s"
        if step.method == "GET" or step.idempotent:
            return _fail(took, retryable=True)
        return _fail(f"{took}; the request may have been applied, so it is not repeated", in_doubt=True)
    except httpx.HTTPError as err:
        return _fail(f"{step.method} {step.endpoint} failed: {type(err).__name__}", retryable=True)
    ms = int((time.monotonic() - started) * 1000)
    output = trim(scrub(_body_text(response), config.secrets), OUTPUT_LIMIT)
    summary = f"{step.method} {render_path(step.path, values)} -> HTTP {response.status_code} in {ms} ms"
    if _status_ok(response.status_code, step.expect_status):
        return StepOutcome(ok=True, summary=summary, output=output)
    retryable = response.status_code >= 500 or response.status_code == 429
    return _fail(summary, retryable=retryable, output=output)


class _Collector:
    """Keeps the start and the end of a long output, never all of it."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > self.limit:
            cut = len(self.tail) - self.limit
            self.dropped += cut
            del self.tail[:cut]

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        middle = f"\n[... {self.dropped} bytes cut ...]\n" if self.dropped else ""
        return head + middle + tail


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Stop the command and everything it started (it runs in its own session)."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(proc.wait(), wait)
            return
        except asyncio.TimeoutError:
            continue


async def run_shell(step: ShellStep, req: StepRequest, config: RunbookConfig, beat: Beat) -> StepOutcome:
    values = _values(req)
    try:
        argv = render_argv(step.argv, values)
        env = {**SHELL_ENV, **{k: render_text(v, values, config.secrets) for k, v in step.env.items()}}
    except TemplateError as err:
        return _fail(str(err))
    env["WARROOM_IDEMPOTENCY_KEY"] = step_header_key(req)
    seconds = step.timeout.total_seconds()
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except FileNotFoundError:
        return _fail(f"program not found on the worker: {argv[0]}")
    except PermissionError:
        return _fail(f"not allowed to run {argv[0]} on the worker")
    collector = _Collector()

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            collector.add(chunk)

    reader = asyncio.ensure_future(pump())
    try:
        while True:
            beat()
            left = seconds - (time.monotonic() - started)
            if left <= 0:
                break
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), min(1.0, left))
                break
            except asyncio.TimeoutError:
                continue
        timed_out = proc.returncode is None
        if timed_out:
            await _kill(proc)
        try:
            await asyncio.wait_for(reader, 2.0)
        except asyncio.TimeoutError:
            reader.cancel()
    except asyncio.CancelledError:
        await _kill(proc)
        reader.cancel()
        raise
    output = trim(scrub(collector.text(), config.secrets), OUTPUT_LIMIT)
    took = time.monotonic() - started
    program = os.path.basename(argv[0])
    if timed_out:
        summary = f"{program} did not finish within {seconds:g} s and was stopped"
        if step.idempotent:
            return _fail(summary, retryable=True, output=output)
        return _fail(summary + "; its effect is unknown, so it is not repeated", output=output, in_doubt=True)
    summary = f"{program} exited with {proc.returncode} after {took:.1f} s"
    if proc.returncode in step.ok_exit_codes:
        return StepOutcome(ok=True, summary=summary, output=output)
    return _fail(summary, retryable=True, output=output)


def _health_problem(response: httpx.Response, step: WaitStep) -> str | None:
    if response.status_code not in step.expect_status:
        return f"HTTP {response.status_code}"
    if step.expect_json:
        try:
            data = response.json()
        except ValueError:
            return "the answer is not JSON"
        if not isinstance(data, dict):
            return "the answer is not a JSON object"
        for key, want in step.expect_json.items():
            if data.get(key) != want:
                return f"{key} is {data.get(key)!r}, not {want!r}"
    return None


async def wait_until_healthy(
    step: WaitStep,
    req: StepRequest,
    config: RunbookConfig,
    beat: Callable[[dict[str, Any]], None],
    started_at: float,
    polls: int = 0,
    now: Callable[[], float] = time.time,
) -> StepOutcome:
    """Poll until the health check passes or ``step.timeout`` after ``started_at``
    (wall-clock seconds; a resumed attempt passes the original start and count)."""
    values = _values(req)
    try:
        url = config.base_url(step.endpoint) + render_path(step.path, values)
    except TemplateError as err:
        return _fail(str(err))
    deadline = started_at + step.timeout.total_seconds()
    interval = max(step.interval.total_seconds(), 0.1)
    last, last_body = "not polled yet", ""
    async with httpx.AsyncClient(
        timeout=min(max(interval, 2.0), 10.0), follow_redirects=False, verify=_tls()
    ) as client:
        while True:
            polls += 1
            try:
                response = await client.get(url)
                problem = _health_problem(response, step)
                last_body = trim(scrub(_body_text(response), config.secrets), OUTPUT_LIMIT)
            except httpx.HTTPError as err:
                problem, last_body = f"unreachable ({type(err).__name__})", ""
            took = now() - started_at
            if problem is None:
                checks = f"{polls} check{'s' if polls != 1 else ''}"
                return StepOutcome(ok=True, summary=f"healthy after {took:.1f} s ({checks})", output=last_body)
            last = problem
            beat({"started_at": started_at, "polls": polls, "last": last})
            left = deadline - now()
            if left <= 0:
                break
            await asyncio.sleep(min(interval, left))
    limit = step.timeout.total_seconds()
    return _fail(f"not healthy within {limit:g} s; last check: {last}", retryable=True, output=last_body)
