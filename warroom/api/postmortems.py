"""Postmortems, action items and metrics: the JSON API, the Prometheus endpoint and the
server-rendered pages (editor, postmortems due, dashboard).

- A postmortem draft is the API's own record (``postmortem_drafts``): it starts
  pre-filled from the incident's record, is saved as often as people like, and is
  submitted through the incident workflow's ``submit_postmortem`` update, which
  enforces the rule and closes the incident. The first person to save a draft
  becomes its author, and the workflow is told so it reminds them with the IC.
- Action items are tracked by their own workflow (``workflows.action_items``);
  the list reads its read model, ``complete`` is an update to it.
- Metrics are ``models.metrics`` over the read model. ``/metrics`` is the same in
  Prometheus text format and, like every read, needs a viewer identity: give
  Prometheus a viewer-limited API token (``warroom admin token create NAME --role viewer``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from warroom.api import commands
from warroom.api import oncall as oncall_routes
from warroom.api.auth import MAX_SIGNED_IN_FORM, Responder, Viewer, acting_as, page, read_form
from warroom.models import metrics as metric_rules
from warroom.models import postmortem as rules
from warroom.models.access import Caller, Role
from warroom.models import action_items as item_rules
from warroom.models.action_items import (
    ActionItemsInput,
    ActionItemsState,
    AddItemInput,
    CompleteItemInput,
    EditItemInput,
    end_of_day,
)
from warroom.models.durations import format_duration, format_wait
from warroom.models.ids import action_items_workflow_id
from warroom.models.incident import (
    ActionItem,
    IncidentState,
    IncidentStatus,
    PostmortemAuthorInput,
    PostmortemDocument,
    PostmortemInput,
    StatusUpdate,
    TimelineEntry,
)
from warroom.models.severity import Severity
from warroom.models.tables import (
    ActionItemRow,
    IncidentRow,
    PostmortemDraftRow,
    StatusUpdateRow,
    TimelineRow,
)
from warroom.workflows import ActionItemsWorkflow, IncidentWorkflow

log = logging.getLogger("warroom.api.postmortems")
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
MAX_ID = 2**31 - 1
IncidentId = Annotated[int, FastAPIPath(ge=1, le=MAX_ID, description="the incident number, e.g. 42")]
ItemIndex = Annotated[int, FastAPIPath(ge=1, le=1000, description="the action item's number within its incident")]
FORM_ITEM_ROWS = 10
"""Action-item rows the web editor offers (the JSON API takes up to 100)."""
SEVERITIES = [s.value for s in Severity]
router = APIRouter(tags=["postmortems"])
pages = APIRouter(tags=["pages"], include_in_schema=False)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(pages)


# --- plumbing ------------------------------------------------------------------------------------


def _rt(request: Request) -> Any:
    return request.app.state.runtime


async def _db(request: Request, fn: Callable[[Session], Any]) -> Any:
    rt = _rt(request)

    def work() -> Any:
        with Session(rt.engine) as session, session.begin():
            return fn(session)

    return await run_in_threadpool(work)


def _state(session: Session, row: IncidentRow) -> IncidentState:
    state = IncidentState.model_validate(row.state)
    state.timeline = [
        TimelineEntry(seq=t.seq, at=t.at, kind=t.kind, text=t.text, actor=t.actor)
        for t in session.scalars(select(TimelineRow).where(TimelineRow.incident_number == row.number)
                                 .order_by(TimelineRow.seq))
    ]
    state.status_updates = [
        StatusUpdate(seq=u.seq, at=u.at, kind=u.kind, author=u.author, message=u.message, phase=u.phase)
        for u in session.scalars(select(StatusUpdateRow).where(StatusUpdateRow.incident_number == row.number)
                                 .order_by(StatusUpdateRow.seq))
    ]
    return state


@dataclass
class Record:
    """One incident's postmortem as the API sees it: the incident, and the draft if any."""

    state: IncidentState
    row: IncidentRow
    draft: PostmortemDraftRow | None

    @property
    def submitted_at(self) -> datetime | None:
        return self.row.postmortem_submitted_at or (self.draft.submitted_at if self.draft else None)

    @property
    def status(self) -> str:
        if self.submitted_at is not None:
            return "submitted"
        return "draft" if self.draft is not None else "not started"

    def document(self) -> PostmortemDocument:
        if self.state.postmortem.document is not None:
            return self.state.postmortem.document
        if self.draft is not None:
            return PostmortemDocument.model_validate(self.draft.document)
        return rules.prefill(self.state)

    @property
    def author(self) -> str | None:
        return (self.draft.author if self.draft else None) or self.state.postmortem.author


def _load(session: Session, number: int) -> Record:
    row = session.get(IncidentRow, number)
    if row is None:
        raise HTTPException(status_code=404, detail=f"incident #{number} not found")
    state = _state(session, row)
    if state.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED):
        raise HTTPException(status_code=409, detail=f"incident #{number} is not resolved yet; the postmortem "
                            "comes after resolution")
    if not state.postmortem.required:
        raise HTTPException(status_code=409, detail=f"incident #{number} ({state.max_severity.value}) needs no "
                            "postmortem under the policy")
    session.expunge(row)
    draft = session.get(PostmortemDraftRow, number)
    if draft is not None:
        session.expunge(draft)
    return Record(state=state, row=row, draft=draft)


# --- bodies --------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ActionItemIn(_In):
    title: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=100, description="a person id of the policy")
    due: datetime = Field(description="with a time zone, e.g. 2026-04-15T17:00:00Z")
    priority: str = Field(default="medium", pattern="^(high|medium|low)$")


