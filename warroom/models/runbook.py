"""Runbooks as data: the definition, its parameters, safe templating, and run payloads.

A runbook is a checked-in YAML file: a title, when to use it, typed parameters
and ordered steps. Everything here is pure (no I/O), so the workflow, the API,
the activities and the exporter share one set of rules.

Templating is deliberately small. ``{{ name }}`` inserts a parameter,
``{{ incident }}`` and ``{{ run }}`` the incident and run numbers, and
``{{ secret.NAME }}`` a secret from the worker's settings, but only in HTTP
headers and in a shell step's environment: never in a URL, a body or argv,
which end up in logs and process listings. Each substitution is confined to
where it lands: one argv element (and never one that would read as an
option), one percent-encoded URL path segment, one JSON value.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from warroom.models.durations import Duration, format_duration

# --- limits -----------------------------------------------------------------------

OUTPUT_LIMIT = 4000
"""Characters of a step's output kept in the read model."""
TIMELINE_OUTPUT_LIMIT = 300
"""Characters of a step's output quoted in the incident timeline."""
MAX_STEPS = 50

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
RUNBOOK_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = re.compile(rf"^{IDENT}$")
_SECRET = re.compile(rf"^secret\.({IDENT})$")
BUILTINS = ("incident", "run")
SAFE_STRING = r"^[A-Za-z0-9][A-Za-z0-9._:/@+=,-]*$"
"""The default pattern of a string parameter: no spaces, quotes or leading dash."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class RunbookError(Exception):
    """A runbook that cannot be used; the message names the file and the key."""


class ParameterError(ValueError):
    """Parameters that do not fit the runbook; the message lists every problem."""


class TemplateError(ValueError):
    """A value that cannot be placed safely where the template puts it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- the definition -----------------------------------------------------------------

ParamValue = str | int | float | bool


class Parameter(_Strict):
    type: Literal["string", "integer", "number", "boolean", "choice"] = "string"
    description: str = ""
    required: bool = False
    default: ParamValue | None = None
    choices: list[str] = Field(default_factory=list)
    pattern: str | None = None
    """For strings: a regular expression the whole value must match (default: a
    conservative identifier-like pattern; give ``'.*'`` for free text)."""
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = Field(default=200, ge=1, le=2000)

    @model_validator(mode="after")
    def _consistent(self) -> "Parameter":
        if self.required and self.default is not None:
            raise ValueError("a required parameter cannot have a default")
        if not self.required and self.default is None:
            raise ValueError("give a default or mark the parameter required: true")
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice parameter needs choices")
        if self.type != "choice" and self.choices:
            raise ValueError("choices are only for type: choice")
        if self.pattern is not None:
            if self.type != "string":
                raise ValueError("pattern is only for type: string")
            try:
                re.compile(self.pattern)
            except re.error as err:
                raise ValueError(f"pattern is not a valid regular expression ({err})") from None
        if self.default is not None:
            try:
                coerce_param(self, self.default)
            except ValueError as err:
                raise ValueError(f"default: {err}") from None
        return self

    def describe_type(self) -> str:
        if self.type == "choice":
            return "one of " + ", ".join(self.choices)
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        return self.type + (f" ({', '.join(bounds)})" if bounds else "")


class RetrySpec(_Strict):
    max_attempts: int = Field(default=1, ge=1, le=10)
    """1 means no retry. Only failures that may pass are retried (5xx, timeouts,
    refused connections, a non-zero exit); a 4xx answer is final."""
    initial_interval: Duration = timedelta(seconds=2)
    backoff: float = Field(default=2.0, ge=1.0, le=10.0)
    max_interval: Duration = timedelta(seconds=60)


