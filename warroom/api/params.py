"""Bounds every integer in a URL path or query shares.

Ids are INTEGER columns (32 bits on PostgreSQL): a larger id is malformed input,
answered 422 with the reason, never a database overflow answered 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

MAX_ID = 2**31 - 1


def path_id(description: str, ge: int = 1) -> Any:
    """``Annotated[int, path_id("...")]``: a path id between ``ge`` and MAX_ID."""
    return Path(ge=ge, le=MAX_ID, description=description)


def query_id(description: str, ge: int = 1) -> Any:
    """``Annotated[int | None, query_id("...")]``: an id in the query string, between ``ge`` and MAX_ID."""
    return Query(ge=ge, le=MAX_ID, description=description)


RunNumber = Annotated[int, path_id("the run's number within its incident, from 1")]
StepNumber = Annotated[int, path_id("the step's number within its run, from 1")]
