"""Temporal workflows: deterministic orchestration only."""

from warroom.workflows.fanout import SubscriberFanoutWorkflow
from warroom.workflows.incident import IncidentWorkflow

WORKFLOWS = [IncidentWorkflow, SubscriberFanoutWorkflow]

__all__ = ["IncidentWorkflow", "SubscriberFanoutWorkflow", "WORKFLOWS"]
