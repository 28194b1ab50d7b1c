"""Connecting to Temporal with the one data converter every process uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter


async def connect(target: str, namespace: str = "default") -> Client:
    return await Client.connect(target, namespace=namespace, data_converter=DATA_CONVERTER)


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
