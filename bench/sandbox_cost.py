"""What the workflow sandbox costs per workflow run, before and after warroom's settings.

The sandbox imports each workflow module afresh for every run. This replays the
committed histories (tests/replay/histories) ``--rounds`` times in a fresh
process per configuration and reports the process CPU time per replayed run:

- ``before``: the SDK's default sandbox and no bytecode cache (an editable
  install with ``PYTHONDONTWRITEBYTECODE=1``, as the embedded stack runs);
- ``after``: ``warroom.temporal.WORKFLOW_RUNNER`` and ``precompile_workflows()``,
  as ``python -m warroom.worker`` does at start.

    .venv/bin/python bench/sandbox_cost.py --rounds 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import asyncio, json, sys, time
from pathlib import Path
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from warroom.temporal import DATA_CONVERTER, WORKFLOW_RUNNER, precompile_workflows
from warroom.workflows import WORKFLOWS
mode, rounds = sys.argv[1], int(sys.argv[2])
kwargs = {}
if mode == "after":
    precompile_workflows()
    kwargs["workflow_runner"] = WORKFLOW_RUNNER
histories = [WorkflowHistory.from_json(p.stem, p.read_text())
             for p in sorted(Path("tests/replay/histories").glob("*.json"))]
async def replay(n):
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER, **kwargs)
    async def each():
        for _ in range(n):
            for h in histories:
                yield h
    async with replayer.workflow_replay_iterator(each()) as results:
        async for result in results:
            assert result.replay_failure is None, result.replay_failure
asyncio.run(replay(1))  # warm-up: the process's own imports
start = time.process_time()
asyncio.run(replay(rounds))
print(json.dumps({"cpu": time.process_time() - start, "runs": rounds * len(histories)}))
"""


def measure(mode: str, rounds: int) -> dict[str, float]:
    for cache in (ROOT / "warroom").rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(rounds)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"the {mode} measurement failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="replays of every committed history (default 10)")
    args = parser.parse_args(argv)
    before, after = measure("before", args.rounds), measure("after", args.rounds)
    per_before = before["cpu"] / before["runs"] * 1000
    per_after = after["cpu"] / after["runs"] * 1000
    print(f"sandbox CPU per workflow run ({int(before['runs'])} replays): "
          f"before {per_before:.1f} ms, after {per_after:.1f} ms ({100 * (1 - per_after / per_before):.0f}% less)")
    return {"before_ms": per_before, "after_ms": per_after}


if __name__ == "__main__":
    main()
