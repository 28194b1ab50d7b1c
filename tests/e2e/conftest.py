"""The whole embedded stack as processes; each test gets a fresh one and its logs on failure."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import Stack


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.failed:
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def make_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make_stack(policy)``: a stack under tmp_path, not started; always torn down.

    Whatever happens in the test, every process group the stack started is
    killed, and when the test failed the log of each process is printed.
    """
    stacks: list[Stack] = []

    def make(policy: dict[str, Any] | None = None) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", policy)
        stacks.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            stack.close()
        if request.node.stash.get(_FAILED, False):
            for stack in stacks:
                print(f"\n===== logs of the stack under {stack.root} =====\n{stack.logs()}")
