"""The read model of action items, written by their tracker workflow (idempotently:
an older version never overwrites a newer one, and a repeat changes nothing)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity

from warroom.models.action_items import ActionItemsPersist
from warroom.models.ids import PERSIST_ACTION_ITEMS_ACTIVITY
from warroom.models.tables import ActionItemRow


class ActionItemActivities:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name=PERSIST_ACTION_ITEMS_ACTIVITY)
    def persist_action_items(self, inp: ActionItemsPersist) -> None:
        s = inp.state
        for _attempt in range(2):
            try:
                with Session(self._engine) as session, session.begin():
                    for it in s.items:
                        row = session.get(ActionItemRow, (s.number, it.index))
                        if row is None:
                            row = ActionItemRow(incident_number=s.number, idx=it.index, version=-1)
                            session.add(row)
                        elif row.version > s.version:
                            continue
                        row.title, row.owner, row.due, row.priority = it.title, it.owner, it.due, it.priority
                        row.severity = s.severity
                        row.done_at, row.done_by = it.done_at, it.done_by
                        row.overdue_notified = it.overdue_notified
                        row.version = s.version
                return
            except IntegrityError:
                continue  # another attempt inserted the same row first: read it and compare versions

    def all(self) -> list[Callable[..., object]]:
        return [self.persist_action_items]