class DraftIn(_In):
    summary: str = Field(default="", max_length=rules.MAX_SECTION)
    timeline: str = Field(default="", max_length=rules.MAX_TIMELINE)
    root_cause: str = Field(default="", max_length=rules.MAX_SECTION)
    impact: str = Field(default="", max_length=rules.MAX_SECTION)
    what_went_well: str = Field(default="", max_length=rules.MAX_SECTION)
    what_could_improve: str = Field(default="", max_length=rules.MAX_SECTION)
    action_items: list[ActionItemIn] = Field(default_factory=list, max_length=rules.MAX_ITEMS)
    author: str | None = Field(default=None, min_length=1, max_length=100,
                               description="hand the postmortem to someone else (a person id of the policy); "
                               "left out: the first person to save is the author")
    revision: int | None = Field(default=None, ge=0, le=MAX_ID,
                                 description="the revision you loaded (0: no draft was saved yet); if someone "
                                 "saved since, 409 instead of overwriting their text")

    def document(self) -> PostmortemDocument:
        for item in self.action_items:
            if item.due.tzinfo is None:
                raise HTTPException(status_code=422, detail=f"action item '{item.title[:60]}': give the due date "
                                    "with a time zone (e.g. ...Z)")
        return PostmortemDocument(
            summary=self.summary, timeline=self.timeline, root_cause=self.root_cause, impact=self.impact,
            what_went_well=self.what_went_well, what_could_improve=self.what_could_improve,
            action_items=[ActionItem(title=i.title, owner=i.owner, due=i.due, priority=i.priority)
                          for i in self.action_items],
        )


class SubmitIn(_In):
    revision: int | None = Field(default=None, ge=1, le=MAX_ID)


def _out(rec: Record, now: datetime, people: dict[str, Any] | None) -> dict[str, Any]:
    doc = rec.document()
    deadline = rec.state.postmortem.deadline
    due = None
    if deadline is not None:
        state, delta = rules.due_state(deadline, rec.submitted_at, now)
        due = {"state": state, "seconds": int(delta.total_seconds()), "text": format_duration(delta)}
    return {
        "incident_id": rec.state.number,
        "title": rec.state.title,
        "severity": rec.state.max_severity.value,
        "status": rec.status,
        "saved": rec.draft is not None,
        "revision": rec.draft.revision if rec.draft else 0,
        "author": rec.author,
        "updated_at": rec.draft.updated_at if rec.draft else None,
        "updated_by": rec.draft.updated_by if rec.draft else None,
        "deadline": deadline,
        "due": due,
        "submitted_at": rec.submitted_at,
        "document": doc.model_dump(mode="json"),
        "problems": [] if rec.submitted_at else rules.submission_problems(doc, now, people),
        "hints": rules.blame_hints(doc, {pid: getattr(p, "name", "") or "" for pid, p in (people or {}).items()}),
        "prompts": {f: p for f, _h, p in rules.SECTIONS} | {"action_items": rules.ACTION_ITEMS_PROMPT},
    }


# --- drafts, submission, export -----------------------------------------------------------------


async def _people(request: Request) -> dict[str, Any]:
    return dict((await oncall_routes.current_policy(_rt(request))).people)


async def save_draft(request: Request, number: int, body: DraftIn, caller: Caller) -> Record:
    doc = body.document()
    people = await _people(request)
    if body.author is not None and body.author not in people:
        raise HTTPException(status_code=422, detail=f"author '{body.author}' is not a person in the policy, so "
                            "nobody could remind them")
    now = _rt(request).clock()
    changed_author: list[str] = []

    def save(session: Session) -> Record:
        rec = _load(session, number)
        if rec.submitted_at is not None:
            raise HTTPException(status_code=409, detail=f"the postmortem of #{number} was already submitted; "
                                "it can no longer be edited")
        draft = session.get(PostmortemDraftRow, number, with_for_update=True)
        if draft is None:
            if body.revision:
                raise HTTPException(status_code=409, detail=f"there is no saved draft of #{number} (revision "
                                    f"{body.revision} was given); reload it")
            author = body.author or rec.state.postmortem.author or caller.user
            draft = PostmortemDraftRow(incident_number=number, author=author, document={}, revision=0,
                                       created_at=now, updated_at=now, updated_by=caller.user)
            session.add(draft)
            changed_author.append(author)
        elif body.revision is not None and body.revision != draft.revision:
            raise HTTPException(status_code=409, detail=f"{draft.updated_by} saved the draft of #{number} at "
                                f"{draft.updated_at:%H:%M:%S} UTC since you loaded it (revision {draft.revision}, "
                                f"you have {body.revision}); reload it and apply your changes again")
        elif body.author is not None and body.author != draft.author:
            draft.author = body.author
            changed_author.append(body.author)
        draft.document = doc.model_dump(mode="json")
        draft.revision += 1
        draft.updated_at, draft.updated_by = now, caller.user
        session.flush()
        session.expunge(draft)
        return Record(state=rec.state, row=rec.row, draft=draft)

    try:
        rec = await _db(request, save)
    except IntegrityError:  # two first saves at the same instant: the other one's row won
        raise HTTPException(status_code=409, detail=f"someone saved the first draft of #{number} at the same "
                            "moment; reload it and apply your changes again") from None
    if changed_author and changed_author[0] in people:
        await _tell_author(request, number, changed_author[0], caller.user)
    return rec


async def _tell_author(request: Request, number: int, author: str, by: str) -> None:
    """Best effort: the draft is saved whatever the workflow says; without it only the IC is reminded."""
    rt = _rt(request)
    try:
        await commands.update(rt.client, number, IncidentWorkflow.set_postmortem_author,
                              PostmortemAuthorInput(person=author, by=by), rt.settings.command_timeout_seconds)
    except (HTTPException, commands.IncidentGone) as err:
        log.warning("could not tell incident #%s who writes its postmortem: %s", number,
                    getattr(err, "detail", type(err).__name__))


class NotReady(HTTPException):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(status_code=422, detail="the postmortem is not ready: " + "; ".join(problems))
        self.problems = problems


