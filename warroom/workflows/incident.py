"""One durable workflow per incident: it enforces the response process.

The workflow keeps absolute deadlines in its state and, after every wake-up
(a timer or a command), processes whatever fell due and sleeps until the next
deadline. Commands are updates whose validators refuse what the lifecycle does
not allow; side effects (pages, read-model writes) run as activities in
background tasks so that a slow provider never delays a deadline.

Deterministic by construction: time comes from ``workflow.now()``, and
nothing here imports SQLAlchemy, settings or a provider SDK.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from warroom.models import components as component_rules
    from warroom.models import lifecycle, messages, paging, routing
    from warroom.models import postmortem as postmortem_rules
    from warroom.models.action_items import ActionItemsInput
    from warroom.models.components import ComponentState, ComponentStateInput
    from warroom.models.ids import (
        PAGE_WANTED_QUERY,
        PERSIST_INCIDENT_ACTIVITY,
        RESOLVE_TARGETS_ACTIVITY,
        RUNBOOK_EVENT_SIGNAL,
        SEND_NOTIFICATION_ACTIVITY,
        FANOUT_WORKFLOW_NAME,
        INVALID_COMMAND,
        START_FANOUT_ACTIVITY,
        action_items_workflow_id,
        fanout_workflow_id,
        incident_event_key,
        runbook_run_workflow_id,
    )
    from warroom.models.incident import (
        AckInput,
        AlertBatch,
        AlertBatchResult,
        AlertEvent,
        AlertRecord,
        CommandResult,
        Deadline,
        DeliveryAttempt,
        DeliveryStatusInput,
        EscalateInput,
        IncidentInput,
        IncidentState,
        IncidentStatus,
        IncidentView,
        NotificationKind,
        NotificationRequest,
        NotificationResult,
        NoteInput,
        PageRecord,
        PageRun,
        PersistInput,
        PostmortemAuthorInput,
        PostmortemInput,
        PublicPhase,
        RelayTarget,
        ResolveInput,
        Role,
        RoleInput,
        SeverityInput,
        StatusKind,
        StatusPlan,
        StatusUpdate,
        StatusUpdateInput,
        TimelineEntry,
    )
    from warroom.models.policy import ContactMethod, Person, Policy
    from warroom.models.routing import Resolution, ResolveTargetsInput, ResolveTargetsResult, RouteChoice
    from warroom.models.runbook import (
        ParameterError,
        RunbookEvent,
        RunbookRunInput,
        RunbookRunRef,
        RunbookRunStart,
        RunCommandResult,
        RunStatus,
        check_params,
    )
    from warroom.models.severity import most_severe
    from warroom.workflows.runbook import RunbookRunWorkflow
    from warroom.workflows.action_items import ActionItemsWorkflow
    from warroom.models.subscribers import FanoutInput, PublicEvent, PublicEventKind
    from warroom.workflows.relay import CHAT_PATCH, Relay


MAX_TEXT = 5000
MAX_REMEMBERED_COMMANDS = 200
MAX_ALERT_RECORDS = 200
"""Distinct alerts an incident lists one by one. Past that, a storm is counted in one record
(every delivery stays in the raw alert-deliveries table): the incident's state rides in
every persist and continue-as-new payload, and must stay far below Temporal's 2 MB limit
(3,144 listed alerts made 1.6 MB and one more storm failed the workflow task for good)."""
MAX_ALERT_LINES = 100
"""Alert lines in the timeline; past that, one line says the rest are counted, not written."""
MAX_SEEN_KEYS = 20
"""Distinct firings remembered per alert, to count a redelivery once."""
OVERFLOW_ALERTS = "(further alerts)"
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
    non_retryable_error_types=["PermanentDeliveryError"],
)
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=4),
    maximum_attempts=3,
    non_retryable_error_types=["PermanentDeliveryError"],
)
"""Bounded so that a provider that keeps failing costs a few seconds, then the next method."""
PAGE_SEND_TIMEOUT = timedelta(seconds=30)
"""Per attempt, on top of any wait the per-contact cap imposes."""
PAGE_HEARTBEAT = timedelta(seconds=10)
PAGING_PATCH = "paging-over-channels"
"""Pages go through per-person contact methods with fallback (histories before it page one channel)."""
PERSIST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
FANOUT_PATCH = "statuspage-subscriber-fanout"
FANOUT_BY_ACTIVITY_PATCH = "statuspage-fanout-by-activity"
PAGE_CANCEL_WAITS_PATCH = "page-cancel-waits-for-outcome"
ONCALL_PATCH = "oncall-routing"
"""Routing at declaration; each level's targets resolved at page time against the current
configuration (an activity); paging rules by time of day; follow-ups only to people still
part of what paged them. Histories before it page the flat levels of the incident's copy."""
POSTMORTEM_AUTHOR_PATCH = "postmortem-author"
"""A postmortem may name its author, who then gets the reminders along with the IC."""
ACTION_ITEMS_PATCH = "postmortem-action-item-tracker"
"""An accepted postmortem starts the tracker of its action items (workflows.action_items)."""
DETECTION_RULES_PATCH = "detection-alert-rule-escalation"
"""An alert rule may name the incident's escalation policy (histories before it route by the policy only)."""
PAGE_RETRY_PATCH = "page-retry-while-unacked"
"""A person every one of whose methods failed is paged again every ``page_retry_every``
while the incident is unacknowledged (histories before it gave up on them)."""
QUIET_NOTICES_PATCH = "notices-follow-severity-methods"
"""Reminders and notices use the methods a page of the incident's severity would use now
(a SEV-4 or a severity not paging at this hour: email only, never a phone). Histories
before it sent them by each person's first method that is not a call."""
RESOLVE_TIMEOUT = timedelta(seconds=10)
RESOLVE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=2),
                            maximum_attempts=3)
"""Bounded: when the configuration cannot be read, page from the incident's own copy rather than wait."""


def _reject(message: str, *, invalid: bool = False) -> None:
    """Refuse a command; ``invalid``: because of what its input says, whatever the incident's state."""
    details = (INVALID_COMMAND,) if invalid else ()
    raise ApplicationError(message, *details, type="CommandRejected", non_retryable=True)


