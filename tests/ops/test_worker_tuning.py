"""The worker's pollers scale with load, and the workflow sandbox does not recompile per run."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling

import warroom.workflows.incident
from warroom.activities.notify import NotifierRegistry
from warroom.activities.incident import IncidentActivities
from warroom.settings import Settings
from warroom.temporal import PASSTHROUGH_MODULES, WORKFLOW_RUNNER, precompile_workflows
from warroom.worker import build_worker


async def test_worker_pollers_autoscale(client: Client, primary_engine: Engine, tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=1) as executor:
        worker = build_worker(client, Settings(data_dir=tmp_path), IncidentActivities(primary_engine, NotifierRegistry()),
                              executor)
        config = worker.config()
    assert isinstance(config["workflow_task_poller_behavior"], PollerBehaviorAutoscaling)
    assert isinstance(config["activity_task_poller_behavior"], PollerBehaviorAutoscaling)
    assert config["workflow_runner"] is WORKFLOW_RUNNER


def test_sandbox_passes_libraries_through_but_not_workflow_code() -> None:
    restrictions = WORKFLOW_RUNNER.restrictions
    assert {"pydantic", "pydantic_core"} <= restrictions.passthrough_modules
    assert set(PASSTHROUGH_MODULES) <= restrictions.passthrough_modules
    assert not any(m.startswith("warroom") for m in restrictions.passthrough_modules)
    assert not restrictions.passthrough_all_modules


def test_precompile_writes_the_bytecode_the_sandbox_imports() -> None:
    source = warroom.workflows.incident.__file__
    cached = Path(importlib.util.cache_from_source(source))
    shutil.rmtree(cached.parent, ignore_errors=True)
    assert precompile_workflows() >= 4
    assert cached.exists()
