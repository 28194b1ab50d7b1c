"""Temporal workflows: deterministic orchestration only.

The names are loaded on first use (PEP 562): the sandbox imports this package
afresh for every workflow run, and a run of one workflow has no need to execute
the modules of the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warroom.workflows.action_items import ActionItemsWorkflow
    from warroom.workflows.fanout import SubscriberFanoutWorkflow
    from warroom.workflows.heartbeat import HeartbeatWorkflow
    from warroom.workflows.incident import IncidentWorkflow
    from warroom.workflows.runbook import RunbookRunWorkflow
    from warroom.workflows.uptime import UptimeCheckWorkflow

_WHERE = {
    "IncidentWorkflow": "warroom.workflows.incident",
    "RunbookRunWorkflow": "warroom.workflows.runbook",
    "SubscriberFanoutWorkflow": "warroom.workflows.fanout",
    "ActionItemsWorkflow": "warroom.workflows.action_items",
    "HeartbeatWorkflow": "warroom.workflows.heartbeat",
    "UptimeCheckWorkflow": "warroom.workflows.uptime",
}

__all__ = [*_WHERE, "WORKFLOWS"]


def __getattr__(name: str) -> Any:
    if name == "WORKFLOWS":
        return [__getattr__(n) for n in _WHERE]
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
