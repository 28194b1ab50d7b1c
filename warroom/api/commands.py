"""Sending commands and queries to incident workflows, with precise HTTP errors."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import HTTPException
from temporalio.client import Client, RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from warroom.models.ids import INVALID_COMMAND, incident_workflow_id
from warroom.temporal import NoAnswer

T = TypeVar("T")

UNREACHABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}
RETRY_AFTER_SECONDS = 5
"""What a 503 tells the caller to wait before trying again (the ``Retry-After`` header)."""


class IncidentGone(Exception):
    """The workflow does not exist or has finished; the caller decides between 404 and 409."""


def temporal_unavailable(detail: str = "Temporal is unreachable; try again shortly") -> HTTPException:
    return HTTPException(status_code=503, detail=detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def no_answer(timeout: float, what: str) -> HTTPException:
    """The workflow did not answer in time: no worker, or one too busy. The command may
    still be carried out later; sending it again is safe (commands act once)."""
    return temporal_unavailable(
        f"no answer from the incident's workflow within {timeout:g} s while {what}; is a worker running? "
        "The command may still take effect; sending it again is safe"
    )


async def call(awaitable: Awaitable[T], timeout: float, what: str) -> T:
    """Await a Temporal call, turning its failures into HTTP answers."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            # 422: the input itself is wrong (the workflow said so); 409: the incident's state refuses it.
            status = 422 if INVALID_COMMAND in cause.details else 409
            raise HTTPException(status_code=status, detail=cause.message) from None
        raise HTTPException(status_code=409, detail=str(cause or err)) from None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise IncidentGone(err.message) from None
        if err.status in UNREACHABLE:
            raise temporal_unavailable() from None
        raise HTTPException(status_code=502, detail=f"Temporal refused the request: {err.message}") from None
    except NoAnswer as err:  # an inner, shorter timeout ran out first: report that one
        raise no_answer(err.seconds, what) from None
    except (asyncio.TimeoutError, TimeoutError, RPCTimeoutOrCancelledError):
        # ``wait_for`` cancels an update in flight, and the SDK turns that cancellation
        # into WorkflowUpdateRPCTimeoutOrCancelledError rather than a CancelledError.
        raise no_answer(timeout, what) from None
    except (ConnectionError, OSError):
        raise temporal_unavailable() from None
    except RuntimeError as err:
        # A lazy client connects on its first call; when Temporal is down the SDK
        # raises a bare RuntimeError("Failed client connect: ...") rather than an RPCError.
        if "client connect" in str(err).lower():
            raise temporal_unavailable() from None
        raise


async def update(client: Client, number: int, method: Any, arg: Any, timeout: float,
                 update_id: str | None = None) -> Any:
    """Run a command; one ``update_id`` (see command_update_id) acts once, however often sent."""
    handle = client.get_workflow_handle(incident_workflow_id(number))
    return await call(handle.execute_update(method, arg, id=update_id), timeout, "running the command")


def command_update_id(person: str, idempotency_key: str | None, arg: Any) -> str | None:
    """The workflow update id of a command sent with an Idempotency-Key: the same person,
    key and command act once (the incident remembers the answer, across continue-as-new);
    the same key with another command is another request."""
    if not idempotency_key:
        return None
    request = f"{person}\0{idempotency_key}\0{type(arg).__name__}\0{arg.model_dump_json()}"
    return "api-" + hashlib.sha256(request.encode()).hexdigest()
