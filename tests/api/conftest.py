from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.api.support import Api, serving


@pytest.fixture
async def api(client: Client, engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    """The API on a second-scale policy where nothing fires during a short test."""
    async with serving(client, engine, tmp_path) as a:
        yield a

