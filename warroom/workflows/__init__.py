"""Temporal workflows: deterministic orchestration only.

The names are loaded on first use (PEP 562): the sandbox imports this package
afresh for every workflow run, and a run of one workflow has no need to execute
the modules of the others.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from warroom.workflows.fanout import SubscriberFanoutWorkflow
    from warroom.workflows.incident import IncidentWorkflow
    from warroom.workflows.runbook import RunbookRunWorkflow

_WHERE = {
    "IncidentWorkflow": "warroom.workflows.incident",
    "RunbookRunWorkflow": "warroom.workflows.runbook",
    "SubscriberFanoutWorkflow": "warroom.workflows.fanout",
}

__all__ = ["IncidentWorkflow", "RunbookRunWorkflow", "SubscriberFanoutWorkflow", "WORKFLOWS"]


def __getattr__(name: str) -> Any:
    if name == "WORKFLOWS":
        return [__getattr__(n) for n in ("IncidentWorkflow", "RunbookRunWorkflow", "SubscriberFanoutWorkflow")]
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
