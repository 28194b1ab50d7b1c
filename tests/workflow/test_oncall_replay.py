"""Incidents recorded before on-call routing existed still replay with today's code.

The histories in ``histories/pre-oncall-*.json`` were recorded by the workflow as
it was before schedules, routing and page-time resolution (flat people, one
escalation): a SEV-2 that escalated and was acknowledged, a SEV-4 that paged
nobody, a SEV-1 whose escalation ran out. The new behaviour is behind
``workflow.patched``; if it leaked into the old path, replay fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from warroom.temporal import DATA_CONVERTER
from warroom.workflows import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("pre-oncall-*.json"))


def test_the_recorded_histories_are_there() -> None:
    assert len(HISTORIES) == 3


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_a_history_recorded_before_oncall_routing_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
