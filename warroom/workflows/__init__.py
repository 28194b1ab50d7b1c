"""Temporal workflows: deterministic orchestration only."""

from warroom.workflows.fanout import SubscriberFanoutWorkflow
from warroom.workflows.heartbeat import HeartbeatWorkflow
from warroom.workflows.incident import IncidentWorkflow
from warroom.workflows.runbook import RunbookRunWorkflow
from warroom.workflows.uptime import UptimeCheckWorkflow

WORKFLOWS = [IncidentWorkflow, RunbookRunWorkflow, SubscriberFanoutWorkflow, HeartbeatWorkflow,
             UptimeCheckWorkflow]

__all__ = ["HeartbeatWorkflow", "IncidentWorkflow", "RunbookRunWorkflow", "SubscriberFanoutWorkflow", "UptimeCheckWorkflow", "WORKFLOWS"]
