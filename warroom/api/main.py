"""Entry points of the API process.

``python -m warroom.api.main`` serves on ``WARROOM_HTTP_HOST``:``WARROOM_HTTP_PORT``
(what the container runs); ``uvicorn --factory warroom.api.main:app`` works too.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

from warroom.api.app import create_app
from warroom.logs import configure_logging
from warroom.models.policy import PolicyError
from warroom.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        return create_app(settings)
    except PolicyError as err:
        sys.exit(f"warroom api: cannot start: {err}")


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "warroom.api.main:app",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # warroom.logs configures every logger, uvicorn's included
    )


if __name__ == "__main__":
    main()
