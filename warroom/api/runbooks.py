"""Runbook routes: the catalogue, starting a run on an incident, watching it,
and the commands a run takes (confirm, approve, abort).

``install(app, settings)`` loads the catalogue (a bad file stops start-up with
the file and key named) and mounts the routes; ``create_app`` calls it.

Who may run what: ``runbook_caller`` is the one place that turns a request into
an actor and a capability. The actor is the authenticated caller (a body naming
someone else is refused with 403); reading needs the viewer role, starting a
runbook, confirming a manual step and aborting a run the responder role, and
running a runbook with destructive steps or approving a step the operator
role. The workflows' validators enforce the capability they are given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from warroom.api import commands
from warroom.api.auth import Operator, Responder, acting_as, require
from warroom.models.access import Caller, Role
from warroom.api.params import RunNumber, StepNumber, path_id
from warroom.models.ids import incident_workflow_id, runbook_run_workflow_id
from warroom.models.runbook import (
    AbortRunInput,
    ApprovalInput,
    ParameterError,
    ParamValue,
    Runbook,
    RunCommandResult,
    StepDecisionInput,
)
from warroom.models.tables import IncidentRow, RunbookRunRow, RunbookStepRow
from warroom.runbooks.catalogue import Catalogue, load_catalogue
from warroom.runbooks.commands import NotAllowed, UnknownRunbook, prepare_run
from warroom.settings import Settings
from warroom.workflows import IncidentWorkflow, RunbookRunWorkflow

router = APIRouter(tags=["runbooks"])
TEXT = 5000
ACTOR = "Who acts: always the caller. Leave it out; if given, it must be the caller's user id (else 403)."
READ = [Depends(require(Role.VIEWER))]


def install(app: FastAPI, settings: Settings) -> None:
    app.state.runbooks = load_catalogue(settings.runbooks_dir)
    app.include_router(router)


# --- who may run what (the access-control seam) ------------------------------------------


@dataclass(frozen=True)
class RunbookCaller:
    actor: str
    can_run_destructive: bool


def runbook_caller(caller: Caller, claimed_actor: str | None) -> RunbookCaller:
    """The caller of a runbook command and what they may do: the actor is the authenticated
    user (403 if the body names someone else), and only operators (and admins) may run or
    approve destructive steps. The workflow validators check the actor and the capability."""
    actor = acting_as(caller, claimed_actor, "actor")
    return RunbookCaller(actor=actor, can_run_destructive=caller.role.at_least(Role.OPERATOR))


# --- request and response bodies -----------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RunRunbookIn(_In):
    runbook: str = Field(min_length=1, max_length=100, description="Runbook id, e.g. deployment-rollback")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    actor: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)
    confirm_destructive: bool = False
    reason: str = Field(default="", max_length=TEXT)


class ConfirmIn(_In):
    actor: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)
    note: str = Field(default="", max_length=TEXT)


class ApproveIn(_In):
    actor: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)
    approve: bool = Field(description="true approves the step, false rejects it (and ends the run); say which")
    note: str = Field(default="", max_length=TEXT)


class AbortIn(_In):
    actor: str | None = Field(default=None, min_length=1, max_length=100, description=ACTOR)
    reason: str = Field(default="", max_length=TEXT)


class RunbookOut(BaseModel):
    id: str
    title: str
    when_to_use: str
    destructive: bool
    parameters: dict[str, Any]
    steps: list[dict[str, Any]]

    @classmethod
    def of(cls, rb: Runbook) -> "RunbookOut":
        data = rb.model_dump(mode="json")
        return cls(
            id=rb.id,
            title=rb.title,
            when_to_use=rb.when_to_use,
            destructive=rb.destructive,
            parameters=data["parameters"],
            steps=data["steps"],
        )


class RunCommandOut(BaseModel):
    incident_id: int
    run: int
    status: str
    message: str
    workflow_id: str


class StepOut(BaseModel):
    index: int
    name: str
    kind: str
    destructive: bool
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    result: str
    output: str
    actor: str | None
    idempotency_key: str | None


class RunOut(BaseModel):
    incident_id: int
    run: int
    runbook_id: str
    title: str
    status: str
    started_by: str
    reason: str
    params: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None
    current_step: int | None
    aborted_by: str | None
    result: str
    workflow_id: str
    steps: list[StepOut]


# --- helpers -----------------------------------------------------------------------------


def _rt(request: Request) -> Any:
    return request.app.state.runtime


def _catalogue(request: Request) -> Catalogue:
    return request.app.state.runbooks


RuntimeDep = Annotated[Any, Depends(_rt)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
IncidentId = Annotated[int, path_id("the incident number, e.g. 42")]
RunId = RunNumber


async def _db(rt: Any, fn: Callable[[Session], Any]) -> Any:
    def work() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return await run_in_threadpool(work)


def _run_out(row: RunbookRunRow, steps: list[RunbookStepRow]) -> RunOut:
    return RunOut(
        incident_id=row.incident_number,
        run=row.run,
        runbook_id=row.runbook_id,
        title=row.title,
        status=row.status,
        started_by=row.started_by,
        reason=row.reason,
        params=row.params,
        started_at=row.started_at,
        finished_at=row.finished_at,
        current_step=row.current_step,
        aborted_by=row.aborted_by,
        result=row.result,
        workflow_id=row.workflow_id,
        steps=[
            StepOut(
                index=st.step_index,
                name=st.name,
                kind=st.kind,
                destructive=st.destructive,
                status=st.status,
                attempts=st.attempts,
                started_at=st.started_at,
                finished_at=st.finished_at,
                duration_seconds=st.duration_seconds,
                result=st.result,
                output=st.output,
                actor=st.actor,
                idempotency_key=st.idempotency_key,
            )
            for st in steps
        ],
    )


def _load_runs(number: int, run: int | None = None) -> Callable[[Session], tuple[bool, list[RunOut]]]:
    def load(session: Session) -> tuple[bool, list[RunOut]]:
        query = select(RunbookRunRow).where(RunbookRunRow.incident_number == number).order_by(RunbookRunRow.run)
        step_query = (
            select(RunbookStepRow)
            .where(RunbookStepRow.incident_number == number)
            .order_by(RunbookStepRow.run, RunbookStepRow.step_index)
        )
        if run is not None:
            query = query.where(RunbookRunRow.run == run)
            step_query = step_query.where(RunbookStepRow.run == run)
        rows = list(session.scalars(query))
        by_run: dict[int, list[RunbookStepRow]] = {}
        for st in session.scalars(step_query):
            by_run.setdefault(st.run, []).append(st)
        known = bool(rows) or session.get(IncidentRow, number) is not None
        return known, [_run_out(r, by_run.get(r.run, [])) for r in rows]

    return load


def _out(result: RunCommandResult) -> RunCommandOut:
    return RunCommandOut(
        incident_id=result.incident_number,
        run=result.run,
        status=result.status.value,
        message=result.message,
        workflow_id=result.workflow_id or runbook_run_workflow_id(result.incident_number, result.run),
    )


async def _run_command(rt: Any, number: int, run: int, method: Any, arg: Any) -> RunCommandOut:
    handle = rt.client.get_workflow_handle(runbook_run_workflow_id(number, run))
    try:
        result: RunCommandResult = await commands.call(
            handle.execute_update(method, arg), rt.settings.command_timeout_seconds, "running the command"
        )
    except commands.IncidentGone:
        _, runs = await _db(rt, _load_runs(number, run))
        if not runs:
            raise HTTPException(status_code=404, detail=f"incident #{number} has no runbook run #{run}") from None
        raise HTTPException(
            status_code=409, detail=f"runbook run #{run} has already {runs[0].status}; it takes no more commands"
        ) from None
    return _out(result)


# --- routes ----------------------------------------------------------------------------------


@router.get("/api/runbooks", response_model=list[RunbookOut], dependencies=READ)
async def list_runbooks(catalogue: CatalogueDep) -> Any:
    return [RunbookOut.of(rb) for rb in catalogue]


@router.get("/api/runbooks/{runbook_id}", response_model=RunbookOut, dependencies=READ)
async def get_runbook(runbook_id: str, catalogue: CatalogueDep) -> Any:
    rb = catalogue.get(runbook_id)
    if rb is None:
        raise HTTPException(status_code=404, detail=f"no runbook '{runbook_id}'")
    return RunbookOut.of(rb)


@router.post("/api/incidents/{incident_id}/runbook-runs", status_code=201, response_model=RunCommandOut)
async def start_run(
    incident_id: IncidentId, body: RunRunbookIn, rt: RuntimeDep, catalogue: CatalogueDep, who: Responder
) -> Any:
    """Responders may run runbooks without destructive steps; destructive ones need an operator (403)."""
    caller = runbook_caller(who, body.actor)
    try:
        arg = prepare_run(
            catalogue,
            body.runbook,
            body.params,
            actor=caller.actor,
            can_run_destructive=caller.can_run_destructive,
            confirm_destructive=body.confirm_destructive,
            reason=body.reason,
        )
    except UnknownRunbook as err:
        raise HTTPException(status_code=404, detail=str(err)) from None
    except ParameterError as err:
        raise HTTPException(status_code=422, detail=f"params of runbook '{body.runbook}': {err}") from None
    except NotAllowed as err:
        detail = f"{err}; that needs the operator role ({who.user} is {who.role.article} {who.role.value})"
        raise HTTPException(status_code=403, detail=detail) from None
    handle = rt.client.get_workflow_handle(incident_workflow_id(incident_id))
    try:
        result: RunCommandResult = await commands.call(
            handle.execute_update(IncidentWorkflow.run_runbook, arg),
            rt.settings.command_timeout_seconds,
            "starting the runbook",
        )
    except commands.IncidentGone:
        known, _ = await _db(rt, _load_runs(incident_id))
        if not known:
            raise HTTPException(status_code=404, detail=f"incident #{incident_id} not found") from None
        raise HTTPException(
            status_code=409, detail=f"incident #{incident_id} is closed; it takes no more commands"
        ) from None
    return _out(result)


@router.get("/api/incidents/{incident_id}/runbook-runs", response_model=list[RunOut], dependencies=READ)
async def list_runs(incident_id: IncidentId, rt: RuntimeDep) -> Any:
    known, runs = await _db(rt, _load_runs(incident_id))
    if not known:
        raise HTTPException(status_code=404, detail=f"incident #{incident_id} not found")
    return runs


@router.get("/api/incidents/{incident_id}/runbook-runs/{run}", response_model=RunOut, dependencies=READ)
async def get_run(incident_id: IncidentId, run: RunId, rt: RuntimeDep) -> Any:
    _, runs = await _db(rt, _load_runs(incident_id, run))
    if not runs:
        raise HTTPException(status_code=404, detail=f"incident #{incident_id} has no runbook run #{run}")
    return runs[0]


@router.post("/api/incidents/{incident_id}/runbook-runs/{run}/abort", response_model=RunCommandOut)
async def abort_run(incident_id: IncidentId, run: RunId, body: AbortIn, rt: RuntimeDep, who: Responder) -> Any:
    """Any responder may stop a run: stopping is always safe."""
    caller = runbook_caller(who, body.actor)
    arg = AbortRunInput(actor=caller.actor, reason=body.reason)
    return await _run_command(rt, incident_id, run, RunbookRunWorkflow.abort, arg)


@router.post(
    "/api/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/confirm", response_model=RunCommandOut
)
async def confirm_step(
    incident_id: IncidentId, run: RunId, step: StepNumber, body: ConfirmIn, rt: RuntimeDep,
    who: Responder,
) -> Any:
    caller = runbook_caller(who, body.actor)
    arg = StepDecisionInput(step=step, actor=caller.actor, note=body.note)
    return await _run_command(rt, incident_id, run, RunbookRunWorkflow.confirm_step, arg)


@router.post(
    "/api/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/approve", response_model=RunCommandOut
)
async def approve_step(
    incident_id: IncidentId, run: RunId, step: StepNumber, body: ApproveIn, rt: RuntimeDep,
    who: Operator,
) -> Any:
    """An approval is a second operator's decision: it needs the operator role."""
    caller = runbook_caller(who, body.actor)
    arg = ApprovalInput(
        step=step,
        actor=caller.actor,
        approve=body.approve,
        note=body.note,
        can_run_destructive=caller.can_run_destructive,
    )
    return await _run_command(rt, incident_id, run, RunbookRunWorkflow.approve_step, arg)
