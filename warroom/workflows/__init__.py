"""Temporal workflows: deterministic orchestration only."""

from warroom.workflows.incident import IncidentWorkflow

WORKFLOWS = [IncidentWorkflow]

__all__ = ["IncidentWorkflow", "WORKFLOWS"]