async def submit(request: Request, number: int, caller: Caller, revision: int | None = None) -> Record:
    rt = _rt(request)
    rec: Record = await _db(request, lambda s: _load(s, number))
    if rec.submitted_at is not None:
        raise HTTPException(status_code=409, detail=f"the postmortem of #{number} was already submitted")
    if rec.draft is None:
        raise HTTPException(status_code=409, detail=f"save a draft of #{number}'s postmortem first")
    if revision is not None and revision != rec.draft.revision:
        raise HTTPException(status_code=409, detail=f"{rec.draft.updated_by} changed the draft since you loaded it "
                            f"(revision {rec.draft.revision}, you have {revision}); reload it before submitting")
    doc = PostmortemDocument.model_validate(rec.draft.document)
    problems = rules.submission_problems(doc, rt.clock(), await _people(request))
    if problems:
        raise NotReady(problems)
    try:
        await commands.update(rt.client, number, IncidentWorkflow.submit_postmortem,
                              PostmortemInput(document=doc, by=caller.user), rt.settings.command_timeout_seconds)
    except commands.IncidentGone:
        raise HTTPException(status_code=409, detail=f"incident #{number} takes no more commands") from None
    now = rt.clock()

    def mark(session: Session) -> Record:
        draft = session.get(PostmortemDraftRow, number)
        assert draft is not None
        draft.submitted_at, draft.submitted_by = now, caller.user
        session.flush()
        session.expunge(draft)
        return Record(state=rec.state, row=rec.row, draft=draft)

    return await _db(request, mark)


@router.get("/api/incidents/{incident_id}/postmortem")
async def get_postmortem(incident_id: IncidentId, request: Request, _caller: Viewer) -> Any:
    """The postmortem of a resolved incident: the saved draft, or (``saved: false``) a new one
    pre-filled from the incident's record; with the template's prompts and what still keeps it
    from being submitted."""
    rec = await _db(request, lambda s: _load(s, incident_id))
    return _out(rec, _rt(request).clock(), await _people(request))


@router.put("/api/incidents/{incident_id}/postmortem/draft")
async def save_postmortem_draft(incident_id: IncidentId, body: DraftIn, request: Request, caller: Responder) -> Any:
    """Save the draft (every section and the action items, as a whole)."""
    rec = await save_draft(request, incident_id, body, caller)
    return _out(rec, _rt(request).clock(), await _people(request))


@router.post("/api/incidents/{incident_id}/postmortem/submit")
async def submit_postmortem_draft(incident_id: IncidentId, body: SubmitIn, request: Request, caller: Responder) -> Any:
    """Submit the saved draft: checked here (422 naming every problem), then by the incident's
    workflow, which closes the incident and starts tracking the action items."""
    rec = await submit(request, incident_id, caller, body.revision)
    return _out(rec, _rt(request).clock(), None)


@router.get("/api/incidents/{incident_id}/postmortem.md", response_class=PlainTextResponse)
async def markdown(incident_id: IncidentId, request: Request, _caller: Viewer) -> Response:
    rec: Record = await _db(request, lambda s: _load(s, incident_id))
    text = rules.to_markdown(rec.state.number, rec.state.title, rec.document(), status=rec.status, author=rec.author,
                             deadline=rec.state.postmortem.deadline, submitted_at=rec.submitted_at)
    return Response(text, media_type="text/markdown; charset=utf-8", headers={
        "Content-Disposition": f'inline; filename="postmortem-{incident_id}.md"'})


def _due_list(session: Session, now: datetime) -> list[dict[str, Any]]:
    query = (select(IncidentRow).where(IncidentRow.postmortem_deadline.is_not(None),
                                       IncidentRow.postmortem_submitted_at.is_(None))
             .order_by(IncidentRow.postmortem_deadline))
    out = []
    drafts = {d.incident_number: d for d in session.scalars(select(PostmortemDraftRow))}
    for row in session.scalars(query):
        draft = drafts.get(row.number)
        if draft is not None and draft.submitted_at is not None:
            continue
        assert row.postmortem_deadline is not None
        state, delta = rules.due_state(row.postmortem_deadline, None, now)
        out.append({
            "incident_id": row.number, "title": row.title, "severity": row.severity,
            "deadline": row.postmortem_deadline, "state": state, "seconds": int(delta.total_seconds()),
            "text": format_wait(delta), "author": draft.author if draft else None,
            "draft": "saved" if draft else "not started",
        })
    return out


@router.get("/api/postmortems/due")
async def postmortems_due(request: Request, _caller: Viewer) -> Any:
    """Every postmortem not yet submitted, soonest deadline first, with time left (or overdue)."""
    now = _rt(request).clock()
    return await _db(request, lambda s: _due_list(s, now))


# --- action items ---------------------------------------------------------------------------------


def _item_out(r: ActionItemRow, now: datetime) -> dict[str, Any]:
    state = "done" if r.done_at else ("overdue" if now > r.due else "open")
    delta = (r.due - now) if state == "open" else ((now - r.due) if state == "overdue" else timedelta(0))
    return {"incident_id": r.incident_number, "index": r.idx, "title": r.title, "owner": r.owner, "due": r.due,
            "priority": r.priority, "severity": r.severity, "state": state, "done_at": r.done_at,
            "done_by": r.done_by, "lead_told": r.overdue_notified,
            "text": format_wait(delta) if state != "done" else ""}


def _items(session: Session, now: datetime, status: str | None, owner: str | None,
           incident_id: int | None) -> list[dict[str, Any]]:
    query = select(ActionItemRow).order_by(ActionItemRow.due, ActionItemRow.incident_number, ActionItemRow.idx)
    if owner:
        query = query.where(ActionItemRow.owner == owner)
    if incident_id:
        query = query.where(ActionItemRow.incident_number == incident_id)
    out = [_item_out(r, now) for r in session.scalars(query)]
    if status == "open":
        return [i for i in out if i["state"] != "done"]
    return [i for i in out if i["state"] == status] if status else out


