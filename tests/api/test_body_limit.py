"""Request bodies over the limit are refused with 413 and the reason before anything reads
them (authentication and body parsing included): at once from Content-Length, and as soon
as a chunked body passes the limit. Large but legal bodies (postmortems, alert groups) pass."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import Engine

from tests.api.statuspage_helpers import api, settings_for
from tests.api.support import Api
from tests.api.test_postmortems import complete, resolved
from tests.stack import case
from warroom.api.app import create_app

CHUNK = 64 * 1024
HUGE = 150 * 1024**2


class Stream:
    """A 150 MB body made on demand, counting how much of it the server asked for."""

    def __init__(self, total: int = HUGE) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += CHUNK
            yield b"x" * CHUNK


def small_app(tmp_path: Path, engine: Engine) -> object:
    settings = settings_for(tmp_path).model_copy(update={"max_request_bytes": 256 * 1024,
                                                         "max_alert_request_bytes": 512 * 1024})
    return create_app(settings, engine=engine)


async def test_a_declared_length_over_the_limit_is_refused_before_reading(engine: Engine, tmp_path: Path) -> None:
    async with api(small_app(tmp_path, engine)) as http:  # type: ignore[arg-type]
        anonymous = httpx.AsyncClient(transport=http._transport, base_url="http://warroom.test")
        for path in ("/api/reports", "/api/incidents", "/api/webhooks/alertmanager/wri_wrong", "/status/subscribe"):
            body = Stream()
            answer = await anonymous.post(path, content=body, headers={"content-length": str(HUGE),
                                                                        "content-type": "application/json"})
            assert answer.status_code == 413, (path, answer.text)
            assert body.sent == 0, f"{path}: read {body.sent} bytes of a body it refuses"
        assert answer.json()["detail"] == "the request body is larger than 262144 bytes, the most this endpoint accepts"
        bad_length = await anonymous.post("/api/reports", content=b"{}", headers={"content-length": "12x"})
        assert bad_length.status_code == 400 and "Content-Length" in bad_length.json()["detail"]


async def test_a_chunked_body_is_refused_once_it_passes_the_limit(engine: Engine, tmp_path: Path) -> None:
    async with api(small_app(tmp_path, engine)) as http:  # type: ignore[arg-type]
        anonymous = httpx.AsyncClient(transport=http._transport, base_url="http://warroom.test")
        cases = {"/api/reports": 256 * 1024, "/api/incidents": 256 * 1024,
                 "/api/webhooks/alertmanager/wri_wrong": 512 * 1024, "/api/webhooks/generic": 512 * 1024}
        for path, limit in cases.items():
            body = Stream()
            answer = await anonymous.post(path, content=body, headers={"content-type": "application/json"})
            assert answer.status_code == 413, (path, answer.status_code, answer.text[:200])
            assert f"larger than {limit} bytes" in answer.json()["detail"]
            assert body.sent <= limit + CHUNK, f"{path}: read {body.sent} bytes past a {limit}-byte limit"
        # With a valid token too: the limit holds for everyone.
        body = Stream()
        answer = await http.post("/api/incidents", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 413 and body.sent <= 256 * 1024 + CHUNK


async def test_large_but_legal_bodies_pass_with_the_default_limits(api: Api) -> None:
    # An Alertmanager delivery of 3 MiB (over the general 1 MiB, under the webhooks' 10 MiB).
    payload = case("alertmanager-v4-firing.json").rstrip()
    padded = payload[:-1] + b" " * (3 * 1024**2) + payload[-1:]
    delivered = await api.alertmanager(padded)
    assert delivered.status_code == 200 and delivered.json()["action"] == "declared", delivered.text[:300]

    # A postmortem draft of 2 MiB: long sections, escaped as JSON does.
    n = await resolved(api)
    long = "Zürich → " * 12_000  # 108,000 characters, each non-ASCII one escaped by json.dumps
    body = json.dumps(complete(timeline=long[:50_000], root_cause=long[:20_000], impact=long[:20_000],
                               summary=long[:20_000], what_went_well=long[:20_000],
                               what_could_improve=long[:20_000])).encode()
    body = body[:-1] + b" " * max(0, 2 * 1024**2 - len(body)) + body[-1:]
    assert len(body) > 2 * 1024**2 - 2
    saved = await api.http.put(f"/api/incidents/{n}/postmortem/draft", content=body,
                               headers={"content-type": "application/json"})
    assert saved.status_code == 200, saved.text[:300]
