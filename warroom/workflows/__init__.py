"""Temporal workflows: deterministic orchestration only."""

from warroom.workflows.action_items import ActionItemsWorkflow
from warroom.workflows.fanout import SubscriberFanoutWorkflow
from warroom.workflows.incident import IncidentWorkflow
from warroom.workflows.runbook import RunbookRunWorkflow

WORKFLOWS = [IncidentWorkflow, RunbookRunWorkflow, SubscriberFanoutWorkflow, ActionItemsWorkflow]

__all__ = ["ActionItemsWorkflow", "IncidentWorkflow", "RunbookRunWorkflow", "SubscriberFanoutWorkflow", "WORKFLOWS"]
