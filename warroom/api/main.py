"""Entry point for uvicorn: ``uvicorn --factory warroom.api.main:app``."""

from fastapi import FastAPI

from warroom.api.app import create_app
from warroom.logs import configure_logging
from warroom.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)
