"""Preparing the ``run_runbook`` command, shared by every front end (API, CLI, web).

A front end resolves its caller to an actor and a capability (see
``warroom.api.runbooks.runbook_caller``), then calls ``prepare_run``: it answers
what can be answered without the incident (unknown runbook, bad parameters, no
right to run destructive steps) and otherwise returns the command for the
incident's workflow, whose validator has the last word.
"""

from __future__ import annotations

from typing import Any

from warroom.models.runbook import RunbookRunInput, check_params
from warroom.runbooks.catalogue import Catalogue


class UnknownRunbook(LookupError):
    pass


class NotAllowed(PermissionError):
    pass


def prepare_run(
    catalogue: Catalogue,
    runbook_id: str,
    params: dict[str, Any],
    *,
    actor: str,
    can_run_destructive: bool,
    confirm_destructive: bool = False,
    reason: str = "",
) -> RunbookRunInput:
    """The command to send, or UnknownRunbook / ParameterError / NotAllowed with the reason."""
    rb = catalogue.get(runbook_id)
    if rb is None:
        known = ", ".join(catalogue.runbooks) or "none"
        raise UnknownRunbook(f"no runbook '{runbook_id}' (runbooks: {known})")
    check_params(rb, params)
    if rb.destructive and not can_run_destructive:
        raise NotAllowed(f"{actor} may not run '{rb.title}': it has destructive steps")
    return RunbookRunInput(
        runbook=rb,
        params=params,
        actor=actor,
        can_run_destructive=can_run_destructive,
        confirm_destructive=confirm_destructive,
        reason=reason,
    )