@workflow.defn
class IncidentWorkflow:
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self._policy: Policy = inp.policy
        self._oncall = workflow.patched(ONCALL_PATCH)
        self._plan = lifecycle.escalation_plan(inp.policy)
        self._dirty = False
        self._tasks: list[asyncio.Task[None]] = []
        self._persisted_version = -1
        self._persisted_timeline = 0
        self._persisted_status = 0
        self._release_group_sent = False
        self._run_watchers: list[asyncio.Task[None]] = []
        self._page_tasks: dict[str, asyncio.Task[None]] = {}
        self._withdraw_reason = "no longer needed"
        self._writing = False
        """A read-model write is in flight."""
        self._continuing = False
        self._fanouts: list[asyncio.Task[None]] = []
        """Continue-as-new is due: start no new read-model write."""
        self._relay = Relay(lambda: self._s, lambda: self._policy, self.deadlines, self._person, self._log,
                            lambda: self._continuing)
        if inp.carried is not None:
            # The previous run did not wait for its last read-model write (see
            # run()), so write everything again: every write is idempotent.
            self._s = inp.carried
            if self._oncall and self._s.route is not None:
                self._plan = lifecycle.escalation_plan(inp.policy, self._s.route.escalation)
            return
        now = workflow.now()
        self._s = IncidentState(
            number=inp.number,
            title=inp.title,
            summary=inp.summary,
            severity=inp.severity,
            max_severity=inp.severity,
            components=list(inp.components),
            source=inp.source,
            group_key=inp.group_key,
            declared_by=inp.declared_by,
            declared_at=now,
            detected_at=inp.detected_at or now,
            impact_started_at=inp.impact_started_at,
            status_plan=StatusPlan(first_deadline=lifecycle.first_status_deadline(now, inp.policy)),
        )
        impact_from = min(now, inp.impact_started_at) if inp.impact_started_at else now
        self._s.component_impacts = component_rules.impacts_at_declaration(inp.components, inp.severity, impact_from)
        if lifecycle.needs_commander(inp.policy, inp.severity, {}):
            self._s.ic_reminder_at = now + inp.policy.commander_within
        self._log(
            "declared",
            f"Declared {inp.severity.value} by {inp.declared_by} via {inp.source}: {inp.title}",
            actor=inp.declared_by,
        )
        if inp.relay and workflow.patched(CHAT_PATCH):
            self._s.relay.targets = {target: RelayTarget() for target in dict.fromkeys(inp.relay)}
        if self._oncall:
            self._route(inp)
        if not lifecycle.pages_for(inp.policy, inp.severity):
            self._log("paging", f"{inp.severity.value} does not page anyone under this policy")
        self._merge_alerts(inp.alerts)

    def _route(self, inp: IncidentInput) -> None:
        choice = routing.route(
            inp.policy, inp.severity, inp.components, inp.source, [a.labels for a in inp.alerts]
        )
        if inp.escalation and inp.policy.escalation_for(inp.escalation) and workflow.patched(DETECTION_RULES_PATCH):
            # An alert rule of the detection configuration named the escalation policy.
            choice = RouteChoice(escalation=inp.escalation, team=choice.team,
                                 rule=inp.escalation_rule or "alert rule")
        self._s.route = choice
        self._plan = lifecycle.escalation_plan(inp.policy, choice.escalation)
        if inp.policy.routes or choice != RouteChoice():
            team = f", team {choice.team}" if choice.team else ""
            self._log("routing", f"Routed by {choice.rule} to escalation policy '{choice.escalation}'{team}")
        if not lifecycle.pages_for(inp.policy, inp.severity):
            return
        # Judged here, on the copy just declared with, so the answer to the declaration
        # already shows the deferred page; level 1 is resolved again when it falls due.
        decision = routing.paging_decision(inp.policy, inp.severity, choice.team, workflow.now(), first=True)
        esc = self._s.escalation
        if decision.action == "defer":
            esc.deferred_until = decision.until
            self._log("paging", f"{inp.severity.value} declared outside business hours: {decision.why}; "
                                f"level 1 will be paged at {decision.until_text}")
        elif decision.action == "none":
            esc.paging_off = True
            self._log("paging", f"Nobody paged: {decision.why}")

    # --- main loop -------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentState:
        self._flusher_task = asyncio.ensure_future(self._flusher())
        self._relay.start()  # the incident's Slack channel and webhooks, when it has any
        if inp.carried is None:
            self._publish(PublicEventKind.NEW_INCIDENT, "declared", self._s.summary)
        else:
            # Fan-outs the previous run had no time to start.
            for event in list(self._s.pending_public_events):
                self._fanouts.append(asyncio.ensure_future(self._start_fanout(event)))
        while True:
            self._process_due(workflow.now())
            if self._s.status == IncidentStatus.CLOSED:
                break
            if self._should_continue_as_new():
                self._continuing = True
                await self._drain(read_model=False)
                workflow.continue_as_new(
                    IncidentInput(
                        number=self._s.number,
                        title=self._s.title,
                        severity=self._s.severity,
                        policy=self._policy,
                        carried=self._s,
                    )
                )
            self._dirty = False
            wake = self._next_wakeup()
            if wake is None:
                await workflow.wait_condition(lambda: self._dirty)
                continue
            timeout = (wake - workflow.now()).total_seconds()
            if timeout <= 0:
                continue
            try:
                await workflow.wait_condition(lambda: self._dirty, timeout=timeout)
            except asyncio.TimeoutError:
                pass
        await self._drain()
        return self._s

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._policy.history_event_limit
        )

    async def _drain(self, read_model: bool = True) -> None:
        """Let handlers, notifications and the read-model write in flight finish;
        with ``read_model``, also wait until the newest state is written.

        Before a continue-as-new the newest state is not waited for: with commands
        arriving faster than one write, it never would be, and the history would
        grow past its limit. The new run writes the carried state again instead.
        """
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished()
            and all(t.done() for t in self._tasks)
            and all(t.done() for t in self._fanouts)
            and not self._writing
            and (not read_model or self._persisted_version == self._s.version)
            and (self._relay.settled() if read_model else not self._relay.in_flight())
        )

    # --- what falls due -------------------------------------------------------------

    def _process_due(self, now: datetime) -> None:
        s = self._s
        open_ = s.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED)
        if s.status == IncidentStatus.TRIGGERED and lifecycle.pages_for(self._policy, s.severity):
            esc = s.escalation
            if esc.resolving or esc.paging_off:
                pass
            elif esc.deferred_until is not None:
                if now >= esc.deferred_until:
                    esc.deferred_until = None
                    self._escalate(now, reason="business hours have started")
            elif esc.step == -1 or (esc.deadline is not None and now >= esc.deadline):
                self._escalate(now, reason=None if esc.step == -1 else "no acknowledgement in time")
            self._retry_unreachable(now)
        if open_:
            self._process_status_plan(now)
            if (
                s.ic_reminder_at is not None
                and now >= s.ic_reminder_at
                and lifecycle.needs_commander(self._policy, s.severity, s.roles)
            ):
                subject, text = messages.commander_missing(s.number, s.severity, s.title)
                people = lifecycle.status_reminder_recipients({}, s.acknowledged_by, self._last_paged())
                self._notify(people, NotificationKind.REMINDER, f"ic-{s.ic_reminder_at.isoformat()}", subject, text)
                self._log("reminder", f"Asked {self._names(people)} to assign an Incident Commander")
                s.ic_reminder_at = now + self._policy.role_reminder_every
                self._touch()
        if s.status == IncidentStatus.RESOLVED and s.postmortem.required:
            self._process_postmortem(now)

    def _escalate(self, now: datetime, reason: str | None, by: str | None = None) -> None:
        if self._oncall:
            self._escalate_resolving(now, reason, by)
            return
        s, esc = self._s, self._s.escalation
        step = lifecycle.next_step(self._plan, esc.step)
        if step is None:
            esc.deadline = None
            if not esc.exhausted:
                esc.exhausted = True
                esc.fallback_notified_at = now
                people = self._policy.escalation.fallback or (
                    [self._policy.engineering_lead] if self._policy.engineering_lead else []
                )
                subject, text = messages.fallback(s.number, s.severity, s.title, len(s.pages))
                self._page_people(people, NotificationKind.FALLBACK, "fallback", -1, subject, text)
                told = ", ".join(people) if people else "nobody (no fallback configured)"
                self._log("escalation", f"Escalation policy exhausted with no acknowledgement; told {told}")
            self._touch()
            return
        esc.step = step.index
        esc.deadline = now + step.ack_timeout
        for person in step.people:
            s.pages.append(PageRecord(step=step.index, level=step.level + 1, round=step.round, person=person, at=now))
        subject, text = messages.page(s.number, s.severity, s.title, step.round)
        kind = NotificationKind.PAGE if step.index == 0 else NotificationKind.ESCALATION
        why = f" ({reason})" if reason else ""
        who = f" at {by}'s request" if by else ""
        round_txt = f", round {step.round + 1}" if step.round else ""
        self._log(
            "page" if step.index == 0 else "escalation",
            f"Paged level {step.level + 1}{round_txt}: {', '.join(step.people)}{who}{why}; "
            f"acknowledge within {int(step.ack_timeout.total_seconds())} s",
            actor=by,
        )
        self._page_people(step.people, kind, f"step-{step.index}", step.index, subject, text)
        self._touch()

    # --- on-call: resolve who a level means now, then page them -----------------------------

    def _escalate_resolving(self, now: datetime, reason: str | None, by: str | None) -> None:
        """Move to the next step (or the fallback) and resolve its targets in an activity;
        the page goes out when the answer is back (``_page_resolved``)."""
        s, esc = self._s, self._s.escalation
        if esc.resolving:
            return
        step = lifecycle.next_step(self._plan, esc.step)
        esc.deadline = None
        esc.deferred_until = None
        if step is None:
            if esc.exhausted:
                self._touch()
                return
            esc.exhausted = True
            esc.fallback_notified_at = now
        else:
            esc.step = step.index
            # The clock starts now; resolving the targets takes milliseconds.
            esc.deadline = now + step.ack_timeout
        esc.resolving = True
        self._spawn(self._page_resolved(step, reason, by))
        self._touch()

    def _fallback_targets(self) -> list[str]:
        esc = self._policy.escalation_for(self._route_choice().escalation) or self._policy.escalation
        return list(esc.fallback) or ([self._policy.engineering_lead] if self._policy.engineering_lead else [])

    def _route_choice(self) -> RouteChoice:
        return self._s.route or RouteChoice()

    async def _resolve(self, step: lifecycle.PlanStep | None, first: bool) -> Resolution:
        s, choice = self._s, self._route_choice()
        inp = ResolveTargetsInput(
            incident_number=s.number,
            escalation=choice.escalation,
            level=step.level if step is not None else -1,
            targets=list(step.people) if step is not None else self._fallback_targets(),
            severity=s.severity,
            team=choice.team,
            at=workflow.now(),
            first=first,
        )
        problem = ""
        try:
            result: ResolveTargetsResult = await workflow.execute_activity(
                RESOLVE_TARGETS_ACTIVITY,
                inp,
                result_type=ResolveTargetsResult,
                start_to_close_timeout=RESOLVE_TIMEOUT,
                retry_policy=RESOLVE_RETRY,
            )
            if result.resolution is not None:
                return result.resolution
        except ActivityError as err:
            problem = _failure(err)
        if problem:
            self._log("paging", f"Could not read the current on-call configuration ({problem}); "
                                f"resolved with the configuration #{s.number} was declared with")
        return routing.resolve_level(
            self._policy, inp.escalation, inp.level, inp.targets, inp.severity, inp.team, inp.at, first=first
        )

    async def _page_resolved(self, step: lifecycle.PlanStep | None, reason: str | None, by: str | None) -> None:
        s, esc = self._s, self._s.escalation
        first = step is not None and not s.pages
        try:
            resolution = await self._resolve(step, first)
        finally:
            esc.resolving = False
        s.contacts.update(resolution.contacts)
        now = workflow.now()
        what = f"level {step.level + 1}" if step is not None else "the fallback"
        if s.status != IncidentStatus.TRIGGERED:
            self._log("paging", f"{what.capitalize()} not paged: the incident was {s.status.value} meanwhile")
            return
        if not lifecycle.pages_for(self._policy, s.severity):
            esc.deadline = None
            self._log("paging", f"{what.capitalize()} not paged: {s.severity.value} does not page")
            return
        decision = resolution.decision
        if by is None and step is not None and decision.action == "defer" and first:
            esc.step = step.index - 1
            esc.deadline = None
            esc.deferred_until = decision.until
            self._log("paging", f"{s.severity.value} declared outside business hours: {decision.why}; "
                                f"{what} ({resolution.describe()}) will be paged at {decision.until_text}")
            return
        if by is None and decision.action == "none":
            esc.paging_off = True
            esc.deadline = None
            self._log("paging", f"{what.capitalize()} not paged: {decision.why}")
            return
        methods = decision.methods or list(self._policy.methods_for(s.severity))
        people = resolution.people
        if step is None:
            subject, text = messages.fallback(s.number, s.severity, s.title, len(s.pages))
            self._page_people(people, NotificationKind.FALLBACK, "fallback", -1, subject, text,
                              methods=methods)
            told = resolution.describe() if people else "nobody (no fallback configured)"
            if not people and resolution.targets:
                told = f"nobody ({resolution.describe()})"
            self._log("escalation", f"Escalation policy exhausted with no acknowledgement; told {told}")
            return
        round_txt = f", round {step.round + 1}" if step.round else ""
        who = f" at {by}'s request" if by else ""
        why = f" ({reason})" if reason else ""
        kind = NotificationKind.PAGE if step.index == 0 else NotificationKind.ESCALATION
        log_kind = "page" if step.index == 0 else "escalation"
        if not people:
            self._log(log_kind, f"Level {step.level + 1}{round_txt} has nobody to page now: {resolution.describe()}")
            self._escalate(now, reason=f"level {step.level + 1} had nobody to page")
            return
        for person in people:
            s.pages.append(PageRecord(step=step.index, level=step.level + 1, round=step.round, person=person,
                                      at=now, via=resolution.via(person)))
        subject, text = messages.page(s.number, s.severity, s.title, step.round)
        self._log(
            log_kind,
            f"Paged level {step.level + 1}{round_txt}: {resolution.describe()}{who}{why}; "
            f"acknowledge within {int(step.ack_timeout.total_seconds())} s",
            actor=by,
        )
        self._page_people(people, kind, f"step-{step.index}", step.index, subject, text,
                          methods=methods)

    def _person(self, person_id: str) -> Person | None:
        """How to reach someone: as last resolved from the configuration, else the incident's copy."""
        if self._oncall and person_id in self._s.contacts:
            return self._s.contacts[person_id]
        return self._policy.people.get(person_id)

    def _via(self, person_id: str) -> str | None:
        """What a follow-up to ``person_id`` depends on: nothing for whoever took the incident
        on (acknowledged it or holds a role: they stay until they hand it over), else the
        target of their latest page (taken off that schedule or team, they hear no more)."""
        if not self._oncall:
            return None
        s = self._s
        if person_id == s.acknowledged_by or person_id in s.roles.values():
            return None
        for page in reversed(s.pages):
            if page.person == person_id:
                return page.via
        return None

    @staticmethod
    def _names(people: list[str]) -> str:
        return ", ".join(people) if people else "nobody yet"

    def _process_status_plan(self, now: datetime) -> None:
        s, plan, policy = self._s, self._s.status_plan, self._policy
        if plan.first_posted_at is None:
            if now >= plan.first_deadline:
                every = lifecycle.update_interval(policy, s.severity)
                text = messages.auto_initial_status(s.title, s.components, every)
                self._add_status(now, StatusKind.AUTO_INITIAL, "warroom", text, PublicPhase.INVESTIGATING)
                people = self._ic_or_responders()
                subject, body = messages.auto_posted_notice(s.number, text)
                self._notify(people, NotificationKind.STATUS, "auto-initial", subject, body)
                self._log("status", "No update was posted in time: published a holding statement automatically")
            elif not plan.first_reminded and now >= lifecycle.reminder_at(
                plan.first_deadline, policy.first_status_within, policy.reminder_lead
            ):
                plan.first_reminded = True
                people = self._status_reminder_people()
                subject, text = messages.first_status_reminder(s.number, s.title, plan.first_deadline - now)
                self._notify(people, NotificationKind.REMINDER, "first-status", subject, text)
                self._log("reminder", f"Reminded {self._names(people)} that the first public update is due")
                self._touch()
            return
        interval = lifecycle.update_interval(policy, s.severity)
        if plan.next_due is None or interval is None:
            return
        if now >= plan.next_due:
            late = now - plan.next_due
            people = lifecycle.overdue_update_recipients(
                s.roles, s.acknowledged_by, policy.engineering_lead, self._last_paged()
            )
            subject, text = messages.update_overdue(s.number, s.title, late)
            self._notify(people, NotificationKind.ESCALATION, f"overdue-{plan.next_due.isoformat()}", subject, text)
            self._log("escalation", f"Status update overdue; escalated to {self._names(people)}")
            plan.overdue_for = plan.next_due
            plan.next_due = now + interval
            self._touch()
        elif plan.reminded_for != plan.next_due and now >= lifecycle.reminder_at(
            plan.next_due, interval, policy.reminder_lead
        ):
            plan.reminded_for = plan.next_due
            people = self._status_reminder_people()
            subject, text = messages.update_reminder(s.number, s.title, plan.next_due - now)
            self._notify(people, NotificationKind.REMINDER, f"update-{plan.next_due.isoformat()}", subject, text)
            self._log("reminder", f"Reminded {self._names(people)} that a status update is due")
            self._touch()

    def _process_postmortem(self, now: datetime) -> None:
        s, pm = self._s, self._s.postmortem
        assert s.resolved_at is not None and pm.deadline is not None
        reminders = lifecycle.postmortem_reminder_times(s.resolved_at, self._policy)
        if pm.reminders_sent < len(reminders) and now >= reminders[pm.reminders_sent] and now < pm.deadline:
            # Only the latest reminder that fell due is sent: after a long outage
            # of the worker, one reminder beats three at once.
            while pm.reminders_sent < len(reminders) and now >= reminders[pm.reminders_sent]:
                pm.reminders_sent += 1
            people = postmortem_rules.reminder_people(self._ic_or_responders(), pm.author)
            subject, text = messages.postmortem_reminder(s.number, s.title, pm.deadline - now)
            self._notify(people, NotificationKind.POSTMORTEM, f"pm-reminder-{pm.reminders_sent}", subject, text)
            self._log("reminder", f"Reminded {self._names(people)} that the postmortem is due")
            self._touch()
        due = lifecycle.postmortem_overdue_times(s.resolved_at, self._policy, pm.overdue_notified)
        if now >= due:
            pm.reminders_sent = len(reminders)
            pm.overdue_notified += 1
            lead = self._policy.engineering_lead
            people = [lead] if lead else self._ic_or_responders()
            subject, text = messages.postmortem_overdue(s.number, s.title, now - pm.deadline)
            self._notify(people, NotificationKind.POSTMORTEM, f"pm-overdue-{pm.overdue_notified}", subject, text)
            self._log("escalation", f"Postmortem overdue; told {self._names(people)}")
            self._touch()

    def _next_wakeup(self) -> datetime | None:
        s, policy, plan = self._s, self._policy, self._s.status_plan
        times: list[datetime] = []
        if s.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED):
            if (
                s.status == IncidentStatus.TRIGGERED
                and s.escalation.deadline is not None
                and not s.escalation.resolving
            ):
                times.append(s.escalation.deadline)
            if s.status == IncidentStatus.TRIGGERED and s.escalation.deferred_until is not None:
                times.append(s.escalation.deferred_until)
            if s.status == IncidentStatus.TRIGGERED:
                times.extend(r.retry_at for r in s.page_runs if r.retry_at is not None)
            if plan.first_posted_at is None:
                times.append(plan.first_deadline)
                if not plan.first_reminded:
                    times.append(
                        lifecycle.reminder_at(plan.first_deadline, policy.first_status_within, policy.reminder_lead)
                    )
            else:
                interval = lifecycle.update_interval(policy, s.severity)
                if plan.next_due is not None and interval is not None:
                    times.append(plan.next_due)
                    if plan.reminded_for != plan.next_due:
                        times.append(lifecycle.reminder_at(plan.next_due, interval, policy.reminder_lead))
            if s.ic_reminder_at is not None and lifecycle.needs_commander(policy, s.severity, s.roles):
                times.append(s.ic_reminder_at)
        elif s.status == IncidentStatus.RESOLVED and s.postmortem.required and s.resolved_at is not None:
            reminders = lifecycle.postmortem_reminder_times(s.resolved_at, policy)
            if s.postmortem.reminders_sent < len(reminders):
                times.append(reminders[s.postmortem.reminders_sent])
            times.append(lifecycle.postmortem_overdue_times(s.resolved_at, policy, s.postmortem.overdue_notified))
        return min(times) if times else None

    def deadlines(self) -> list[Deadline]:
        s, policy, plan = self._s, self._policy, self._s.status_plan
        out: list[Deadline] = []
        if s.status == IncidentStatus.TRIGGERED and s.escalation.deadline is not None:
            out.append(Deadline(name="acknowledge", at=s.escalation.deadline))
        if s.status == IncidentStatus.TRIGGERED and s.escalation.deferred_until is not None:
            out.append(Deadline(name="deferred_page", at=s.escalation.deferred_until))
        if s.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED):
            if plan.first_posted_at is None:
                out.append(Deadline(name="first_status_update", at=plan.first_deadline))
            elif plan.next_due is not None and lifecycle.update_interval(policy, s.severity) is not None:
                out.append(Deadline(name="next_status_update", at=plan.next_due))
            if s.ic_reminder_at is not None and lifecycle.needs_commander(policy, s.severity, s.roles):
                out.append(Deadline(name="assign_incident_commander", at=s.ic_reminder_at))
        if s.status == IncidentStatus.RESOLVED and s.postmortem.deadline is not None:
            out.append(Deadline(name="postmortem", at=s.postmortem.deadline))
        return sorted(out, key=lambda d: d.at)

    # --- queries ---------------------------------------------------------------------

    @workflow.query
    def view(self) -> IncidentView:
        return IncidentView(state=self._s, deadlines=self.deadlines())

    @workflow.query(name=PAGE_WANTED_QUERY)
    def page_wanted(self, key: str) -> bool:
        """Asked by the send activity just before a page leaves: False once the
        incident is acknowledged or resolved, or the attempt was withdrawn."""
        s = self._s
        if s.status != IncidentStatus.TRIGGERED:
            return False
        found = self._find_attempt(key)
        if found is None:
            return True  # a page from before PAGING_PATCH: only the incident's state decides
        return found[1].status == "sending"

    # --- delivery callbacks ------------------------------------------------------------

    @workflow.signal
    def delivery_status(self, inp: DeliveryStatusInput) -> None:
        """What the provider later said about an attempt (Twilio status callback)."""
        found = self._find_attempt(inp.key)
        if found is None:
            return
        run, attempt = found
        if inp.outcome == "delivered":
            if attempt.status in ("sending", "sent"):
                attempt.status = "delivered"
                attempt.detail = inp.detail
                self._log("notify", f"{self._attempt_name(run, attempt)}: {inp.detail or 'delivered'}")
        elif inp.outcome == "failed":
            if attempt.status in ("sending", "sent"):
                self._attempt_failed(run, attempt, inp.detail or inp.status or "the provider reported a failure")

    # --- commands ----------------------------------------------------------------------

    def _require_open(self, verb: str) -> None:
        s = self._s
        if s.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
            _reject(f"incident #{s.number} is already resolved; cannot {verb}")

    def _require_person(self, person: str, what: str = "a responder of this incident", invalid: bool = False) -> None:
        if person not in self._policy.people and not (self._oncall and person in self._s.contacts):
            _reject(f"'{person}' is not {what}", invalid=invalid)

    @workflow.update
    def acknowledge(self, cmd: AckInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        s, now = self._s, workflow.now()
        s.status = IncidentStatus.ACKNOWLEDGED
        s.acknowledged_at = now
        s.acknowledged_by = cmd.person
        s.escalation.deadline = None
        self._log("ack", f"Acknowledged by {cmd.person} via {cmd.via}", actor=cmd.person)
        self._cancel_deferred_page(f"acknowledged by {cmd.person}")
        self._withdraw_pages(f"acknowledged by {cmd.person}")
        self._touch()
        return self._result(f"#{s.number} acknowledged by {cmd.person}")

    @acknowledge.validator
    def _validate_ack(self, cmd: AckInput) -> None:
        if self._earlier_answer() is not None:
            return
        s = self._s
        self._require_open("acknowledge it")
        if s.acknowledged_by is not None:
            _reject(f"incident #{s.number} was already acknowledged by {s.acknowledged_by}")
        self._require_person(cmd.person)

    @workflow.update
    def escalate(self, cmd: EscalateInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        s = self._s
        if cmd.from_step is not None and cmd.from_step != s.escalation.step:
            result = self._result(f"#{s.number} has already been escalated past that level")
            result.changed = False
            return result
        self._escalate(workflow.now(), reason="escalated by hand", by=cmd.by)
        return self._result(f"#{s.number} escalated")

    @escalate.validator
    def _validate_escalate(self, cmd: EscalateInput) -> None:
        if self._earlier_answer() is not None:
            return
        s = self._s
        self._require_open("escalate it")
        if s.acknowledged_by is not None:
            _reject(f"incident #{s.number} was already acknowledged by {s.acknowledged_by}")
        if not lifecycle.pages_for(self._policy, s.severity):
            _reject(f"{s.severity.value} incidents do not page under this policy")
        if s.escalation.exhausted:
            _reject(f"incident #{s.number} has no further escalation level")
        if s.escalation.resolving:
            _reject(f"incident #{s.number} is paging its next level right now")

    @workflow.update
    def post_status_update(self, cmd: StatusUpdateInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        now, before, message = workflow.now(), self._s.public_phase, cmd.message.strip()
        self._add_status(now, StatusKind.UPDATE, cmd.author, message, cmd.phase)
        after = self._s.public_phase
        self._log("status", messages.status_posted(cmd.author, message, before, after), actor=cmd.author)
        return self._result(f"update posted on #{self._s.number} ({after.value})")

    @post_status_update.validator
    def _validate_status(self, cmd: StatusUpdateInput) -> None:
        if self._earlier_answer() is not None:
            return
        self._require_open("post an update (the resolution notice has been published)")
        if not cmd.message.strip():
            _reject("the update is empty")
        if len(cmd.message) > MAX_TEXT:
            _reject(f"the update is longer than {MAX_TEXT} characters")

    @workflow.update
    def assign_role(self, cmd: RoleInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        s = self._s
        previous = s.roles.get(cmd.role)
        if previous == cmd.person:
            return self._result(f"{cmd.person} is already {cmd.role.title} of #{s.number}")
        s.roles[cmd.role] = cmd.person
        replaced = f" (replacing {previous})" if previous else ""
        self._log("role", f"{cmd.person} is {cmd.role.title}{replaced}, assigned by {cmd.by}", actor=cmd.by)
        subject, text = messages.role_assigned(s.number, cmd.role, s.title)
        self._notify([cmd.person], NotificationKind.ROLE, f"role-{cmd.role.value}-{s.version}", subject, text)
        self._touch()
        return self._result(f"{cmd.person} is now {cmd.role.title} of #{s.number}")

    @assign_role.validator
    def _validate_role(self, cmd: RoleInput) -> None:
        if self._earlier_answer() is not None:
            return
        if self._s.status == IncidentStatus.CLOSED:
            _reject(f"incident #{self._s.number} is closed")
        self._require_person(cmd.person, "a known person", invalid=True)

    @workflow.update
    def change_severity(self, cmd: SeverityInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        s, now, policy = self._s, workflow.now(), self._policy
        old = s.severity
        s.severity = cmd.severity
        s.max_severity = most_severe(s.max_severity, cmd.severity)
        reason = f": {cmd.reason}" if cmd.reason else ""
        self._log("severity", f"Severity {old.value} -> {cmd.severity.value} by {cmd.by}{reason}", actor=cmd.by)
        s.component_impacts = component_rules.impacts_after_severity_change(s.component_impacts, cmd.severity, now)
        plan = s.status_plan
        if plan.first_posted_at is not None:
            last = s.status_updates[-1].at if s.status_updates else plan.first_posted_at
            plan.next_due = lifecycle.next_update_due(last, policy, cmd.severity, now)
        if lifecycle.needs_commander(policy, cmd.severity, s.roles) and s.ic_reminder_at is None:
            s.ic_reminder_at = now + policy.commander_within
        esc = s.escalation
        if self._oncall and s.status == IncidentStatus.TRIGGERED and (esc.deferred_until or esc.paging_off):
            # The paging rules are judged again for the new severity at the next wake-up.
            if esc.deferred_until is not None:
                self._log("paging", f"Deferred page reconsidered for {cmd.severity.value}")
            esc.deferred_until = None
            esc.paging_off = False
            if esc.step >= 0:
                esc.deadline = now
        if (
            s.status == IncidentStatus.TRIGGERED
            and s.escalation.step >= 0
            and not lifecycle.pages_for(policy, cmd.severity)
        ):
            s.escalation.deadline = None
            self._log("paging", f"{cmd.severity.value} does not page: paging stopped")
            self._withdraw_pages(f"{cmd.severity.value} does not page")
        elif (
            s.status == IncidentStatus.TRIGGERED
            and lifecycle.pages_for(policy, cmd.severity)
            and s.escalation.deadline is None
            and not s.escalation.exhausted
            and not s.escalation.resolving
            and s.escalation.step >= 0
        ):
            # Paging was stopped by an earlier downgrade: resume at the next level.
            s.escalation.deadline = now
        self._touch()
        return self._result(f"#{s.number} is now {cmd.severity.value}")

    @change_severity.validator
    def _validate_severity(self, cmd: SeverityInput) -> None:
        if self._earlier_answer() is not None:
            return
        self._require_open("change its severity")
        if cmd.severity == self._s.severity:
            _reject(f"incident #{self._s.number} is already {cmd.severity.value}")

    @workflow.update
    def resolve(self, cmd: ResolveInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        s, now, policy = self._s, workflow.now(), self._policy
        s.status = IncidentStatus.RESOLVED
        s.resolved_at = now
        s.resolved_by = cmd.by
        s.resolution_summary = cmd.summary.strip()
        s.escalation.deadline = None
        self._cancel_deferred_page("resolved")
        s.component_impacts = component_rules.impacts_at_resolution(s.component_impacts, now)
        self._withdraw_pages("resolved")
        required = lifecycle.postmortem_required(policy, s.max_severity)
        s.postmortem.required = required
        notice = messages.resolution_notice(s.title, cmd.summary, cmd.impact, required)
        self._add_status(now, StatusKind.RESOLUTION, cmd.by, notice)
        self._log("resolved", f"Resolved by {cmd.by}: {cmd.summary.strip()}", actor=cmd.by)
        due_in = None
        if required:
            s.postmortem.deadline = lifecycle.postmortem_deadline(now, policy)
            due_in = policy.postmortem_within
            self._log("postmortem", f"Postmortem required by {s.postmortem.deadline.isoformat()}")
        else:
            s.status = IncidentStatus.CLOSED
        subject, text = messages.resolved_to_responders(s.number, s.title, due_in)
        self._notify(self._involved(), NotificationKind.RESOLUTION, "resolved", subject, text)
        self._touch()
        return self._result(f"#{s.number} resolved")

    @resolve.validator
    def _validate_resolve(self, cmd: ResolveInput) -> None:
        if self._earlier_answer() is not None:
            return
        s = self._s
        if s.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
            _reject(f"incident #{s.number} was already resolved by {s.resolved_by}")
        active = [r for r in s.runbook_runs if r.status.active]
        if active:
            _reject(
                f"runbook run #{active[0].run} ({active[0].title}) is still {active[0].status.value}; "
                "let it finish or abort it before resolving"
            )
        if not cmd.summary.strip():
            _reject("a resolution summary is required: what happened and what restored service")
        if len(cmd.summary) > MAX_TEXT or len(cmd.impact) > MAX_TEXT:
            _reject(f"the summary and impact must each be at most {MAX_TEXT} characters")

    @workflow.update
    def submit_postmortem(self, cmd: PostmortemInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        s, now = self._s, workflow.now()
        pm = s.postmortem
        pm.document = cmd.document
        pm.submitted_at = now
        pm.submitted_by = cmd.by
        late = pm.deadline is not None and now > pm.deadline
        self._log(
            "postmortem",
            f"Postmortem submitted by {cmd.by}{' (late)' if late else ''} "
            f"with {len(cmd.document.action_items)} action item(s)",
            actor=cmd.by,
        )
        s.status = IncidentStatus.CLOSED
        if cmd.document.action_items and workflow.patched(ACTION_ITEMS_PATCH):
            self._log("postmortem", f"Tracking {len(cmd.document.action_items)} action item(s) until each is done")
            self._spawn(self._start_action_items(cmd))
        self._touch()
        return self._result(f"postmortem for #{s.number} accepted")

    async def _start_action_items(self, cmd: PostmortemInput) -> None:
        """The tracker outlives this workflow (abandoned, not cancelled, when the incident closes)."""
        s = self._s
        owners = {i.owner for i in cmd.document.action_items}
        if self._policy.engineering_lead:
            owners.add(self._policy.engineering_lead)
        contacts = {p: person for p in sorted(owners) if (person := self._person(p)) is not None}
        inp = ActionItemsInput(number=s.number, title=s.title, severity=s.max_severity.value,
                               items=list(cmd.document.action_items), policy=self._policy, contacts=contacts)
        try:
            await workflow.start_child_workflow(
                ActionItemsWorkflow.run, inp, id=action_items_workflow_id(s.number),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            pass

    @workflow.update
    def set_postmortem_author(self, cmd: PostmortemAuthorInput) -> CommandResult:
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        pm = self._s.postmortem
        if pm.author == cmd.person or not workflow.patched(POSTMORTEM_AUTHOR_PATCH):
            result = self._result(f"{cmd.person} is writing the postmortem of #{self._s.number}")
            result.changed = False
            return result
        pm.author = cmd.person
        self._log("postmortem", f"{cmd.person} is writing the postmortem", actor=cmd.by)
        self._touch()
        return self._result(f"{cmd.person} is writing the postmortem of #{self._s.number}")

    @set_postmortem_author.validator
    def _validate_postmortem_author(self, cmd: PostmortemAuthorInput) -> None:
        if self._earlier_answer() is not None:
            return
        s = self._s
        if s.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED):
            _reject(f"incident #{s.number} is not resolved yet; the postmortem comes after resolution")
        if not s.postmortem.required or s.postmortem.submitted_at is not None:
            _reject(f"incident #{s.number} has no postmortem left to write")
        self._require_person(cmd.person, "a person in the policy, so the author cannot be reminded")

    @submit_postmortem.validator
    def _validate_postmortem(self, cmd: PostmortemInput) -> None:
        if self._earlier_answer() is not None:
            return
        s = self._s
        if s.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED):
            _reject(f"incident #{s.number} is not resolved yet; the postmortem comes after resolution")
        if s.postmortem.submitted_at is not None:
            _reject(f"the postmortem for #{s.number} was already submitted by {s.postmortem.submitted_by}")
        if s.status == IncidentStatus.CLOSED:
            _reject(f"incident #{s.number} is closed and needs no postmortem")
        problems = lifecycle.postmortem_problems(cmd.document, now=workflow.now())
        if problems:
            _reject("the postmortem is incomplete: " + "; ".join(problems))

    @workflow.update
    async def run_runbook(self, cmd: RunbookRunInput) -> RunCommandResult:
        s, rb = self._s, cmd.runbook
        params = check_params(rb, cmd.params)
        run = len(s.runbook_runs) + 1
        wid = runbook_run_workflow_id(s.number, run)
        ref = RunbookRunRef(
            run=run, runbook_id=rb.id, title=rb.title, workflow_id=wid, started_by=cmd.actor, started_at=workflow.now()
        )
        s.runbook_runs.append(ref)
        given = ", ".join(f"{k}={v}" for k, v in params.items())
        with_params = f" with {given}" if given else ""
        confirmed = " (destructive steps confirmed)" if rb.destructive else ""
        reason = f": {cmd.reason.strip()}" if cmd.reason.strip() else ""
        self._log(
            "runbook",
            f"Runbook run #{run} ({rb.title}): started by {cmd.actor}{with_params}{confirmed}{reason}",
            actor=cmd.actor,
        )
        start = RunbookRunStart(
            incident_number=s.number,
            run=run,
            runbook=rb,
            params=params,
            started_by=cmd.actor,
            operators=sorted(self._policy.people),
            reason=cmd.reason.strip(),
            parent_workflow_id=workflow.info().workflow_id,
        )
        try:
            handle = await workflow.start_child_workflow(
                RunbookRunWorkflow.run, start, id=wid, parent_close_policy=workflow.ParentClosePolicy.ABANDON
            )
        except WorkflowAlreadyStartedError:
            ref.status = RunStatus.FAILED
            self._log("runbook", f"Runbook run #{run} could not start: {wid} already exists")
            _reject(f"runbook run #{run} could not start: a workflow {wid} already exists")
        # The run reports its progress by signal; this only notices a run that
        # was terminated from outside and could not say so itself.
        self._run_watchers.append(asyncio.ensure_future(self._watch_run(ref, handle)))
        return RunCommandResult(
            incident_number=s.number,
            run=run,
            status=RunStatus.RUNNING,
            message=f"runbook run #{run} ({rb.title}) started on #{s.number}",
            workflow_id=wid,
        )

    @run_runbook.validator
    def _validate_run_runbook(self, cmd: RunbookRunInput) -> None:
        """Who may run what is decided by the caller's capability (today derived by the
        API from settings; with access control, from the caller's role)."""
        s, rb = self._s, cmd.runbook
        self._require_open("run a runbook")
        self._require_person(cmd.actor)
        try:
            check_params(rb, cmd.params)
        except ParameterError as err:
            _reject(f"params of runbook '{rb.id}' are not valid: {err}")
        if rb.destructive:
            names = ", ".join(f"'{st.name}'" for st in rb.steps if st.destructive)
            if not cmd.can_run_destructive:
                _reject(f"{cmd.actor} may not run '{rb.title}': it has destructive steps ({names})")
            if not cmd.confirm_destructive:
                _reject(f"'{rb.title}' has destructive steps ({names}); confirm them explicitly to run it")
        busy = [r for r in s.runbook_runs if r.runbook_id == rb.id and r.status.active]
        if busy:
            _reject(f"run #{busy[0].run} of '{rb.title}' is still {busy[0].status.value}; wait for it or abort it")
        if len(cmd.reason) > MAX_TEXT:
            _reject(f"the reason is longer than {MAX_TEXT} characters")

    @workflow.signal(name=RUNBOOK_EVENT_SIGNAL)
    def runbook_event(self, event: RunbookEvent) -> None:
        self._log("runbook", event.text, actor=event.actor)
        ref = next((r for r in self._s.runbook_runs if r.run == event.run), None)
        if ref is not None and ref.status.active:
            ref.status = event.status
            if not event.status.active:
                ref.finished_at = event.at

    async def _watch_run(self, ref: RunbookRunRef, handle: Awaitable[object]) -> None:
        try:
            await handle
        except ChildWorkflowError as err:
            if ref.status.active:
                ref.status = RunStatus.FAILED
                ref.finished_at = workflow.now()
                self._log("runbook", f"Runbook run #{ref.run} ({ref.title}) ended abnormally: {err.message}")

    @workflow.update
    def add_note(self, cmd: NoteInput) -> CommandResult:
        """A chat message a responder marked, copied to the timeline for the scribe and the postmortem."""
        if (earlier := self._earlier_answer()) is not None:
            return earlier
        s = self._s
        if cmd.ref is not None:
            if cmd.ref in s.relay.noted:
                result = self._result(f"that message is already on the timeline of #{s.number}")
                result.changed = False
                return result
            s.relay.noted.append(cmd.ref)
            del s.relay.noted[:-MAX_REMEMBERED_COMMANDS]
        self._log("note", f"Note from {cmd.by} via {cmd.source}: {cmd.text.strip()}", actor=cmd.by)
        return self._result(f"noted on the timeline of #{s.number}")

    @add_note.validator
    def _validate_note(self, cmd: NoteInput) -> None:
        if self._earlier_answer() is not None:
            return
        if self._s.status == IncidentStatus.CLOSED:
            _reject(f"incident #{self._s.number} is closed")
        self._require_person(cmd.by, "a known person")
        if not cmd.text.strip():
            _reject("the note is empty")
        if len(cmd.text) > MAX_TEXT:
            _reject(f"the note is longer than {MAX_TEXT} characters")

    @workflow.update
    def set_component_state(self, cmd: ComponentStateInput) -> CommandResult:
        s, now = self._s, workflow.now()
        name = cmd.component.strip()
        s.component_impacts = component_rules.impacts_after_edit(
            s.component_impacts, ComponentStateInput(component=name, state=cmd.state, by=cmd.by), now
        )
        if name not in s.components:
            s.components.append(name)
        self._log("component", f"{name} set to {cmd.state.label.lower()} by {cmd.by}", actor=cmd.by)
        return self._result(f"{name} is now {cmd.state.label.lower()} on the status page for #{s.number}")

    @set_component_state.validator
    def _validate_component_state(self, cmd: ComponentStateInput) -> None:
        self._require_open("change its components")
        if not cmd.component.strip() or len(cmd.component) > 100:
            _reject("name the component (1 to 100 characters)")
        if cmd.state == ComponentState.UNDER_MAINTENANCE:
            _reject("'under maintenance' comes from a scheduled maintenance window, not from an incident")

    @workflow.update
    def receive_alerts(self, batch: AlertBatch) -> AlertBatchResult:
        s = self._s
        if s.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
            return AlertBatchResult(number=s.number, accepted=False)
        first = not s.alerts
        fresh = self._merge_alerts(batch.alerts)
        return AlertBatchResult(number=s.number, accepted=True, new_alerts=fresh, first_batch=first)

    # --- helpers ---------------------------------------------------------------------

    def _result(self, message: str) -> CommandResult:
        result = CommandResult(number=self._s.number, status=self._s.status, message=message)
        info = workflow.current_update_info()
        if info is not None:
            answers = self._s.command_results
            answers[info.id] = result
            while len(answers) > MAX_REMEMBERED_COMMANDS:
                del answers[next(iter(answers))]
        return result

    def _earlier_answer(self) -> CommandResult | None:
        """The answer already given to this update id, by this run or an earlier one.

        Temporal deduplicates update ids only within one run: a client whose
        command completed just before a continue-as-new may retry it against
        the new run, which must answer it, not apply it a second time.
        """
        info = workflow.current_update_info()
        return self._s.command_results.get(info.id) if info is not None else None

    def _touch(self) -> None:
        self._s.version += 1
        self._dirty = True

    def _log(self, kind: str, text: str, actor: str | None = None) -> None:
        seq = self._s.timeline[-1].seq + 1 if self._s.timeline else 1
        self._s.timeline.append(TimelineEntry(seq=seq, at=workflow.now(), kind=kind, text=text, actor=actor))
        self._touch()

    def _add_status(
        self, now: datetime, kind: StatusKind, author: str, message: str, phase: PublicPhase | None = None
    ) -> None:
        """Record a public update; ``phase`` None keeps the phase in force (a resolution never sets one)."""
        s, plan = self._s, self._s.status_plan
        seq = s.status_updates[-1].seq + 1 if s.status_updates else 1
        s.status_updates.append(StatusUpdate(seq=seq, at=now, kind=kind, author=author, message=message, phase=phase))
        resolution = kind == StatusKind.RESOLUTION
        event = PublicEventKind.RESOLVED if resolution else PublicEventKind.UPDATE
        self._publish(event, f"update-{seq}", message, None if resolution else s.public_phase.value)
        if kind != StatusKind.RESOLUTION:
            if plan.first_posted_at is None:
                plan.first_posted_at = now
            plan.next_due = lifecycle.next_update_due(now, self._policy, s.severity, now)
            plan.reminded_for = None
        self._touch()

    def _merge_alerts(self, alerts: Iterable[AlertEvent]) -> int:
        s, now, fresh = self._s, workflow.now(), 0
        by_fp = {a.fingerprint: a for a in s.alerts}
        lines = sum(1 for e in s.timeline if e.kind == "alert")
        for alert in alerts:
            key = f"{alert.status}|{alert.starts_at.isoformat() if alert.starts_at else ''}"
            record = by_fp.get(alert.fingerprint)
            if record is None and len(s.alerts) >= MAX_ALERT_RECORDS:
                # A storm of distinct alerts: counted in one record, each delivery as new
                # (their fingerprints are not kept, which is the point).
                record = by_fp.get(OVERFLOW_ALERTS)
                if record is None:
                    record = AlertRecord(fingerprint=OVERFLOW_ALERTS, name="further alerts, counted but not listed",
                                         first_seen=now, last_seen=now, count=0, source=alert.source)
                    s.alerts.append(record)
                    by_fp[OVERFLOW_ALERTS] = record
                record.last_seen = now
                record.received += 1
                record.count += 1
                record.status = alert.status
                fresh += 1
                lines = self._log_alert(alert, lines)
                continue
            if record is None:
                record = AlertRecord(
                    fingerprint=alert.fingerprint,
                    name=alert.name,
                    status=alert.status,
                    first_seen=now,
                    last_seen=now,
                    count=0,
                    starts_at=alert.starts_at,
                    source=alert.source,
                    component=alert.component,
                    links=list(alert.links[:10]),
                )
                s.alerts.append(record)
                by_fp[alert.fingerprint] = record
            record.last_seen = now
            record.received += 1
            if key in record.seen_keys:
                continue
            record.seen_keys.append(key)
            del record.seen_keys[:-MAX_SEEN_KEYS]
            record.count += 1
            record.status = alert.status
            fresh += 1
            lines = self._log_alert(alert, lines)
        if fresh:
            self._touch()
        return fresh

    def _log_alert(self, alert: AlertEvent, lines: int) -> int:
        """One timeline line per alert up to MAX_ALERT_LINES, then one saying the rest are counted."""
        if lines < MAX_ALERT_LINES:
            where = f" on {alert.labels['instance']}" if "instance" in alert.labels else ""
            what = alert.summary or alert.name or alert.fingerprint
            verb = "resolved" if alert.status == "resolved" else "firing"
            self._log("alert", f"Alert {verb} ({alert.source}){where}: {what}")
        elif lines == MAX_ALERT_LINES:
            self._log("alert", f"More than {MAX_ALERT_LINES} alerts: further ones are counted in the incident's "
                               "alert list, not written here one by one (every delivery is in the raw alert record)")
        return lines + 1

    def _last_paged(self) -> list[str]:
        s = self._s
        if not s.pages and self._oncall:
            # Before the first page only the people named outright are known.
            return [p for p in self._plan[0].people if self._person(p) is not None] if self._plan else []
        if not s.pages:
            return [p for p in self._plan[0].people] if self._plan else []
        last = s.pages[-1].step
        return [p.person for p in s.pages if p.step == last]

    def _status_reminder_people(self) -> list[str]:
        return lifecycle.status_reminder_recipients(self._s.roles, self._s.acknowledged_by, self._last_paged())

    def _ic_or_responders(self) -> list[str]:
        s = self._s
        if Role.INCIDENT_COMMANDER in s.roles:
            return [s.roles[Role.INCIDENT_COMMANDER]]
        if s.acknowledged_by:
            return [s.acknowledged_by]
        return self._last_paged()

    def _involved(self) -> list[str]:
        s = self._s
        people = [p.person for p in s.pages] + list(s.roles.values())
        if s.acknowledged_by:
            people.append(s.acknowledged_by)
        return list(dict.fromkeys(people))

    # --- side effects (activities in background tasks) ----------------------------------

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.append(task)
        self._tasks = [t for t in self._tasks if not t.done()]
        return task

    def _notify(
        self,
        people: Iterable[str],
        kind: NotificationKind,
        slot: str,
        subject: str,
        text: str,
        stop_on_ack: bool = False,
    ) -> None:
        """Send to each person; ``stop_on_ack`` marks escalation pages, which an ack cancels."""
        rule: tuple[list[ContactMethod], bool] | None = None
        if workflow.patched(QUIET_NOTICES_PATCH):
            s = self._s
            rule = routing.notice_methods(self._policy, s.severity, self._route_choice().team,
                                          workflow.now(), paging_started=bool(s.pages))
        for person_id in dict.fromkeys(people):
            person = self._person(person_id)
            if person is None:
                self._log("notify", f"Cannot notify '{person_id}': not in the policy")
                continue
            if rule is None:
                method: ContactMethod | None = paging.notice_method(person)
            else:
                method = paging.quiet_notice_method(person, rule[0], paging=rule[1])
            if method is None:
                self._log("notify", f"Did not send the {kind.value} to {person_id}: {self._s.severity.value} "
                                    f"pages nobody now, so it goes by email only, and they have no address")
                continue
            channel = method.value
            key = f"incident-{self._s.number}/{slot}/{person_id}/{channel}"
            req = NotificationRequest(
                key=key,
                incident_number=self._s.number,
                person_id=person_id,
                person=person,
                channel=channel,
                kind=kind,
                subject=subject,
                text=text,
                page=stop_on_ack,
                via=self._via(person_id),
            )
            self._spawn(self._send(req, stop_on_ack))

    async def _send(self, req: NotificationRequest, stop_on_ack: bool = False) -> None:
        if stop_on_ack and self._s.acknowledged_by:
            self._log("notify", f"Page to {req.person_id} dropped: already acknowledged")
            return
        try:
            result: NotificationResult = await workflow.execute_activity(
                SEND_NOTIFICATION_ACTIVITY,
                req,
                result_type=NotificationResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            cause = err.cause.message if err.cause is not None and hasattr(err.cause, "message") else str(err)
            self._log("notify", f"{req.kind.value} to {req.person_id} by {req.channel} failed: {cause}")
            return
        if result.status != "sent":
            dropped = self._oncall and result.detail and result.status == "dropped"
            detail = f" ({result.detail})" if dropped else ""
            self._log("notify", f"{req.kind.value} to {req.person_id} by {req.channel}: {result.status}{detail}")

    def _publish(self, kind: PublicEventKind, slot: str, message: str, phase: str | None = None) -> None:
        """Tell status-page subscribers, in a fan-out workflow that outlives this one."""
        if not workflow.patched(FANOUT_PATCH):
            return
        s = self._s
        event = PublicEvent(
            key=incident_event_key(s.number, slot),
            kind=kind,
            incident_number=s.number,
            title=s.title,
            components=list(s.components),
            message=message,
            at=workflow.now(),
            phase=phase,
        )
        s.pending_public_events.append(event)
        if not self._continuing:
            self._fanouts.append(asyncio.ensure_future(self._start_fanout(event)))

    async def _start_fanout(self, event: PublicEvent) -> None:
        """Start the event's fan-out workflow (once ever: its id is the event key), then forget it.

        An activity starts it rather than this workflow as a child: the fan-out
        must outlive the incident anyway, and a child's completion event would
        race the continue-as-new. Once a continue-as-new is due no new fan-out
        starts (with status updates arriving back to back there would always be
        one more to wait for): the event stays pending in the state and the next
        run starts it.
        """
        if workflow.patched(FANOUT_BY_ACTIVITY_PATCH):
            await workflow.execute_activity(
                START_FANOUT_ACTIVITY,
                event,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PERSIST_RETRY,
            )
        else:  # histories recorded while the fan-out was a child workflow
            try:
                await workflow.start_child_workflow(
                    FANOUT_WORKFLOW_NAME,
                    FanoutInput(event=event),
                    id=fanout_workflow_id(event.key),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                pass
        pending = self._s.pending_public_events
        pending[:] = [e for e in pending if e.key != event.key]

    # --- pages: each person by their methods, falling back at once ------------------------

    def _page_people(
        self,
        people: Iterable[str],
        kind: NotificationKind,
        slot: str,
        step: int,
        subject: str,
        text: str,
        methods: list[ContactMethod] | None = None,
    ) -> None:
        if not workflow.patched(PAGING_PATCH):
            self._notify(people, kind, slot, subject, text, stop_on_ack=step >= 0)
            return
        for person_id in dict.fromkeys(people):
            person = self._person(person_id)
            if person is None:
                self._log("notify", f"Cannot page '{person_id}': not in the policy")
                continue
            plan = paging.page_plan(self._policy, person, self._s.severity, methods=methods)
            run = PageRun(
                slot=slot,
                step=step,
                person=person_id,
                kind=kind,
                methods=[m.value for m in plan.methods],
                at_once=plan.at_once,
                subject=subject,
                text=text,
            )
            self._s.page_runs.append(run)
            for method in plan.first:
                self._start_attempt(run, method.value)

    def _start_attempt(self, run: PageRun, method: str) -> None:
        s = self._s
        number = len(run.attempts)
        attempt = DeliveryAttempt(
            key=paging.page_key(s.number, run.slot, run.person, number, method),
            method=method,
            attempt=number,
            at=workflow.now(),
        )
        run.attempts.append(attempt)
        req = NotificationRequest(
            key=attempt.key,
            incident_number=s.number,
            person_id=run.person,
            person=self._person(run.person) or self._policy.people[run.person],
            channel=method,
            kind=run.kind,
            subject=run.subject,
            text=run.text,
            step=run.step if run.step >= 0 else None,
            page_cap_seconds=self._policy.page_cap.total_seconds(),
            page=True,
            via=self._page_via(run),
        )
        self._page_tasks[attempt.key] = self._spawn(self._send_page(run, attempt, req))
        self._touch()

    async def _send_page(self, run: PageRun, attempt: DeliveryAttempt, req: NotificationRequest) -> None:
        try:
            result: NotificationResult = await workflow.execute_activity(
                SEND_NOTIFICATION_ACTIVITY,
                req,
                result_type=NotificationResult,
                start_to_close_timeout=PAGE_SEND_TIMEOUT + self._policy.page_cap,
                heartbeat_timeout=PAGE_HEARTBEAT,
                retry_policy=PAGE_RETRY,
                # A withdrawn page may already have reached the provider: learn what
                # really happened instead of assuming it never went out.
                cancellation_type=(
                    workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
                    if workflow.patched(PAGE_CANCEL_WAITS_PATCH)
                    else workflow.ActivityCancellationType.TRY_CANCEL
                ),
            )
        except (asyncio.CancelledError, ActivityError) as err:
            # A withdrawn page surfaces as the cancellation itself or as an activity
            # error caused by it, depending on where the activity was.
            if isinstance(err, ActivityError) and not isinstance(err.cause, CancelledError):
                self._attempt_failed(run, attempt, _failure(err))
            elif attempt.status == "sending":
                attempt.status = "withdrawn"
                attempt.detail = self._withdraw_reason
                self._log("notify", f"{self._attempt_name(run, attempt)} withdrawn before it went out "
                                    f"({self._withdraw_reason})")
            return
        finally:
            self._page_tasks.pop(attempt.key, None)
        if result.status in ("sent", "duplicate"):
            if attempt.status != "sending":
                return  # a delivery callback got here first
            attempt.status = "sent"
            extra = []
            if result.held_seconds >= 0.5:
                extra.append(f"held {result.held_seconds:.0f} s by the per-contact cap")
            if result.bundled_with:
                extra.append("in one message with " + ", ".join(f"#{n}" for n in result.bundled_with))
            attempt.detail = "; ".join(extra)
            tail = f" ({attempt.detail})" if attempt.detail else ""
            self._log("notify", f"{self._attempt_name(run, attempt)}: sent via {result.provider}{tail}")
        elif result.status == "withdrawn":
            if attempt.status == "sending":
                attempt.status = "withdrawn"
                attempt.detail = self._withdraw_reason
                self._log("notify", f"{self._attempt_name(run, attempt)} withdrawn before it went out "
                                    f"({self._withdraw_reason})")
        else:
            why = "outcome unconfirmed (an earlier try stopped mid-send)" if result.status == "unconfirmed" else (
                result.detail or result.status
            )
            self._attempt_failed(run, attempt, why)

    def _attempt_failed(self, run: PageRun, attempt: DeliveryAttempt, why: str) -> None:
        """Fall back to the person's next method at once; when none is left, say so,
        and when nobody on the current level can be reached, page the next level now."""
        if attempt.status in ("failed", "withdrawn"):
            return
        attempt.status = "failed"
        attempt.detail = why
        s = self._s
        name = self._attempt_name(run, attempt)
        if s.status != IncidentStatus.TRIGGERED:
            self._log("notify", f"{name} failed: {why}")
            return
        this_round = run.attempts[run.round_start:]
        tried = {a.method for a in this_round}
        following = next((m for m in run.methods if m not in tried), None)
        if following is not None:
            self._log("notify", f"{name} failed: {why}; trying {following} now")
            self._start_attempt(run, following)
            return
        if any(a.status != "failed" for a in this_round):
            self._log("notify", f"{name} failed: {why}")
            return
        run.unreachable = True
        summary = "; ".join(f"{a.method}: {a.detail}" for a in this_round)
        self._log("notify", f"{name} failed: {why}. {run.person} could not be reached by any method ({summary})")
        every = self._policy.page_retry_every
        if every > timedelta(0) and workflow.patched(PAGE_RETRY_PATCH):
            run.retry_at = workflow.now() + every
            self._log("notify", f"Will page {run.person} again at {run.retry_at:%H:%M:%S} UTC "
                                f"unless the incident is acknowledged first")
        esc = s.escalation
        if run.kind == NotificationKind.FALLBACK or run.step != esc.step or esc.exhausted:
            return
        level = [r for r in s.page_runs if r.slot == run.slot]
        if all(r.unreachable for r in level):
            who = ", ".join(r.person for r in level)
            self._escalate(workflow.now(), reason=f"every contact method of {who} failed")

    def _retry_unreachable(self, now: datetime) -> None:
        """Page again, by every method from the first, each person whose last round all failed."""
        for run in self._s.page_runs:
            if run.retry_at is None or now < run.retry_at:
                continue
            run.retry_at = None
            run.unreachable = False
            run.round_start = len(run.attempts)
            self._log("notify", f"Paging {run.person} again: the incident is still unacknowledged "
                                f"and the last page reached them by no method")
            for method in run.methods[: max(1, run.at_once)]:
                self._start_attempt(run, method)

    def _page_via(self, run: PageRun) -> str | None:
        if not self._oncall:
            return None
        for page in reversed(self._s.pages):
            if page.person == run.person and page.step == run.step:
                return page.via
        return None

    def _cancel_deferred_page(self, why: str) -> None:
        esc = self._s.escalation
        if esc.deferred_until is not None:
            esc.deferred_until = None
            self._log("paging", f"The page waiting for business hours is cancelled: {why}")

    def _withdraw_pages(self, reason: str) -> None:
        """Stop every page of this incident that has not gone out: cancel the activity
        (it heartbeats while the cap holds it) and, should it still run, the send
        activity's last check finds the page no longer wanted."""
        self._withdraw_reason = reason
        for task in list(self._page_tasks.values()):
            task.cancel()

    def _find_attempt(self, key: str) -> tuple[PageRun, DeliveryAttempt] | None:
        for run in reversed(self._s.page_runs):
            for attempt in run.attempts:
                if attempt.key == key:
                    return run, attempt
        return None

    @staticmethod
    def _attempt_name(run: PageRun, attempt: DeliveryAttempt) -> str:
        what = "Fallback page" if run.kind == NotificationKind.FALLBACK else "Page"
        return f"{what} to {run.person} by {attempt.method}"

    async def _flusher(self) -> None:
        """Write the read model: one activity at a time, newest state, never blocking a deadline."""
        while True:
            await workflow.wait_condition(lambda: self._s.version != self._persisted_version and not self._continuing)
            self._writing = True
            s = self._s
            version = s.version
            timeline = [e for e in s.timeline if e.seq > self._persisted_timeline]
            updates = [u for u in s.status_updates if u.seq > self._persisted_status]
            release = s.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED) and not self._release_group_sent
            snapshot = IncidentState.model_validate(s.model_dump(exclude={"timeline", "status_updates", "command_results"}))
            try:
                await workflow.execute_activity(
                    PERSIST_INCIDENT_ACTIVITY,
                    PersistInput(state=snapshot, timeline=timeline, status_updates=updates, release_group=release),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=PERSIST_RETRY,
                )
            finally:
                self._writing = False
            self._persisted_version = version
            if timeline:
                self._persisted_timeline = timeline[-1].seq
            if updates:
                self._persisted_status = updates[-1].seq
            if release:
                self._release_group_sent = True


def _failure(err: ActivityError) -> str:
    """Why an activity gave up, in words for the timeline."""
    cause = err.cause
    message = getattr(cause, "message", None) or str(cause or err)
    retry = err.retry_state
    if retry is not None and retry.name == "MAXIMUM_ATTEMPTS_REACHED":
        return f"gave up after {PAGE_RETRY.maximum_attempts} tries: {message}"
    if retry is not None and retry.name == "TIMEOUT":
        return f"timed out: {message}"
    return message
