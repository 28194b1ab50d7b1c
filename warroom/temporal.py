"""Connecting to Temporal with the one data converter every process uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter

T = TypeVar("T")


async def connect(target: str, namespace: str = "default") -> Client:
    return await Client.connect(target, namespace=namespace, data_converter=DATA_CONVERTER)


class NoAnswer(TimeoutError):
    """A workflow did not answer an update within ``seconds`` (no worker, or one too busy)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no answer within {seconds:g} s")
        self.seconds = seconds


async def answer_within(awaitable: Awaitable[T], seconds: float) -> T:
    """Await a workflow update for at most ``seconds``; past that, ``NoAnswer`` saying how long
    was waited (an outer timeout then reports this one, not its own)."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except (TimeoutError, RPCTimeoutOrCancelledError):
        # wait_for cancels the update in flight, which the SDK raises as RPCTimeoutOrCancelledError.
        raise NoAnswer(seconds) from None


# --- the workflow sandbox ---------------------------------------------------------------

import compileall  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions  # noqa: E402

log = logging.getLogger("warroom.temporal")

PASSTHROUGH_MODULES = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection", "typing_extensions", "yaml")
"""Deterministic, side-effect-free libraries the workflow models use: imported once per
process instead of once per workflow run (the sandbox still guards the workflow code)."""

WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
)
"""The one sandbox configuration: the worker, the tests' workers and the replayer use it."""


def precompile_workflows() -> int:
    """Write the bytecode of the workflow modules; return how many files were compiled.

    The sandbox imports each workflow module afresh for every workflow run (so
    no state leaks between runs). Without a ``.pyc`` (an editable install, or
    ``PYTHONDONTWRITEBYTECODE=1``) every run compiled incident.py again, about a
    third of the worker's CPU. ``compileall`` writes the cache even when Python
    itself would not; a read-only install (the image, compiled by pip) is left as
    it is.
    """
    import warroom
    import warroom.workflows

    root = Path(warroom.__file__).parent
    files = [root / "__init__.py", *sorted(Path(warroom.workflows.__file__).parent.glob("*.py"))]
    compiled = 0
    for path in files:
        try:
            if compileall.compile_file(str(path), quiet=2):
                compiled += 1
        except OSError as err:  # pragma: no cover - read-only install
            log.debug("no bytecode written for %s: %s", path, err)
    return compiled
