"""Connecting to Temporal with the one data converter every process uses."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

DATA_CONVERTER = pydantic_data_converter


async def connect(target: str, namespace: str = "default") -> Client:
    return await Client.connect(target, namespace=namespace, data_converter=DATA_CONVERTER)