class _Step(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    destructive: bool = False
    """Changes production in a way that is hard to undo: the run needs an explicit
    confirmation and a caller allowed to run destructive steps."""
    retry: RetrySpec = Field(default_factory=RetrySpec)


HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class HttpStep(_Step):
    kind: Literal["http"]
    endpoint: str = Field(pattern=rf"^{IDENT}$")
    """Name of a base URL from the worker's settings (``WARROOM_RUNBOOK_ENDPOINTS``):
    the host is configuration, never a parameter."""
    method: HttpMethod = "POST"
    path: str = Field(pattern=r"^/", max_length=1000)
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    """JSON body; a string that is exactly one placeholder takes the parameter's type."""
    expect_status: list[int] = Field(default_factory=list)
    """Statuses that count as success; empty means any 2xx."""
    idempotent: bool = False
    """True when repeating the call is harmless (the target honours the
    Idempotency-Key header, or the call sets a state): an attempt interrupted by a
    worker crash is then repeated instead of reported as unconfirmed. A GET is
    always treated so."""
    timeout: Duration = timedelta(seconds=30)

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        if any(not 100 <= s <= 599 for s in value):
            raise ValueError("HTTP statuses are between 100 and 599")
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ShellStep(_Step):
    kind: Literal["shell"]
    argv: list[str] = Field(min_length=1, max_length=100)
    """The program and its arguments, run without a shell."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment; the worker's own environment is not passed on."""
    ok_exit_codes: list[int] = Field(default_factory=lambda: [0])
    idempotent: bool = False
    timeout: Duration = timedelta(seconds=60)


class WaitStep(_Step):
    kind: Literal["wait_until_healthy"]
    endpoint: str = Field(pattern=rf"^{IDENT}$")
    path: str = Field(default="/health", pattern=r"^/", max_length=1000)
    expect_status: list[int] = Field(default_factory=lambda: [200])
    expect_json: dict[str, Any] = Field(default_factory=dict)
    """Top-level keys the JSON answer must have with these values."""
    interval: Duration = timedelta(seconds=2)
    timeout: Duration = timedelta(minutes=5)
    """How long to keep polling before the step fails."""


class ManualStep(_Step):
    kind: Literal["manual"]
    instruction: str = Field(min_length=1)
    """What a person must do and then confirm as done."""
    timeout: Duration = timedelta(hours=1)


class ApprovalStep(_Step):
    kind: Literal["approval"]
    instruction: str = Field(min_length=1)
    """What the second operator checks before approving."""
    timeout: Duration = timedelta(hours=1)


Step = Annotated[HttpStep | ShellStep | WaitStep | ManualStep | ApprovalStep, Field(discriminator="kind")]
AUTOMATED_KINDS = ("http", "shell", "wait_until_healthy")
STEP_KINDS = ("http", "shell", "wait_until_healthy", "manual", "approval")


class Runbook(_Strict):
    id: str = ""
    """The file name without ``.yaml``; set by the loader."""
    title: str = Field(min_length=1, max_length=200)
    when_to_use: str = Field(min_length=1)
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @field_validator("parameters")
    @classmethod
    def _param_names(cls, value: dict[str, Parameter]) -> dict[str, Parameter]:
        for name in value:
            if not _NAME.match(name) or name in BUILTINS or name == "secret":
                raise ValueError(f"'{name}' cannot be a parameter name (use letters, digits and _; "
                                 f"{', '.join(BUILTINS)} and secret are reserved)")
        return value

    @model_validator(mode="after")
    def _placeholders(self) -> "Runbook":
        known = set(self.parameters)
        for i, step in enumerate(self.steps):
            for where, text, secrets_ok in _template_fields(step):
                for name in placeholders(text):
                    loc = f"steps.{i}.{where}"
                    if _SECRET.match(name):
                        if not secrets_ok:
                            raise ValueError(f"{loc}: secrets may only be used in headers and env, not in '{name}'")
                        continue
                    if name.startswith("secret.") or not _NAME.match(name):
                        raise ValueError(f"{loc}: '{{{{ {name} }}}}' is not a valid placeholder")
                    if name not in known and name not in BUILTINS:
                        listed = ", ".join(sorted(known)) or "none"
                        raise ValueError(f"{loc}: unknown parameter '{name}' (parameters are: {listed})")
            if isinstance(step, ShellStep) and placeholders(step.argv[0]):
                raise ValueError(f"steps.{i}.argv.0: the program must be written out, not a placeholder")
        return self

    @property
    def destructive(self) -> bool:
        return any(step.destructive for step in self.steps)


def _template_fields(step: Any) -> list[tuple[str, str, bool]]:
    """(location, text, secrets allowed) for every templated string of a step."""
    out: list[tuple[str, str, bool]] = []
    if isinstance(step, HttpStep):
        out.append(("path", step.path, False))
        out += [(f"query.{k}", v, False) for k, v in step.query.items()]
        out += [(f"headers.{k}", v, True) for k, v in step.headers.items()]
        out += [(f"body{loc}", v, False) for loc, v in _strings(step.body, "")]
    elif isinstance(step, ShellStep):
        out += [(f"argv.{j}", v, False) for j, v in enumerate(step.argv)]
        out += [(f"env.{k}", v, True) for k, v in step.env.items()]
    elif isinstance(step, WaitStep):
        out.append(("path", step.path, False))
    return out


def _strings(obj: Any, loc: str) -> list[tuple[str, str]]:
    if isinstance(obj, str):
        return [(loc, obj)]
    if isinstance(obj, dict):
        return [item for k, v in obj.items() for item in _strings(v, f"{loc}.{k}")]
    if isinstance(obj, list):
        return [item for j, v in enumerate(obj) for item in _strings(v, f"{loc}.{j}")]
    return []


def placeholders(text: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(text)]


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem, each starting with the key, e.g. ``steps.2.method: ...``."""
    lines = []
    for err in exc.errors():
        parts = list(err["loc"])
        # A discriminated union puts the step kind into the location: drop it.
        parts = [p for j, p in enumerate(parts) if not (p in STEP_KINDS and j > 0 and isinstance(parts[j - 1], int))]
        loc = ".".join(str(p) for p in parts)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown step kind (kinds are: {', '.join(STEP_KINDS)})"
        elif err["type"] == "union_tag_not_found":
            msg = f"a step needs a kind ({', '.join(STEP_KINDS)})"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def parse_runbook(data: Any, runbook_id: str, source: str) -> Runbook:
    """Validate one runbook document; errors name ``source`` and the key."""
    if not RUNBOOK_ID.match(runbook_id):
        raise RunbookError(f"{source}: the file name must be lower-case letters, digits and dashes")
    if not isinstance(data, dict):
        raise RunbookError(f"{source}: a runbook must be a mapping of keys to values")
    given = data.get("id", runbook_id)
    if given != runbook_id:
        raise RunbookError(f"{source}: id: '{given}' does not match the file name '{runbook_id}'")
    try:
        return Runbook.model_validate({**data, "id": runbook_id})
    except ValidationError as exc:
        raise RunbookError(f"{source}: {format_validation_error(exc)}") from None


# --- parameters ---------------------------------------------------------------------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce_param(spec: Parameter, value: Any) -> ParamValue:
    """The value as the parameter's type, or ValueError saying why not."""
    if spec.type == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("expected true or false")
    if spec.type in ("integer", "number"):
        if isinstance(value, bool):
            raise ValueError(f"expected {'an integer' if spec.type == 'integer' else 'a number'}")
        number: int | float
        try:
            if spec.type == "integer":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                number = int(value) if not isinstance(value, str) else int(value.strip())
            else:
                number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected {'an integer' if spec.type == 'integer' else 'a number'}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("expected a finite number")
        if spec.minimum is not None and number < spec.minimum:
            raise ValueError(f"must be at least {spec.minimum:g}")
        if spec.maximum is not None and number > spec.maximum:
            raise ValueError(f"must be at most {spec.maximum:g}")
        return number
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("expected text")
    text = str(value)
    if _CONTROL.search(text):
        raise ValueError("must not contain control characters")
    if len(text) > spec.max_length:
        raise ValueError(f"must be at most {spec.max_length} characters")
    if spec.type == "choice":
        if text not in spec.choices:
            raise ValueError(f"must be one of {', '.join(spec.choices)}")
        return text
    if not text:
        raise ValueError("must not be empty")
    pattern = spec.pattern if spec.pattern is not None else SAFE_STRING
    if not re.fullmatch(pattern, text, flags=re.DOTALL):
        if spec.pattern is None:
            raise ValueError("use letters, digits and . _ : / @ + = , - (not starting with -)")
        raise ValueError(f"does not match the pattern {spec.pattern}")
    return text


def check_params(runbook: Runbook, given: dict[str, Any]) -> dict[str, ParamValue]:
    """Every parameter with its typed value (defaults filled in), or ParameterError
    listing every problem at once."""
    problems: list[str] = []
    values: dict[str, ParamValue] = {}
    for name in given:
        if name not in runbook.parameters:
            listed = ", ".join(runbook.parameters) or "none"
            problems.append(f"{name}: not a parameter of this runbook (parameters are: {listed})")
    for name, spec in runbook.parameters.items():
        if name not in given or given[name] is None:
            if spec.required:
                problems.append(f"{name}: required ({spec.describe_type()})")
                continue
            assert spec.default is not None
            values[name] = coerce_param(spec, spec.default)
            continue
        try:
            values[name] = coerce_param(spec, given[name])
        except ValueError as err:
            problems.append(f"{name}: {err}")
    if problems:
        raise ParameterError("; ".join(problems))
    return values


# --- templating ---------------------------------------------------------------------


def _lookup(name: str, values: dict[str, Any], secrets: dict[str, str] | None) -> Any:
    match = _SECRET.match(name)
    if match:
        if secrets is None:
            raise TemplateError(f"'{name}' cannot be used here")
        secret = secrets.get(match.group(1))
        if secret is None:
            raise TemplateError(f"secret '{match.group(1)}' is not configured (WARROOM_RUNBOOK_SECRETS)")
        return secret
    if name not in values:
        raise TemplateError(f"no value for '{name}'")
    return values[name]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_text(template: str, values: dict[str, Any], secrets: dict[str, str] | None = None) -> str:
    return PLACEHOLDER.sub(lambda m: _as_text(_lookup(m.group(1), values, secrets)), template)


def render_path(template: str, values: dict[str, Any]) -> str:
    """A URL path where each substituted value is one percent-encoded segment part:
    a value can never add a ``/``, a ``?``, a ``#`` or walk up with ``..``."""

    def sub(m: re.Match[str]) -> str:
        text = _as_text(_lookup(m.group(1), values, None))
        if text in ("", ".", ".."):
            raise TemplateError(f"'{text}' cannot be placed in a URL path")
        return quote(text, safe="")

    return PLACEHOLDER.sub(sub, template)


def render_argv(argv: list[str], values: dict[str, Any]) -> list[str]:
    """argv with values substituted: each template element stays exactly one
    argument, and a value may not turn an argument into an option."""
    out = []
    for element in argv:
        rendered = render_text(element, values)
        if rendered.startswith("-") and not element.startswith("-"):
            raise TemplateError(f"the argument '{rendered[:40]}' would be read as an option")
        if "\x00" in rendered:
            raise TemplateError("an argument cannot contain a NUL character")
        out.append(rendered)
    return out


def render_body(obj: Any, values: dict[str, Any]) -> Any:
    if isinstance(obj, str):
        whole = PLACEHOLDER.fullmatch(obj.strip())
        if whole:
            return _lookup(whole.group(1), values, None)
        return render_text(obj, values)
    if isinstance(obj, dict):
        return {k: render_body(v, values) for k, v in obj.items()}
    if isinstance(obj, list):
        return [render_body(v, values) for v in obj]
    return obj


def render_headers(headers: dict[str, str], values: dict[str, Any], secrets: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, template in headers.items():
        value = render_text(template, values, secrets)
        if "\r" in value or "\n" in value:
            raise TemplateError(f"header {key} would contain a line break")
        out[key] = value
    return out


def trim(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """At most ``limit`` characters: the start and the end, with the middle cut."""
    text = text.replace("\r\n", "\n")
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} characters cut ...]\n"
    keep = max(limit - len(marker), 0)
    head = keep // 3
    return text[:head] + marker + text[len(text) - (keep - head):]


def scrub(text: str, secrets: dict[str, str]) -> str:
    """Replace every secret value (of 4 characters or more) with ``***``."""
    for value in sorted(secrets.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


def retry_delay(spec: RetrySpec, failed_attempts: int) -> timedelta:
    """The wait before the next attempt, after ``failed_attempts`` failures (>= 1)."""
    seconds = spec.initial_interval.total_seconds() * spec.backoff ** (failed_attempts - 1)
    return min(timedelta(seconds=seconds), spec.max_interval)


def step_key(incident: int, run: int, step: int, attempt: int) -> str:
    """The idempotency key of one attempt of one step (steps and attempts count from 1)."""
    return f"incident-{incident}/run-{run}/step-{step}/attempt-{attempt}"


# --- runs: workflow payloads -----------------------------------------------------------


class RunStatus(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    """A manual or approval step waits for a person."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def active(self) -> bool:
        return self in (RunStatus.RUNNING, RunStatus.WAITING)


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    SKIPPED = "skipped"


class RunbookRunInput(BaseModel):
    """The ``run_runbook`` command on an incident.

    ``actor`` and ``can_run_destructive`` come from the caller's identity: today the
    API takes the actor from the request body and derives the capability from
    settings; access control replaces exactly that derivation."""

    runbook: Runbook
    """A copy of the definition, so a later edit of the file never changes this run."""
    params: dict[str, ParamValue] = Field(default_factory=dict)
    actor: str
    can_run_destructive: bool = False
    confirm_destructive: bool = False
    reason: str = ""


class RunbookRunRef(BaseModel):
    """What the incident keeps about each of its runs."""

    run: int
    runbook_id: str
    title: str
    workflow_id: str
    started_by: str
    started_at: datetime
    status: RunStatus = RunStatus.RUNNING
    finished_at: datetime | None = None


class RunbookRunStart(BaseModel):
    """Input of one ``RunbookRunWorkflow``."""

    incident_number: int
    run: int
    runbook: Runbook
    params: dict[str, ParamValue]
    started_by: str
    operators: list[str] = Field(default_factory=list)
    """People who may confirm, approve and abort (the incident policy's people)."""
    reason: str = ""
    parent_workflow_id: str | None = None


class StepState(BaseModel):
    index: int
    """1-based."""
    name: str
    kind: str
    destructive: bool = False
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    output: str = ""
    result: str = ""
    """One line: what happened."""
    actor: str | None = None
    """Who confirmed or approved a manual/approval step."""
    key: str | None = None
    """Idempotency key of the latest attempt."""


class RunbookRunState(BaseModel):
    incident_number: int
    run: int
    runbook_id: str
    title: str
    params: dict[str, ParamValue] = Field(default_factory=dict)
    started_by: str
    reason: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus = RunStatus.RUNNING
    current_step: int | None = None
    aborted_by: str | None = None
    result: str = ""
    steps: list[StepState] = Field(default_factory=list)
    version: int = 0


class StepRequest(BaseModel):
    """What an automated step's activity gets."""

    key: str
    incident_number: int
    run: int
    step_index: int
    attempt: int
    step: Step
    params: dict[str, ParamValue] = Field(default_factory=dict)


class StepOutcome(BaseModel):
    ok: bool
    retryable: bool = False
    summary: str
    """One line, e.g. ``HTTP 200`` or ``exit 1``."""
    output: str = ""
    """Trimmed, secrets removed."""
    in_doubt: bool = False
    """An earlier attempt of this key was interrupted; its effect is unknown."""


class StepDecisionInput(BaseModel):
    """A person confirms a manual step as done."""

    step: int
    actor: str
    note: str = ""


class ApprovalInput(BaseModel):
    """A second operator approves (or refuses) an approval step."""

    step: int
    actor: str
    approve: bool = True
    note: str = ""
    can_run_destructive: bool = False


class AbortRunInput(BaseModel):
    actor: str
    reason: str = ""


class RunCommandResult(BaseModel):
    incident_number: int
    run: int
    status: RunStatus
    message: str
    workflow_id: str = ""


class RunbookEvent(BaseModel):
    """Sent by a run to its incident: a timeline line and the run's status."""

    run: int
    text: str
    actor: str | None = None
    status: RunStatus
    at: datetime


class PersistRunInput(BaseModel):
    state: RunbookRunState


def describe_outcome(status: StepStatus, summary: str, duration: timedelta | None) -> str:
    took = f" in {format_duration(duration)}" if duration is not None else ""
    return f"{status.value}{took}: {summary}" if summary else f"{status.value}{took}"
