"""Temporal workflows: deterministic orchestration only."""

from warroom.workflows.action_items import ActionItemsWorkflow
from warroom.workflows.fanout import SubscriberFanoutWorkflow
from warroom.workflows.heartbeat import HeartbeatWorkflow
from warroom.workflows.incident import IncidentWorkflow
from warroom.workflows.runbook import RunbookRunWorkflow
from warroom.workflows.uptime import UptimeCheckWorkflow

WORKFLOWS = [IncidentWorkflow, RunbookRunWorkflow, SubscriberFanoutWorkflow, ActionItemsWorkflow, HeartbeatWorkflow,
             UptimeCheckWorkflow]

__all__ = ["ActionItemsWorkflow", "HeartbeatWorkflow", "IncidentWorkflow", "RunbookRunWorkflow",
           "SubscriberFanoutWorkflow", "UptimeCheckWorkflow", "WORKFLOWS"]
