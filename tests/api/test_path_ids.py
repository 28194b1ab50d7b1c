"""Every integer in a URL path or query is bounded: an id past 2**31-1 is 422 with the reason, never a 500.

The routes come from the OpenAPI document, so a route added later with an
unbounded ``int`` path or query parameter fails here without anyone listing it. The API
runs with a Temporal client aimed where nothing listens: a route that let the id
through would answer 404/503 (or a 500 from the database), not 422.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import client_as, token_for
from tests.stack import write_policy
from warroom.api.app import create_app
from warroom.api.params import MAX_ID
from warroom.settings import Settings
from warroom.temporal import DATA_CONVERTER

TOO_BIG = [MAX_ID + 1, 2**63, 10**30]


@pytest.fixture
async def app_and_http(primary_engine: Engine, tmp_path: Path) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    client = await Client.connect("127.0.0.1:1", data_converter=DATA_CONVERTER, lazy=True)
    settings = Settings(data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"), command_timeout_seconds=2)
    app = create_app(settings, client=client, engine=primary_engine)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with client_as(transport, token_for(primary_engine, "alice")) as http:
            yield app, http


def int_path_routes(spec: dict[str, Any]) -> list[tuple[str, str, list[str], list[str]]]:
    """(method, path template, its integer path parameters, every path parameter)."""
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = [p for p in op.get("parameters", []) if p["in"] == "path"]
            ints = [p["name"] for p in params if p["schema"].get("type") == "integer"]
            if ints:
                found.append((method.upper(), path, ints, [p["name"] for p in params]))
    return found


async def test_every_integer_path_parameter_refuses_ids_past_32_bits(
    app_and_http: tuple[Any, httpx.AsyncClient],
) -> None:
    app, http = app_and_http
    routes = int_path_routes(app.openapi())
    templates = {path for _, path, _, _ in routes}
    # The walk must see the routes the bug was found on, or it proves nothing.
    for expected in ("/api/incidents/{incident_id}", "/status/incidents/{number}", "/api/maintenance/{window_id}",
                     "/api/incidents/{incident_id}/components",
                     "/api/incidents/{incident_id}/runbook-runs/{run}/steps/{step}/confirm"):
        assert expected in templates
    failures = []
    for method, template, ints, names in routes:
        for bad_name in ints:
            for bad in TOO_BIG:
                path = template
                for name in names:
                    path = path.replace("{" + name + "}", str(bad if name == bad_name else 1))
                resp = await http.request(method, path, json={})
                detail = resp.json().get("detail", "") if resp.headers.get("content-type", "").startswith(
                    "application/json") else ""
                if resp.status_code != 422 or bad_name not in str(detail):
                    failures.append(f"{method} {path} -> {resp.status_code} {resp.text[:120]}")
    assert not failures, "\n".join(failures)


def integer_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer schemas in a parameter's schema (``int | None`` is an anyOf)."""
    if schema.get("type") == "integer":
        return [schema]
    return [s for key in ("anyOf", "oneOf", "allOf") for part in schema.get(key, []) for s in integer_schemas(part)]


def int_query_params(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """(method, path template, an integer query parameter, every path parameter)."""
    found = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            names = [p["name"] for p in params if p["in"] == "path"]
            found.extend((method.upper(), path, p, names) for p in params
                         if p["in"] == "query" and integer_schemas(p["schema"]))
    return found


async def test_every_integer_query_parameter_is_bounded_and_refuses_huge_values(
    app_and_http: tuple[Any, httpx.AsyncClient],
) -> None:
    app, http = app_and_http
    params = int_query_params(app.openapi())
    seen = {(path, p["name"]) for _, path, p, _ in params}
    # The walk must see the parameter the bug was found on, or it proves nothing.
    assert ("/api/audit", "before") in seen and ("/api/notifications", "incident_id") in seen
    unbounded = [f"{m} {path} ?{p['name']}" for m, path, p, _ in params
                 if any(s.get("maximum") is None for s in integer_schemas(p["schema"]))]
    assert not unbounded, "integer query parameters without a maximum:\n" + "\n".join(unbounded)
    failures = []
    for method, template, param, names in params:
        path = template
        for name in names:
            path = path.replace("{" + name + "}", "1")
        for bad in ("99999999999999999999", str(2**63), str(MAX_ID + 1)):
            maximum = min(s["maximum"] for s in integer_schemas(param["schema"]))
            if int(bad) <= maximum:
                continue
            resp = await http.request(method, path, params={param["name"]: bad})
            detail = resp.json().get("detail", "") if resp.headers.get("content-type", "").startswith(
                "application/json") else ""
            if resp.status_code != 422 or param["name"] not in str(detail):
                failures.append(f"{method} {path}?{param['name']}={bad} -> {resp.status_code} {resp.text[:120]}")
    assert not failures, "\n".join(failures)
