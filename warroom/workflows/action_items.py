"""The action items of one incident's postmortem, tracked until each is done.

Started by the incident's workflow when its postmortem is accepted (it outlives the
incident). For every open item: the owner is reminded before the due date (the
policy's ``action_item_reminders_before``); once it is overdue the engineering lead
is told, exactly once. ``complete`` marks an item done; ``edit`` rewords, reassigns,
reprioritises or moves an open item; ``add`` tracks one found after the postmortem (the API
starts the tracker again, with what it held, when every earlier item was done). The
tracker may live for months, so it continues as new before its history grows large.

Deterministic: time from ``workflow.now()``; sends and read-model writes are activities.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from warroom.models import action_items as rules
    from warroom.models import paging
    from warroom.models.action_items import (
        ActionItemsInput,
        ActionItemsPersist,
        ActionItemsState,
        AddItemInput,
        CompleteItemInput,
        EditItemInput,
        TrackedItem,
    )
    from warroom.models.ids import INVALID_COMMAND, PERSIST_ACTION_ITEMS_ACTIVITY, SEND_NOTIFICATION_ACTIVITY
    from warroom.models.incident import NotificationKind, NotificationRequest, NotificationResult
    from warroom.models.policy import Person

NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
                           maximum_attempts=3, non_retryable_error_types=["PermanentDeliveryError"])
PERSIST_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
MAX_REMEMBERED = 100


def _reject(message: str, *, invalid: bool = False) -> None:
    """Refuse a command; ``invalid``: because of what its input says (a 422, not a 409)."""
    details = (INVALID_COMMAND,) if invalid else ()
    raise ApplicationError(message, *details, type="CommandRejected", non_retryable=True)


@workflow.defn
class ActionItemsWorkflow:
    @workflow.init
    def __init__(self, inp: ActionItemsInput) -> None:
        self._inp = inp
        self._policy = inp.policy
        self._s: ActionItemsState = inp.carried or ActionItemsState(
            number=inp.number, title=inp.title, severity=inp.severity, items=rules.tracked(inp.items)
        )
        self._dirty = False
        self._tasks: list[asyncio.Task[None]] = []
        self._persisted = -1
        self._write_lock = asyncio.Lock()

    @workflow.run
    async def run(self, inp: ActionItemsInput) -> ActionItemsState:
        self._s.version += 1  # a new run writes its state again (writes are idempotent)
        while True:
            self._dirty = False
            self._process(workflow.now())
            await self._persist()
            if rules.all_done(self._s.items):
                # An item added while the last one was being completed keeps the tracker going.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and all(t.done() for t in self._tasks)
                )
                if rules.all_done(self._s.items):
                    break
                continue
            if self._should_continue_as_new(inp):
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and all(t.done() for t in self._tasks)
                )
                workflow.continue_as_new(
                    ActionItemsInput(number=inp.number, title=inp.title, severity=inp.severity, policy=self._policy,
                                     contacts=inp.contacts, carried=self._s,
                                     force_continue_after=inp.force_continue_after)
                )
            if self._dirty:
                continue  # a command arrived while the state was being written
            wake = rules.next_wakeup(self._s.items, self._policy)
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
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and all(t.done() for t in self._tasks))
        await self._persist()
        return self._s

    def _should_continue_as_new(self, inp: ActionItemsInput) -> bool:
        info = workflow.info()
        length = info.get_current_history_length()
        limit = inp.force_continue_after or self._policy.action_item_history_limit
        return info.is_continue_as_new_suggested() or length >= limit

    # --- what falls due ---------------------------------------------------------------

    def _process(self, now: datetime) -> None:
        n = self._s.number
        for it in self._s.items:
            if rules.reminder_due(it, self._policy, now):
                it.reminders_sent = rules.reminders_passed(it, self._policy, now)
                subject, text = rules.reminder_message(n, it, now)
                self._notify([it.owner], NotificationKind.REMINDER, it.slot(f"reminder-{it.reminders_sent}"),
                             subject, text)
                self._s.version += 1
            if rules.escalation_due(it, now):
                it.overdue_notified = True
                it.reminders_sent = len(rules.reminder_times(it, self._policy))
                lead = self._policy.engineering_lead
                subject, text = rules.overdue_message(n, it, now)
                self._notify([lead] if lead else [it.owner], NotificationKind.ESCALATION,
                             it.slot("overdue"), subject, text)
                self._s.version += 1

    # --- commands and reads --------------------------------------------------------------

    @workflow.update
    async def complete(self, cmd: CompleteItemInput) -> str:
        """Mark an item done; answers once the read model says so too."""
        uid, earlier = self._earlier()
        if earlier is not None:
            return earlier
        it = self._item(cmd.index)
        assert it is not None
        it.done_at = workflow.now()
        it.done_by = cmd.by
        late = it.done_at > it.due
        answer = f"action item {cmd.index} of #{self._s.number} is done{' (late)' if late else ''}"
        return await self._answer(uid, answer)

    def _earlier(self) -> tuple[str | None, str | None]:
        """This update's id, and the answer it already got when it is a client's retry."""
        info = workflow.current_update_info()
        uid = info.id if info else None
        return uid, (self._s.command_results.get(uid) if uid else None)

    async def _answer(self, uid: str | None, answer: str) -> str:
        """Remember a command's answer (a retried update answers the same), write the state."""
        if uid:
            self._s.command_results[uid] = answer
            while len(self._s.command_results) > MAX_REMEMBERED:
                self._s.command_results.pop(next(iter(self._s.command_results)))
        self._s.version += 1
        self._dirty = True
        await self._persist()
        return answer

    @workflow.update
    async def add(self, cmd: AddItemInput) -> str:
        """Track one more item; its owner is told it is theirs."""
        uid, earlier = self._earlier()
        if earlier is not None:
            return earlier
        now = workflow.now()
        it = TrackedItem(index=max((i.index for i in self._s.items), default=0) + 1, title=cmd.title.strip(),
                         owner=cmd.owner, due=cmd.due, priority=cmd.priority, added_by=cmd.by)
        it.reminders_sent = rules.reminders_passed(it, self._policy, now)  # none of those already past
        self._s.items.append(it)
        self._learn(cmd.owner, cmd.contact)
        if cmd.owner != cmd.by:
            self._notify([cmd.owner], NotificationKind.ROLE, it.slot("assigned"),
                         *rules.assigned_message(self._s.number, it, cmd.by))
        return await self._answer(uid, f"action item {it.index} of #{self._s.number} added for {it.owner}")

    @add.validator
    def _validate_add(self, cmd: AddItemInput) -> None:
        if self._earlier()[1] is not None:
            return
        problems = rules.problems_of(cmd, workflow.now())
        if len(self._s.items) >= rules.MAX_TRACKED:
            problems.append(f"incident #{self._s.number} already tracks {rules.MAX_TRACKED} action items")
        if self._person(cmd.owner) is None and cmd.contact is None:
            problems.append(f"owner '{cmd.owner}' is not a person warroom knows, so nobody could be reminded")
        if problems:
            _reject("; ".join(problems), invalid=True)

    @workflow.update
    async def edit(self, cmd: EditItemInput) -> str:
        """Change an open item; a new owner is told it is theirs."""
        uid, earlier = self._earlier()
        if earlier is not None:
            return earlier
        it = self._item(cmd.index)
        assert it is not None
        before = it.owner
        changed = rules.apply_edit(it, cmd, self._policy, workflow.now())
        if it.owner != before:
            self._learn(it.owner, cmd.contact)
            if it.owner != cmd.by:
                self._notify([it.owner], NotificationKind.ROLE, it.slot("assigned"),
                             *rules.assigned_message(self._s.number, it, cmd.by))
        return await self._answer(uid, f"action item {cmd.index} of #{self._s.number}: {'; '.join(changed)}")

    @edit.validator
    def _validate_edit(self, cmd: EditItemInput) -> None:
        if self._earlier()[1] is not None:
            return
        it = self._item(cmd.index)
        if it is None:
            _reject(f"incident #{self._s.number} has no action item {cmd.index} (it has {len(self._s.items)})")
            return
        if it.done_at is not None:
            _reject(f"action item {cmd.index} of #{self._s.number} was already done by {it.done_by}")
        problems = rules.problems_of(cmd, workflow.now())
        if cmd.owner is not None and self._person(cmd.owner) is None and cmd.contact is None:
            problems.append(f"owner '{cmd.owner}' is not a person warroom knows, so nobody could be reminded")
        if problems:
            _reject("; ".join(problems), invalid=True)
        if not rules.apply_edit(it.model_copy(), cmd, self._policy, workflow.now()):
            _reject(f"action item {cmd.index} of #{self._s.number} already reads so; nothing to change", invalid=True)

    @complete.validator
    def _validate_complete(self, cmd: CompleteItemInput) -> None:
        if self._earlier()[1] is not None:
            return
        it = self._item(cmd.index)
        if it is None:
            _reject(f"incident #{self._s.number} has no action item {cmd.index} (it has {len(self._s.items)})")
        elif it.done_at is not None:
            _reject(f"action item {cmd.index} of #{self._s.number} was already done by {it.done_by}")

    @workflow.query
    def view(self) -> ActionItemsState:
        return self._s

    def _item(self, index: int) -> TrackedItem | None:
        return next((it for it in self._s.items if it.index == index), None)

    # --- side effects --------------------------------------------------------------------

    async def _persist(self) -> None:
        async with self._write_lock:  # the main loop and a command may both want to write
            if self._persisted >= self._s.version:
                return
            version = self._s.version
            await workflow.execute_activity(
                PERSIST_ACTION_ITEMS_ACTIVITY,
                ActionItemsPersist(state=self._s.model_copy(deep=True)),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PERSIST_RETRY,
            )
            self._persisted = version

    def _person(self, person_id: str) -> Person | None:
        return (self._policy.people.get(person_id) or self._inp.contacts.get(person_id)
                or self._s.contacts.get(person_id))

    def _learn(self, person_id: str, contact: Person | None) -> None:
        """Keep how to reach a person the tracker's policy did not know (carried across runs)."""
        if contact is not None and self._policy.people.get(person_id) is None:
            self._s.contacts[person_id] = contact

    def _notify(self, people: list[str], kind: NotificationKind, slot: str, subject: str, text: str) -> None:
        for person_id in dict.fromkeys(people):
            person = self._person(person_id)
            if person is None:
                workflow.logger.warning("cannot notify '%s': not in the policy", person_id)
                continue
            channel = paging.notice_method(person).value
            req = NotificationRequest(
                key=f"incident-{self._s.number}/{slot}/{person_id}/{channel}",
                incident_number=self._s.number, person_id=person_id, person=person, channel=channel,
                kind=kind, subject=subject, text=text, page=False,
            )
            self._tasks.append(asyncio.ensure_future(self._send(req)))
            self._tasks = [t for t in self._tasks if not t.done()]

    async def _send(self, req: NotificationRequest) -> None:
        try:
            await workflow.execute_activity(
                SEND_NOTIFICATION_ACTIVITY, req, result_type=NotificationResult,
                start_to_close_timeout=timedelta(seconds=30), retry_policy=NOTIFY_RETRY,
            )
        except ActivityError as err:
            workflow.logger.warning("notification %s failed: %s", req.key, err)
