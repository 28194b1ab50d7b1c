"""Temporal workflows: deterministic orchestration only."""

from warroom.workflows.incident import IncidentWorkflow
from warroom.workflows.runbook import RunbookRunWorkflow

WORKFLOWS = [IncidentWorkflow, RunbookRunWorkflow]

__all__ = ["IncidentWorkflow", "RunbookRunWorkflow", "WORKFLOWS"]
