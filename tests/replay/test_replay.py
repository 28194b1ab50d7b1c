"""Replay recorded incident histories against today's IncidentWorkflow.

A change that makes the workflow issue different commands for the same
history (an activity moved, a timer added, a branch reordered) would break
every incident running when it is deployed; here it fails instead. Such a
change must go through ``workflow.patched``. The histories are recorded by
``tests/replay/record_histories.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from warroom.temporal import DATA_CONVERTER
from warroom.workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))


def test_the_recorded_scenarios_are_all_there() -> None:
    names = {path.stem.split("-")[0] for path in HISTORIES}
    assert names >= {"ack_path", "full_escalation", "resolve_and_postmortem", "severity_and_updates", "continued_as_new",
                     "postmortem_author_and_action_items", "action_item_tracker", "sev4_notices", "public_phases",
                     "action_item_changes"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_nondeterminism(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
