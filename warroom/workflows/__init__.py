"""Temporal workflows: deterministic orchestration only."""

from warroom.workflows.fanout import SubscriberFanoutWorkflow
from warroom.workflows.incident import IncidentWorkflow
from warroom.workflows.runbook import RunbookRunWorkflow

WORKFLOWS = [IncidentWorkflow, RunbookRunWorkflow, SubscriberFanoutWorkflow]

__all__ = ["IncidentWorkflow", "RunbookRunWorkflow", "SubscriberFanoutWorkflow", "WORKFLOWS"]
