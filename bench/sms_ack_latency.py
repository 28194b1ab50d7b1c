"""How long a signed SMS reply takes from hitting the webhook to the TwiML answer.

The stack is the production shape on one machine: a Temporal dev server, the
worker and the API as separate processes (``python -m warroom.worker`` and
uvicorn), a SQLite read model, and the fake Twilio/SendGrid from tests/fakes.py
on which the real SDKs send the pages. For each sample the script declares an
incident through the API, waits until its page SMS reached the fake, then posts
the signed reply ``ack <n>`` and times the HTTP round trip until the TwiML answer
(the answer is only written once the workflow accepted the ack).

    .venv/bin/python bench/sms_ack_latency.py            # 40 samples
    .venv/bin/python bench/sms_ack_latency.py --samples 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.access import bearer, token_for  # noqa: E402
from tests.conftest import temporal_binary  # noqa: E402
from tests.fakes import (  # noqa: E402
    ACCOUNT_SID, AUTH_TOKEN, FROM_EMAIL, FROM_NUMBER, SENDGRID_KEY, FakeSendGrid, FakeTwilio, inbound_sms, sign,
)
from warroom import migrations  # noqa: E402
from warroom.models.tables import make_engine  # noqa: E402
from warroom.temporal import DATA_CONVERTER  # noqa: E402

PUBLIC = "https://pager.example.test"
ALICE = "+15005550006"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def policy(path: Path) -> None:
    path.write_text(yaml.safe_dump({
        "ack_timeout": "10m", "first_status_within": "1h", "update_every": {"SEV-1": "1h", "SEV-2": "1h"},
        "reminder_lead": "1m", "commander_within": "1h", "page_cap": "0s",
        "people": {"alice": {"name": "Alice", "sms": ALICE}, "bob": {"name": "Bob", "sms": "+15005550007"}},
        "escalation": {"levels": [{"notify": ["alice"]}, {"notify": ["bob"]}]},
    }))


async def wait_healthy(api: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(api + "/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the API did not come up")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=DATA_CONVERTER, dev_server_log_level="error", ui=False
    )
    twilio, sendgrid = FakeTwilio(), FakeSendGrid()
    t_url, s_url = twilio.start(), sendgrid.start()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        policy(Path(tmp) / "policy.yaml")
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        child_env = dict(
            os.environ,
            WARROOM_DATA_DIR=tmp, WARROOM_POLICY=str(Path(tmp) / "policy.yaml"),
            WARROOM_TEMPORAL_ADDRESS=env.client.service_client.config.target_host,
            WARROOM_TASK_QUEUE="bench", WARROOM_LOG_LEVEL="WARNING",
            WARROOM_SMS_REPLY_LIMIT="100000",  # one sender answers every sample
            WARROOM_PUBLIC_BASE_URL=PUBLIC, WARROOM_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            WARROOM_TWILIO_AUTH_TOKEN=AUTH_TOKEN, WARROOM_TWILIO_FROM_NUMBER=FROM_NUMBER,
            WARROOM_TWILIO_API_BASE=t_url, WARROOM_SENDGRID_API_KEY=SENDGRID_KEY,
            WARROOM_SENDGRID_FROM_EMAIL=FROM_EMAIL, WARROOM_SENDGRID_API_BASE=s_url,
        )
        engine = make_engine(f"sqlite:///{Path(tmp, 'warroom.db').resolve()}")
        migrations.upgrade(engine)  # as the processes would: they then find it current
        token = token_for(engine, "alice")  # declaring needs a responder; the SMS acks need no token
        engine.dispose()
        try:
            procs.append(subprocess.Popen([sys.executable, "-m", "warroom.worker"], env=child_env, cwd=ROOT))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "warroom.api.main:app", "--port", str(port),
                 "--log-level", "warning"], env=child_env, cwd=ROOT,
            ))
            await wait_healthy(api)
            timings: list[float] = []
            async with httpx.AsyncClient(base_url=api, timeout=30, headers=bearer(token)) as http:
                for i in range(args.samples + 3):
                    n = (await http.post("/api/incidents", json={"title": f"bench {i}", "severity": "SEV-2"})).json()["id"]
                    await twilio.expect("sms", to=ALICE, contains=f"#{n}", within=20)
                    params = inbound_sms(ALICE, f"ack {n}")
                    path = "/api/webhooks/twilio/sms"
                    headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, PUBLIC + path, params)}
                    started = time.perf_counter()
                    response = await http.post(path, data=params, headers=headers)
                    took = (time.perf_counter() - started) * 1000
                    assert f"#{n} acknowledged" in response.text, response.text
                    if i >= 3:  # the first few warm up connections and caches
                        timings.append(took)
            timings.sort()
            p90 = timings[min(len(timings) - 1, int(len(timings) * 0.9))]
            print(f"signed SMS 'ack <n>' -> TwiML answer, {len(timings)} samples: "
                  f"median {statistics.median(timings):.1f} ms, p90 {p90:.1f} ms, "
                  f"min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            twilio.stop()
            sendgrid.stop()
            await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