@router.get("/api/action-items")
async def action_items(
    request: Request, _caller: Viewer,
    status: Annotated[str | None, Query(pattern="^(open|overdue|done)$", description="open includes overdue")] = None,
    owner: Annotated[str | None, Query(max_length=100)] = None,
    incident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Any:
    now = _rt(request).clock()
    return await _db(request, lambda s: _items(s, now, status, owner, incident_id))


async def _known_item(request: Request, number: int, index: int) -> None:
    """404 for an item the incident never had, whether or not its tracker still runs (the
    tracker writes each item before it answers the command that made it)."""
    if not await _db(request, lambda s: s.get(ActionItemRow, (number, index)) is not None):
        raise HTTPException(status_code=404, detail=f"incident #{number} has no action item {index}")


async def complete_item(request: Request, number: int, index: int, caller: Caller) -> str:
    await _known_item(request, number, index)
    rt = _rt(request)
    handle = rt.client.get_workflow_handle(action_items_workflow_id(number))
    try:
        return str(await commands.call(handle.execute_update(
            ActionItemsWorkflow.complete, CompleteItemInput(index=index, by=caller.user)),
            rt.settings.command_timeout_seconds, "marking the action item done"))
    except commands.IncidentGone:
        await _gone_item(request, number, index)
        raise


class CompleteIn(_In):
    by: str | None = Field(default=None, min_length=1, max_length=100,
                           description="Who acts: always the caller; leave it out (if given, it must be you)")


@router.post("/api/incidents/{incident_id}/action-items/{index}/complete")
async def complete_action_item(incident_id: IncidentId, index: ItemIndex, body: CompleteIn, request: Request,
                   caller: Responder) -> Any:
    """Mark an action item done (once: a second time is a 409 naming who did it)."""
    acting_as(caller, body.by, "by")
    return {"incident_id": incident_id, "index": index, "message": await complete_item(request, incident_id, index,
                                                                                        caller)}


class AddItemIn(_In):
    title: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=100, description="a person id of the policy")
    due: datetime = Field(description="with a time zone, in the future, e.g. 2026-04-15T17:00:00Z")
    priority: str = Field(default="medium", pattern="^(high|medium|low)$")
    by: str | None = Field(default=None, min_length=1, max_length=100,
                           description="Who acts: always the caller; leave it out (if given, it must be you)")


class EditItemIn(_In):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    owner: str | None = Field(default=None, min_length=1, max_length=100,
                              description="hand the item to this person (a person id of the policy)")
    due: datetime | None = Field(default=None, description="a new due date, with a time zone, in the future")
    priority: str | None = Field(default=None, pattern="^(high|medium|low)$")
    by: str | None = Field(default=None, min_length=1, max_length=100,
                           description="Who acts: always the caller; leave it out (if given, it must be you)")


async def _check_item(request: Request, cmd: AddItemInput | EditItemInput) -> None:
    """What the API can refuse at once (422), before asking the tracker; fills in the owner's contact."""
    people = await _people(request)
    problems = item_rules.problems_of(cmd, _rt(request).clock())
    if cmd.owner is not None:
        if cmd.owner not in people:
            problems.append(f"owner '{cmd.owner}' is not a person in the policy, so nobody could be reminded")
        else:
            cmd.contact = people[cmd.owner]
    if problems:
        raise HTTPException(status_code=422, detail="; ".join(problems))


def _tracker_again(session: Session, number: int, policy: Any, now: datetime,
                   ) -> tuple[tuple[str, str, str] | None, ActionItemsState | None]:
    """The incident (status, title, worst severity) and what its tracker last held (to start it
    again from, if it has finished).
    An open item (a tracker stopped by hand) gets none of the reminders already past."""
    row = session.get(IncidentRow, number)
    items = list(session.scalars(select(ActionItemRow).where(ActionItemRow.incident_number == number)
                                 .order_by(ActionItemRow.idx)))
    if row is None:
        return None, None
    incident = (row.status, row.title, str(row.state.get("max_severity", row.severity)))
    if not items:
        return incident, None
    tracked = [item_rules.TrackedItem(index=r.idx, title=r.title, owner=r.owner, due=r.due, priority=r.priority,
                                      done_at=r.done_at, done_by=r.done_by, overdue_notified=r.overdue_notified)
               for r in items]
    for it in tracked:
        it.reminders_sent = item_rules.reminders_passed(it, policy, now)
    return incident, ActionItemsState(number=number, title=row.title, severity=items[0].severity, items=tracked,
                                 version=max(r.version for r in items))


@router.post("/api/incidents/{incident_id}/action-items", status_code=201)
async def add_action_item(incident_id: IncidentId, body: AddItemIn, request: Request, caller: Responder,
                          idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Any:
    """Track one more action item of a closed incident (found after its postmortem). Its owner
    is told it is theirs and gets the same reminders; the lead is told when it is overdue.
    Until the postmortem is accepted, action items belong in its draft."""
    by = acting_as(caller, body.by, "by")
    cmd = AddItemInput(title=body.title, owner=body.owner, due=body.due, priority=body.priority, by=by)
    return {"incident_id": incident_id, "message": await add_item(request, incident_id, cmd, idempotency_key)}


async def add_item(request: Request, incident_id: int, cmd: AddItemInput, idempotency_key: str | None) -> str:
    """Add ``cmd`` to a closed incident's tracker, starting the tracker again if it had finished."""
    await _check_item(request, cmd)
    rt = _rt(request)
    policy = await oncall_routes.current_policy(rt)
    now = rt.clock()
    incident, carried = await _db(request, lambda s: _tracker_again(s, incident_id, policy, now))
    if incident is None:
        raise HTTPException(status_code=404, detail=f"incident #{incident_id} not found")
    status, title, severity = incident
    if status != IncidentStatus.CLOSED.value:
        where = ("add it to the postmortem draft" if status == IncidentStatus.RESOLVED.value
                 else "action items come with its postmortem")
        raise HTTPException(status_code=409, detail=f"incident #{incident_id} is {status}: {where}")
    start = WithStartWorkflowOperation(
        ActionItemsWorkflow.run,
        ActionItemsInput(number=incident_id, title=title, severity=severity, policy=policy, carried=carried),
        id=action_items_workflow_id(incident_id), task_queue=rt.settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return str(await commands.call(rt.client.execute_update_with_start_workflow(
        ActionItemsWorkflow.add, cmd, start_workflow_operation=start,
        id=commands.command_update_id(cmd.by, idempotency_key, cmd)),
        rt.settings.command_timeout_seconds, "adding the action item"))


@router.patch("/api/incidents/{incident_id}/action-items/{index}")
async def edit_action_item(incident_id: IncidentId, index: ItemIndex, body: EditItemIn, request: Request,
                           caller: Responder) -> Any:
    """Change an open action item: reword it, hand it to someone else (who is told), move its
    due date (its reminders start afresh) or change its priority. Fields left out stay."""
    by = acting_as(caller, body.by, "by")
    cmd = EditItemInput(index=index, by=by, title=body.title, owner=body.owner, due=body.due, priority=body.priority)
    if (cmd.title, cmd.owner, cmd.due, cmd.priority) == (None, None, None, None):
        raise HTTPException(status_code=422, detail="nothing to change: give title, owner, due or priority")
    return {"incident_id": incident_id, "index": index, "message": await edit_item(request, incident_id, cmd)}


async def edit_item(request: Request, number: int, cmd: EditItemInput) -> str:
    await _known_item(request, number, cmd.index)
    await _check_item(request, cmd)
    rt = _rt(request)
    handle = rt.client.get_workflow_handle(action_items_workflow_id(number))
    try:
        return str(await commands.call(handle.execute_update(ActionItemsWorkflow.edit, cmd),
                                       rt.settings.command_timeout_seconds, "changing the action item"))
    except commands.IncidentGone:
        await _gone_item(request, number, cmd.index)
        raise


async def _gone_item(request: Request, number: int, index: int) -> None:
    """The tracker has finished (every item done) or never ran: 404 or 409, with the reason."""
    def done_by(session: Session) -> tuple[bool, str | None]:
        row = session.get(ActionItemRow, (number, index))
        return (row is not None, row.done_by if row is not None else None)

    exists, by = await _db(request, done_by)
    if not exists:
        raise HTTPException(status_code=404, detail=f"incident #{number} has no action item {index}") from None
    raise HTTPException(status_code=409, detail=f"action item {index} of #{number} was already done by {by}") from None


# --- metrics -------------------------------------------------------------------------------------


def _facts(session: Session, since: datetime) -> tuple[list[metric_rules.IncidentFacts],
                                                          list[metric_rules.ActionItemFacts]]:
    margin = since - timedelta(days=1)
    incidents = [
        metric_rules.IncidentFacts(
            number=r.number, severity=str(r.state.get("max_severity", r.severity)), declared_at=r.declared_at,
            detected_at=r.detected_at,
            impact_started_at=r.impact_started_at, acknowledged_at=r.acknowledged_at, resolved_at=r.resolved_at,
            postmortem_deadline=r.postmortem_deadline, postmortem_submitted_at=r.postmortem_submitted_at)
        for r in session.scalars(select(IncidentRow).where(IncidentRow.declared_at >= margin))
    ]
    items = [metric_rules.ActionItemFacts(r.incident_number, r.severity, r.due, r.done_at)
             for r in session.scalars(select(ActionItemRow).where(ActionItemRow.due >= margin))]
    return incidents, items


MAX_RANGE = timedelta(days=800)


def _range(now: datetime, period: str, since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or now
    since = since or (until - (timedelta(weeks=11) if period == "week" else timedelta(days=365)))
    for name, t in (("since", since), ("until", until)):
        if t.tzinfo is None:
            raise HTTPException(status_code=422, detail=f"{name}: give a time zone (e.g. 2026-03-01T00:00:00Z)")
    if until > now + timedelta(days=366):
        raise HTTPException(status_code=422, detail="until is more than a year from now; nothing is measured there")
    if since.year < 1971:
        raise HTTPException(status_code=422, detail="since is before 1971")
    if since > until:
        raise HTTPException(status_code=422, detail="since is after until")
    if until - since > MAX_RANGE:
        raise HTTPException(status_code=422, detail="ask for at most 800 days at a time")
    return metric_rules.period_start(since, period), until


async def metric_rows(request: Request, period: str, since: datetime | None,
                      until: datetime | None) -> tuple[list[metric_rules.Row], datetime, datetime]:
    now = _rt(request).clock()
    since, until = _range(now, period, since, until)
    incidents, items = await _db(request, lambda s: _facts(s, since))
    return metric_rules.by_period(incidents, items, period, since, until, now, SEVERITIES), since, until


@router.get("/api/metrics")
async def metrics_json(
    request: Request, _caller: Viewer,
    period: Annotated[str, Query(pattern="^(week|month)$")] = "week",
    since: datetime | None = None, until: datetime | None = None,
) -> Any:
    """MTTD, MTTA, MTTR, incident count, postmortems and action items on time, per period and
    severity (``all`` too). Durations in seconds; ``null`` where nothing counted."""
    rows, since, until = await metric_rows(request, period, since, until)
    return {"period": period, "since": since, "until": until, "definitions": metric_rules.DEFINITIONS,
            "rows": [r.as_dict() for r in rows]}


PROM_WINDOWS = {"7d": timedelta(days=7), "30d": timedelta(days=30)}
PROM_HELP = {
    "warroom_mttd_seconds": "Mean time from impact start to detection, incidents detected in the window.",
    "warroom_mtta_seconds": "Mean time from detection to first acknowledgement (never-acknowledged incidents "
                            "left out; see warroom_incidents_unacknowledged).",
    "warroom_mttr_seconds": "Mean time from detection to resolution (open incidents left out).",
    "warroom_incidents": "Incidents detected in the window.",
    "warroom_incidents_unacknowledged": "Incidents detected in the window and never acknowledged.",
    "warroom_incidents_unresolved": "Incidents detected in the window and not resolved.",
    "warroom_postmortems_on_time_ratio": "Postmortems submitted by their deadline, of those submitted or past due.",
    "warroom_action_items_on_time_ratio": "Action items done by their due date, of those done or past due "
                                          "(items due in the window).",
    "warroom_postmortems_pending": "Postmortems not yet submitted (label state: due or overdue), right now.",
    "warroom_action_items_open": "Action items not done (label state: open or overdue), right now.",
}


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def prometheus_text(incidents: list[metric_rules.IncidentFacts], items: list[metric_rules.ActionItemFacts],
                    now: datetime) -> str:
    samples: dict[str, list[str]] = {name: [] for name in PROM_HELP}
    for window, length in PROM_WINDOWS.items():
        start = now - length
        for sev in ["all", *SEVERITIES]:
            inc = [i for i in incidents if start <= i.detected <= now and sev in ("all", i.severity)]
            its = [a for a in items if start <= a.due <= now and sev in ("all", a.severity)]
            s = metric_rules.stats(inc, its, now)
            lab = _labels(severity=sev, window=window)
            for name, value in (("warroom_mttd_seconds", s.mttd), ("warroom_mtta_seconds", s.mtta),
                                ("warroom_mttr_seconds", s.mttr), ("warroom_incidents", s.incidents),
                                ("warroom_incidents_unacknowledged", s.unacknowledged),
                                ("warroom_incidents_unresolved", s.open),
                                ("warroom_postmortems_on_time_ratio", s.postmortems.rate),
                                ("warroom_action_items_on_time_ratio", s.action_items.rate)):
                if value is not None:
                    samples[name].append(f"{name}{lab} {float(value):g}")
    pm = {"due": 0, "overdue": 0}
    for i in incidents:
        if i.postmortem_deadline is not None and i.postmortem_submitted_at is None:
            pm["overdue" if now > i.postmortem_deadline else "due"] += 1
    for state, count in pm.items():
        samples["warroom_postmortems_pending"].append(f"warroom_postmortems_pending{_labels(state=state)} {count}")
    open_items = {"open": 0, "overdue": 0}
    for a in items:
        if a.done_at is None:
            open_items["overdue" if now > a.due else "open"] += 1
    for state, count in open_items.items():
        samples["warroom_action_items_open"].append(f"warroom_action_items_open{_labels(state=state)} {count}")
    lines = []
    for name, help_text in PROM_HELP.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return "\n".join(lines) + "\n"


@router.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
async def prometheus(request: Request, _caller: Viewer) -> Response:
    """Prometheus text exposition (needs a viewer identity: scrape with a viewer-limited API token)."""
    now = _rt(request).clock()
    # Every open postmortem and action item counts in the 'right now' gauges, however old.
    incidents, items = await _db(request, lambda s: _facts(s, datetime(1970, 1, 2, tzinfo=now.tzinfo)))
    return Response(prometheus_text(incidents, items, now), media_type="text/plain; version=0.0.4; charset=utf-8")


# --- pages ---------------------------------------------------------------------------------------


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status)


def _form_rows(doc: PostmortemDocument) -> list[dict[str, str]]:
    rows = [{"title": i.title, "owner": i.owner, "due": i.due.strftime("%Y-%m-%d"), "priority": i.priority}
            for i in doc.action_items]
    rows += [{"title": "", "owner": "", "due": "", "priority": "medium"}] * max(0, min(2, FORM_ITEM_ROWS - len(rows)))
    return rows[:FORM_ITEM_ROWS]


async def _editor(request: Request, caller: Caller, number: int, status: int = 200, message: str | None = None,
                  errors: list[str] | None = None, form_doc: PostmortemDocument | None = None,
                  form_rows: list[dict[str, str]] | None = None,
                  added: dict[str, str] | None = None) -> HTMLResponse:
    rec: Record = await _db(request, lambda s: _load(s, number))
    now = _rt(request).clock()
    people = await _people(request)
    data = _out(rec, now, people)
    doc = form_doc or rec.document()
    return _render(
        request, "postmortem_editor.html", status, caller=caller, pm=data, doc=doc, rec=rec,
        sections=[(f, h, p, getattr(doc, f)) for f, h, p in rules.SECTIONS],
        rows=form_rows if form_rows is not None else _form_rows(doc), items_prompt=rules.ACTION_ITEMS_PROMPT,
        message=message, errors=errors or [], can_edit=caller.role.at_least(Role.RESPONDER) and rec.submitted_at is None,
        can_add=caller.role.at_least(Role.RESPONDER) and rec.row.status == IncidentStatus.CLOSED.value,
        people=sorted(people), priorities=rules.PRIORITIES, added=added or {},
        form_key=uuid.uuid4().hex,
    )


@pages.get("/incidents/{incident_id}/postmortem", response_class=HTMLResponse)
async def editor_page(incident_id: IncidentId, request: Request,
                      caller: Annotated[Caller, Depends(page(Role.VIEWER))]) -> HTMLResponse:
    try:
        return await _editor(request, caller, incident_id)
    except HTTPException as err:
        if err.status_code >= 500:
            raise
        return _render(request, "postmortem_problem.html", err.status_code, caller=caller, reason=str(err.detail))


def _parse_editor_form(body: bytes) -> tuple[dict[str, Any], list[dict[str, str]], list[str]]:
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=60)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(status_code=400, detail="not a form") from None
    one = {k: v[0] for k, v in form.items()}
    columns = [form.get(f"item_{c}", []) for c in ("title", "owner", "due", "priority")]
    rows, errors, items = [], [], []
    if len({len(c) for c in columns}) > 1:  # never from the editor itself: every row sends all four
        errors.append("the action item rows arrived incomplete (each needs a description, owner, due date and "
                      "priority field); reload the editor")
    for n, (title, owner, due, priority) in enumerate(zip(*columns, strict=False), start=1):
        row = {"title": title.strip(), "owner": owner.strip(), "due": due.strip(), "priority": priority.strip()}
        rows.append(row)
        if not (row["title"] or row["owner"] or row["due"]):
            continue  # an empty row
        if not (row["title"] and row["owner"] and row["due"]):
            errors.append(f"action item row {n} needs a description, an owner and a due date")
            continue
        try:
            due_at = end_of_day(row["due"])
        except ValueError:
            errors.append(f"action item row {n}: '{row['due'][:20]}' is not a date (YYYY-MM-DD)")
            continue
        items.append({"title": row["title"], "owner": row["owner"], "due": due_at, "priority": row["priority"]})
    fields = {f: one.get(f, "") for f, _h, _p in rules.SECTIONS}
    fields["action_items"] = items
    if one.get("revision", "").isdigit():
        fields["revision"] = int(one["revision"])
    fields["intent"] = one.get("intent", "save")
    return fields, rows, errors


@pages.post("/incidents/{incident_id}/postmortem", response_class=HTMLResponse)
async def postmortem_form(incident_id: IncidentId, request: Request,
                      caller: Annotated[Caller, Depends(page(Role.RESPONDER))]) -> Response:
    body = await request.body()
    if len(body) > MAX_SIGNED_IN_FORM:
        raise HTTPException(status_code=413, detail="form too large")
    fields, rows, errors = _parse_editor_form(body)
    intent = fields.pop("intent")
    form_doc = PostmortemDocument(**{f: fields[f] for f, _h, _p in rules.SECTIONS})
    if errors:
        return await _editor(request, caller, incident_id, 422, errors=errors, form_doc=form_doc, form_rows=rows)
    try:
        draft = DraftIn.model_validate(fields)
    except ValidationError as err:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        return await _editor(request, caller, incident_id, 422, errors=problems, form_doc=form_doc, form_rows=rows)
    try:
        rec = await save_draft(request, incident_id, draft, caller)
        if intent == "submit":
            await submit(request, incident_id, caller, rec.draft.revision if rec.draft else None)
            return RedirectResponse(f"/incidents/{incident_id}/postmortem?submitted=1", status_code=303)
    except NotReady as err:
        return await _editor(request, caller, incident_id, 422, message="Draft saved, but not submitted yet.",
                             errors=err.problems)
    except HTTPException as err:
        if err.status_code >= 500:
            raise
        return await _editor(request, caller, incident_id, err.status_code, errors=[str(err.detail)],
                             form_doc=form_doc, form_rows=rows)
    return RedirectResponse(f"/incidents/{incident_id}/postmortem?saved=1", status_code=303)


@pages.get("/postmortems", response_class=HTMLResponse)
async def due_page(request: Request, caller: Annotated[Caller, Depends(page(Role.VIEWER))],
                   changed: Annotated[str | None, Query(max_length=20)] = None,
                   added: Annotated[str | None, Query(max_length=20)] = None) -> HTMLResponse:
    """The one-time notice after a form (``changed=N-I``, ``added=N``) is shown only for what
    exists: a hand-edited address gets the plain list, never an error page."""
    notice = None
    found = re.fullmatch(r"(\d{1,9})-(\d{1,4})", changed or "")
    if found:
        number, index = int(found[1]), int(found[2])
        if await _db(request, lambda s: s.get(ActionItemRow, (number, index)) is not None):
            notice = f"Action item {index} of #{number} changed."
    if added and re.fullmatch(r"\d{1,9}", added):
        notice = f"Action item added to #{int(added)}; its owner has been told."
    return await _due_page(request, caller, changed=notice)


async def _due_page(request: Request, caller: Caller, status: int = 200, error: str | None = None,
                    changed: str | None = None) -> HTMLResponse:
    now = _rt(request).clock()
    due = await _db(request, lambda s: _due_list(s, now))
    items = await _db(request, lambda s: _items(s, now, "open", None, None))
    return _render(request, "postmortems_due.html", status, caller=caller, due=due, items=items, now=now,
                   can_act=caller.role.at_least(Role.RESPONDER), people=sorted(await _people(request)),
                   error=error, changed=changed)


@pages.post("/incidents/{incident_id}/action-items/{index}/complete", response_class=HTMLResponse)
async def complete_action_item_form(incident_id: IncidentId, index: ItemIndex, request: Request,
                        caller: Annotated[Caller, Depends(page(Role.RESPONDER))]) -> Response:
    try:
        await complete_item(request, incident_id, index, caller)
    except HTTPException as err:  # a second click, or someone else was quicker: the list says so
        if err.status_code >= 500:
            raise
        return await _due_page(request, caller, err.status_code, str(err.detail))
    return RedirectResponse("/postmortems", status_code=303)


@pages.post("/incidents/{incident_id}/action-items/{index}/edit", response_class=HTMLResponse)
async def edit_action_item_form(incident_id: IncidentId, index: ItemIndex, request: Request,
                                caller: Annotated[Caller, Depends(page(Role.RESPONDER))]) -> Response:
    """The due list's "Change" form: new wording, owner, due date or priority (blank: unchanged)."""
    form = {k: v.strip() for k, v in (await read_form(request, MAX_SIGNED_IN_FORM)).items()}
    due: datetime | None = None
    if form.get("due"):
        try:
            due = end_of_day(form["due"])
        except ValueError:
            return await _due_page(request, caller, 422, f"'{form['due'][:20]}' is not a date (YYYY-MM-DD)")
    if len(form.get("title", "")) > 500:
        return await _due_page(request, caller, 422, "the wording is longer than 500 characters")
    try:
        cmd = EditItemInput(index=index, by=caller.user, title=form.get("title") or None,
                            owner=form.get("owner") or None, due=due, priority=form.get("priority") or None)
        if (cmd.title, cmd.owner, cmd.due, cmd.priority) == (None, None, None, None):
            return await _due_page(request, caller, 422,
                                   "nothing to change: reword it, or choose an owner, a date or a priority")
        await edit_item(request, incident_id, cmd)
    except ValidationError as err:
        return await _due_page(request, caller, 422, "; ".join(e["msg"] for e in err.errors()))
    except HTTPException as err:
        if err.status_code >= 500:
            raise
        return await _due_page(request, caller, err.status_code, str(err.detail))
    return RedirectResponse(f"/postmortems?changed={incident_id}-{index}", status_code=303)


@pages.post("/incidents/{incident_id}/action-items", response_class=HTMLResponse)
async def add_action_item_form(incident_id: IncidentId, request: Request,
                               caller: Annotated[Caller, Depends(page(Role.RESPONDER))]) -> Response:
    """The submitted postmortem's "Add an action item" form, for what was found after it."""
    form = {k: v.strip() for k, v in (await read_form(request, MAX_SIGNED_IN_FORM)).items()}
    kept = {k: form.get(k, "") for k in ("title", "owner", "due", "priority")}

    async def again(status: int, problem: str) -> HTMLResponse:
        try:
            return await _editor(request, caller, incident_id, status, errors=[problem], added=kept)
        except HTTPException as err:  # no postmortem page to show (an open incident, or none at all)
            if err.status_code >= 500:
                raise
            return _render(request, "postmortem_problem.html", status, caller=caller, reason=problem)

    missing = [name for name, key in (("a description", "title"), ("an owner", "owner"), ("a due date", "due"))
               if not kept[key]]
    if missing:
        return await again(422, "the new action item needs " + ", ".join(missing))
    if len(kept["title"]) > 500:
        return await again(422, "the description is longer than 500 characters")
    try:
        due = end_of_day(kept["due"])
    except ValueError:
        return await again(422, f"'{kept['due'][:20]}' is not a date (YYYY-MM-DD)")
    try:
        cmd = AddItemInput(title=kept["title"], owner=kept["owner"], due=due, priority=kept["priority"] or "medium",
                           by=caller.user)
        await add_item(request, incident_id, cmd, form.get("idempotency_key") or None)
    except ValidationError as err:
        return await again(422, "; ".join(e["msg"] for e in err.errors()))
    except HTTPException as err:
        if err.status_code >= 500:
            raise
        return await again(err.status_code, str(err.detail))
    return RedirectResponse(f"/postmortems?added={incident_id}", status_code=303)


# --- dashboard -----------------------------------------------------------------------------------


def _bars(values: list[tuple[str, float | None]], unit: str, height: int = 140) -> dict[str, Any]:
    """An SVG bar chart's geometry (drawn by the template): bars scaled to the largest value."""
    width, gap = 36, 10
    top = max((v for _l, v in values if v is not None), default=0) or 1
    bars = []
    for i, (label, value) in enumerate(values):
        h = 0 if value is None else max(2, round(value / top * (height - 30)))
        bars.append({"x": 40 + i * (width + gap), "y": height - 20 - h, "w": width, "h": h, "label": label,
                     "value": value, "text": "–" if value is None else _fmt(value, unit)})
    return {"bars": bars, "width": 50 + len(values) * (width + gap), "height": height, "unit": unit,
            "top": _fmt(top, unit) if values else ""}


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return format_duration(timedelta(seconds=value))
    if unit == "%":
        return f"{value * 100:.0f}%"
    return f"{value:g}"


@pages.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, caller: Annotated[Caller, Depends(page(Role.VIEWER))],
                    period: Annotated[str, Query(pattern="^(week|month)$")] = "week") -> HTMLResponse:
    rows, since, until = await metric_rows(request, period, None, None)
    overall = [r for r in rows if r.severity == "all"]
    charts = [
        ("mttd", "MTTD", _bars([(r.period, r.stats.mttd) for r in overall], "s")),
        ("mtta", "MTTA", _bars([(r.period, r.stats.mtta) for r in overall], "s")),
        ("mttr", "MTTR", _bars([(r.period, r.stats.mttr) for r in overall], "s")),
        ("incidents", "Incidents", _bars([(r.period, float(r.stats.incidents)) for r in overall], "")),
        ("postmortems_on_time", "Postmortems on time",
         _bars([(r.period, r.stats.postmortems.rate) for r in overall], "%")),
        ("action_items_on_time", "Action items on time",
         _bars([(r.period, r.stats.action_items.rate) for r in overall], "%")),
    ]
    incidents, items = await _db(request, lambda s: _facts(s, since))
    now = _rt(request).clock()
    in_range = [i for i in incidents if since <= i.detected <= until]
    items_in_range = [a for a in items if since <= a.due <= until]
    by_severity = [(sev, metric_rules.stats([i for i in in_range if sev in ("all", i.severity)],
                                            [a for a in items_in_range if sev in ("all", a.severity)], now))
                   for sev in ["all", *SEVERITIES]]
    return _render(request, "dashboard.html", caller=caller, period=period, since=since, until=until,
                   charts=charts, definitions=metric_rules.DEFINITIONS, by_severity=by_severity, fmt=_fmt)
