"""Every benchmark of issue #10 in one command: prints a table and writes bench/RESULTS.md.

The embedded stack as processes (Temporal dev server on a SQLite file, one
``python -m warroom.worker``, the API under uvicorn; tests/stack.py starts them)
pages through the real Twilio SDK into the fake Twilio of tests/fakes.py, which
notes the wall-clock time of every message it accepts. Each latency is printed
beside the floor measured in the same run on the same server: a bare workflow
started by a client that runs one activity (bench/floor_workflow.py), from the
start call to the activity running. The ratio, not the absolute time, is the result.

1. alert webhook -> first SMS at the provider, at 1, 10 and 50 new incidents/s;
2. webhook acceptance throughput: duplicates of an open incident's group, and new incidents;
3. signed SMS ``ack <n>`` -> TwiML answer;
4. open incidents one worker holds with timers pending, and the worker's resident memory;
5. lateness of ack deadlines that all fall due in the same second (deadline -> escalation SMS);
6. an alert storm over 50 groups: incidents opened, the largest history, SMS sent.

    .venv/bin/python bench/run_all.py --quick      # a few minutes: small counts
    .venv/bin/python bench/run_all.py              # the issue's counts (10,000 open: --open 1000,10000)

Benchmarks 4 and 5 each run on a stack of their own so their deadlines do not mix
with the others' incidents, and declare their incidents straight from a Temporal
client as the API does (a number from the read model, the policy in force): they
measure the worker holding incidents and firing timers, not the webhook, which
benchmarks 1 and 2 measure. Benchmark 5 cuts each incident's level-1 ack timeout
so that every deadline falls on one instant.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.floor_workflow import FloorWorkflow, floor_activity  # noqa: E402
from tests.fakes import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilio, Recorded, inbound_sms, sign  # noqa: E402
from tests.stack import Stack, case, policy_data, wait_until  # noqa: E402

PUBLIC = "https://pager.example.test"
ALICE, BOB = "+15005550006", "+15005550007"
NUMBER = re.compile(r"#(\d+)")
AM = {"content-type": "application/json"}


# --- figures -----------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def med_p99(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), pct(values, 99)


class Provider:
    """The fake Twilio, with the wall-clock time it accepted each SMS and the incident it names."""

    def __init__(self) -> None:
        self.fake = FakeTwilio()
        self.url = self.fake.start()
        self.lock = threading.Lock()
        self.sms: list[tuple[float, str, int | None]] = []
        self.fake.on_record = self._note

    def _note(self, rec: Recorded) -> None:
        if rec.kind == "sms" and rec.answered == 201:
            found = NUMBER.search(rec.text)
            with self.lock:
                self.sms.append((time.time(), rec.to, int(found.group(1)) if found else None))

    def first_to(self, to: str) -> dict[int, float]:
        firsts: dict[int, float] = {}
        with self.lock:
            for at, dest, number in self.sms:
                if dest == to and number is not None and number not in firsts:
                    firsts[number] = at
        return firsts

    def count(self, numbers: set[int] | None = None) -> int:
        with self.lock:
            return sum(1 for _, _, n in self.sms if numbers is None or n in numbers)


def make_stack(root: Path, provider: Provider, **policy: Any) -> Stack:
    stack = Stack(root, policy_data(page_cap="0s", first_status_within="1h", update_every={"SEV-1": "1h", "SEV-2": "1h"},
                                    reminder_lead="1m", **policy), log_level="WARNING")
    # Group by key only: the storm's 50 groups all name the same component (dns), and the
    # default 10-minute component window would join them into one incident, which is
    # right for a storm of one cause but not what benchmark 6 counts (50 groups, 50 incidents).
    detection = root / "detection.yaml"
    root.mkdir(parents=True, exist_ok=True)
    detection.write_text("grouping:\n  component_window: 0s\n", encoding="utf-8")
    stack.env.update({
        "WARROOM_DETECTION": str(detection),
        "WARROOM_TWILIO_ACCOUNT_SID": ACCOUNT_SID, "WARROOM_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "WARROOM_TWILIO_FROM_NUMBER": FROM_NUMBER, "WARROOM_TWILIO_API_BASE": provider.url,
        "WARROOM_PUBLIC_BASE_URL": PUBLIC, "WARROOM_SMS_REPLY_LIMIT": "1000000",
        # Every request comes from this one address: the per-address webhook limit (10/s by
        # default) would measure itself, not the intake behind it.
        "WARROOM_WEBHOOK_RATE_BURST": "1000000", "WARROOM_WEBHOOK_RATE_PER_MINUTE": "1000000",
    })
    return stack.start()


def alert(tag: str, group: int, alert_no: int = 0) -> bytes:
    """An Alertmanager notification of group ``tag-group``; each ``alert_no`` is a new alert in it."""
    data = json.loads(case("alertmanager-v4-firing.json"))
    data["groupKey"] = f'{{}}:{{bench="{tag}-{group}"}}'
    data["commonAnnotations"]["summary"] = f"Bench {tag} group {group}"
    first = data["alerts"][0]
    first["fingerprint"] = f"{tag}-{group}-{alert_no}"
    first["labels"]["instance"] = f"host-{alert_no}"
    data["alerts"] = [first]
    return json.dumps(data).encode()


RETRIES: Counter[str] = Counter()
"""429/502/503 answers redelivered, as Alertmanager would (its Retry-After honoured)."""


def post_alert(http: httpx.Client, stack: Stack, body: bytes) -> dict[str, Any]:
    resp = None
    for _attempt in range(10):
        resp = http.post(stack.alert_path, content=body, headers=AM)
        if resp.status_code in (429, 502, 503):
            RETRIES["503"] += 1
            time.sleep(float(resp.headers.get("retry-after", "1")))
            continue
        if resp.status_code != 200:
            raise RuntimeError(f"alert webhook answered {resp.status_code}: {resp.text[:200]}")
        return dict(resp.json())
    raise RuntimeError(f"alert webhook answered 503 ten times: {resp.text[:200] if resp else ''}")


def clients(stack: Stack, n: int) -> list[httpx.Client]:
    return [httpx.Client(base_url=stack.base_url, timeout=60,
                         headers={"Authorization": f"Bearer {stack.tokens['alice']}"}) for _ in range(n)]


# --- the floor -------------------------------------------------------------------------


def floor(stack: Stack, samples: int) -> list[float]:
    """Seconds from a client's start call to the one activity of a bare workflow running."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from warroom.temporal import WORKFLOW_RUNNER

    async def run() -> list[float]:
        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        queue = f"bench-floor-{uuid.uuid4().hex[:6]}"
        out = []
        async with Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[floor_activity],
                          workflow_runner=WORKFLOW_RUNNER):
            for i in range(samples + 3):
                took = await client.execute_workflow(FloorWorkflow.run, time.time(), id=f"{queue}-{i}", task_queue=queue)
                if i >= 3:
                    out.append(took)
        return out

    return asyncio.run(run())


# --- 1. webhook -> first SMS at the provider --------------------------------------------------


def webhook_to_sms(stack: Stack, provider: Provider, rate: float, samples: int) -> list[float]:
    tag = f"rate{rate:g}-{uuid.uuid4().hex[:4]}"
    sent: dict[int, float] = {}
    lock = threading.Lock()
    pool = clients(stack, 16)

    def one(i: int) -> None:
        started = time.time()
        out = post_alert(pool[i % len(pool)], stack, alert(tag, i))
        with lock:
            sent[int(out["incident_id"])] = started

    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(pool)) as ex:
        futures = []
        for i in range(samples):
            wait = begin + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            futures.append(ex.submit(one, i))
        for f in futures:
            f.result()
    for http in pool:
        http.close()
    wait_until(f"the pages of {samples} incidents", lambda: set(sent) <= set(provider.first_to(ALICE)),
               timeout=120 + samples, interval=0.2)
    firsts = provider.first_to(ALICE)
    return [firsts[n] - at for n, at in sent.items()]


# --- 2. acceptance throughput ---------------------------------------------------------------


def throughput(stack: Stack, requests: int, new: bool, concurrency: int = 8) -> float:
    tag = f"tp-{'new' if new else 'dup'}-{uuid.uuid4().hex[:4]}"
    pool = clients(stack, concurrency)
    if not new:
        post_alert(pool[0], stack, alert(tag, 0))  # the open incident the duplicates join
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as ex:
        list(ex.map(lambda i: post_alert(pool[i % concurrency], stack, alert(tag, i if new else 0)), range(requests)))
    took = time.monotonic() - started
    for http in pool:
        http.close()
    return requests / took


# --- 3. signed SMS ack -> TwiML ----------------------------------------------------------------


def sms_ack(stack: Stack, provider: Provider, samples: int) -> list[float]:
    path = "/api/webhooks/twilio/sms"
    out = []
    tag = f"ack-{uuid.uuid4().hex[:4]}"
    with httpx.Client(base_url=stack.base_url, timeout=60) as http:
        for i in range(samples + 3):
            n = int(post_alert(stack.http, stack, alert(tag, i))["incident_id"])
            wait_until(f"the page of #{n}", lambda: n in provider.first_to(ALICE), timeout=60, interval=0.02)
            params = inbound_sms(ALICE, f"ack {n}")
            headers = {"X-Twilio-Signature": sign(AUTH_TOKEN, PUBLIC + path, params)}
            started = time.perf_counter()
            resp = http.post(path, data=params, headers=headers)
            took = time.perf_counter() - started
            if f"#{n} acknowledged" not in resp.text:
                raise RuntimeError(f"the ack of #{n} was answered {resp.status_code}: {resp.text[:200]}")
            if i >= 3:  # warm-up
                out.append(took)
    return out


# --- 4 and 5. open incidents, memory, deadline lateness ---------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def deadlines(stack: Stack, numbers: set[int]) -> dict[int, float]:
    with sqlite3.connect(stack.data_dir / "warroom.db") as db:
        rows = db.execute("SELECT number, state FROM incidents").fetchall()
    out = {}
    for number, state in rows:
        if number in numbers:
            esc = json.loads(state)["escalation"]
            at = esc["deadline"]
            if at and esc["step"] == 0:  # still waiting on level 1's deadline
                out[number] = datetime.fromisoformat(at).timestamp()
    return out


def declare_direct(stack: Stack, numbers: set[int], count: int, tag: str, deadline_at: float | None,
                   rate: float | None = None) -> None:
    """Start incident workflows up to ``count`` straight from a Temporal client, as the API
    does (a number from the read model, the stack's policy), at most 64 starts in flight,
    and at most ``rate`` starts a second when given. With ``deadline_at`` (epoch seconds)
    each incident's level-1 ack timeout is cut so that its deadline falls at that instant:
    benchmark 5's deadlines that all fall due at once. The workflow starts the ack clock
    when it pages, so the starts are paced to what the stack keeps up with: a backlog
    would shift each deadline by its own wait."""
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from warroom.models.tables import allocate_incident_number, make_engine
    from warroom.models.ids import INCIDENT_WORKFLOW_NAME, incident_workflow_id
    from warroom.models.incident import IncidentInput
    from warroom.models.policy import load_policy
    from warroom.models.severity import Severity
    from warroom.models.ids import DEFAULT_TASK_QUEUE
    from warroom.temporal import connect

    policy = load_policy(stack.policy_path)
    engine = make_engine(f"sqlite:///{(stack.data_dir / 'warroom.db').resolve()}")
    now = datetime.now(tz=__import__("datetime").timezone.utc)
    with Session(engine) as session:
        fresh = [allocate_incident_number(session, now, f"bench:{tag}:{i}") for i in range(len(numbers), count)]
        session.commit()
    engine.dispose()

    async def run() -> None:
        client = await connect(f"127.0.0.1:{stack.temporal_port}")
        gate = asyncio.Semaphore(64)

        async def one(number: int) -> None:
            own = policy
            if deadline_at is not None:
                left = timedelta(seconds=max(1.0, deadline_at - time.time()))
                esc = policy.escalation
                level = esc.levels[0].model_copy(update={"ack_timeout": left})
                own = policy.model_copy(update={"escalation": esc.model_copy(update={"levels": [level, *esc.levels[1:]]})})
            inp = IncidentInput(number=number, title=f"Bench {tag} {number}", severity=Severity.SEV2,
                                detected_at=datetime.now(tz=__import__("datetime").timezone.utc),
                                declared_by="bench", source="bench", policy=own)
            async with gate:
                await client.start_workflow(INCIDENT_WORKFLOW_NAME, inp, id=incident_workflow_id(number),
                                            task_queue=DEFAULT_TASK_QUEUE)
            numbers.add(number)

        if rate is None:
            await asyncio.gather(*(one(n) for n in fresh))
            return
        begin, tasks = time.monotonic(), []
        for i, number in enumerate(fresh):
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(number)))
        await asyncio.gather(*tasks)

    asyncio.run(run())


def open_incidents(root: Path, provider: Provider, counts: list[int]) -> dict[str, Any]:
    """Benchmark 4: hold ``counts`` open incidents (each waiting on its ack and status timers)
    and read the worker's resident memory. Benchmark 5 follows on the same stack: a fresh
    batch of incidents whose ack deadlines all fall due in the same second."""
    stack = make_stack(root, provider, escalation={
        "levels": [{"notify": ["alice"], "ack_timeout": "2h"}, {"notify": ["bob"], "ack_timeout": "1h"}],
        "repeat": 0, "fallback": ["erin"],
    })
    try:
        worker = stack.procs["worker"].pid
        idle = rss_mb(worker)
        numbers: set[int] = set()
        held: list[tuple[int, float, float]] = []
        started = time.monotonic()
        for count in counts:
            declare_direct(stack, numbers, count, "open", None)
            wait_until(f"the first page of {count} incidents", lambda: numbers <= set(provider.first_to(ALICE)),
                       timeout=3600, interval=1)
            held.append((count, time.monotonic() - started, rss_mb(worker)))
        return {"idle_mb": idle, "held": held}
    finally:
        stack.close()


def same_second_deadlines(root: Path, provider: Provider, count: int, rate: float) -> dict[str, Any]:
    """Benchmark 5: ``count`` incidents whose level-1 ack deadlines are set to one instant;
    lateness is escalation SMS at the provider minus the deadline the workflow recorded."""
    stack = make_stack(root, provider, escalation={
        "levels": [{"notify": ["alice"], "ack_timeout": "1h"}, {"notify": ["bob"], "ack_timeout": "1h"}],
        "repeat": 0, "fallback": ["erin"],
    })
    try:
        numbers: set[int] = set()
        at = time.time() + 60 + count / rate  # room to declare and page them all first
        declare_direct(stack, numbers, count, "deadline", at, rate)
        wait_until(f"the first page of {count} incidents", lambda: numbers <= set(provider.first_to(ALICE)),
                   timeout=max(60.0, at - time.time()), interval=1)
        due = deadlines(stack, numbers)
        spread = max(due.values()) - min(due.values())
        future = {n for n, when in due.items() if when > time.time()}
        wait_until("every ack deadline to pass and escalate", lambda: future <= set(provider.first_to(BOB)),
                   timeout=max(0.0, at - time.time()) + 600, interval=0.5)
        escalated = provider.first_to(BOB)
        late = [escalated[n] - due[n] for n in future]
        return {"late": late, "deadlines": len(due), "future": len(future), "spread": spread}
    finally:
        stack.close()


# --- 6. the storm -----------------------------------------------------------------------------


def storm(stack: Stack, provider: Provider, alerts: int, seconds: float, groups: int) -> dict[str, Any]:
    from temporalio.client import Client

    tag = f"storm-{uuid.uuid4().hex[:4]}"
    pool = clients(stack, 16)
    incidents: Counter[int] = Counter()
    lock = threading.Lock()
    before = provider.count()

    def one(i: int) -> None:
        out = post_alert(pool[i % len(pool)], stack, alert(tag, i % groups, i))
        with lock:
            incidents[int(out["incident_id"])] += 1

    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(pool)) as ex:
        futures = []
        for i in range(alerts):
            wait = begin + i * seconds / alerts - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            futures.append(ex.submit(one, i))
        for f in futures:
            f.result()
    took = time.monotonic() - begin
    for http in pool:
        http.close()
    time.sleep(3)  # the last pages

    async def longest() -> int:
        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}")
        sizes = []
        for n in incidents:
            history = await client.get_workflow_handle(f"incident-{n}").fetch_history()
            sizes.append(len(history.events))
        return max(sizes)

    return {"incidents": len(incidents), "sent_in": took, "largest_history": asyncio.run(longest()),
            "sms": provider.count(set(incidents)), "all_sms_during": provider.count() - before}


# --- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a few minutes in all")
    parser.add_argument("--samples", type=int, help="incidents per rate in benchmark 1 (default 60, quick 10)")
    parser.add_argument("--requests", type=int, help="requests per throughput figure (default 500, quick 60)")
    parser.add_argument("--ack-samples", type=int, help="SMS acks timed (default 100, quick 15)")
    parser.add_argument("--floor-samples", type=int, help="bare workflows timed (default 100, quick 20)")
    parser.add_argument("--open", help="open incidents to hold, comma-separated (default 1000, quick 100; "
                                       "the issue's 10,000: --open 1000,10000)")
    parser.add_argument("--deadlines", type=int, help="ack deadlines due in one second (default 1000, quick 100)")
    parser.add_argument("--deadline-rate", type=float, default=4.0,
                        help="incidents declared per second for benchmark 5 (default 4: what a loaded 2-CPU stack keeps up with)")
    parser.add_argument("--storm-alerts", type=int, help="alerts in the storm (default 10000, quick 500)")
    parser.add_argument("--storm-seconds", type=float, help="seconds to send them in (default 60, quick 10)")
    parser.add_argument("--skip", default="", help="benchmarks to leave out, e.g. 4,6")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args(argv)
    q = args.quick
    samples = args.samples or (10 if q else 60)
    requests = args.requests or (60 if q else 500)
    ack_samples = args.ack_samples or (15 if q else 100)
    floor_samples = args.floor_samples or (20 if q else 100)
    counts = [int(c) for c in (args.open or ("100" if q else "1000")).split(",")]
    deadline_count = args.deadlines or (100 if q else 1000)
    storm_alerts = args.storm_alerts or (500 if q else 10000)
    storm_seconds = args.storm_seconds or (10 if q else 60)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    command = "bench/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:])

    rows: list[tuple[str, str, str, str, str]] = []
    notes: list[str] = []

    def ms(v: float) -> str:
        return f"{v * 1000:.0f} ms" if v < 10 else f"{v:.1f} s"

    workdir = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    provider = Provider()
    stack = make_stack(workdir / "main", provider, ack_timeout="1h")
    try:
        print("floor ...", file=sys.stderr)
        f_med, f_p99 = med_p99(floor(stack, floor_samples))
        rows.append(("floor: bare workflow start -> its one activity", str(floor_samples), ms(f_med), ms(f_p99), "1.0x"))

        def latency(name: str, values: list[float]) -> None:
            m, p = med_p99(values)
            rows.append((name, str(len(values)), ms(m), ms(p), f"{m / f_med:.1f}x"))

        def guarded(name: str, fn: Any) -> Any:
            try:
                return fn()
            except Exception as err:  # noqa: BLE001 - a benchmark that breaks is a result too
                rows.append((f"{name}: FAILED", "", type(err).__name__, str(err)[:80], ""))
                notes.append(f"{name} failed: {err}")
                return None

        if "1" not in skip:
            for rate in (1, 10, 50):
                print(f"1. webhook -> SMS at {rate}/s ...", file=sys.stderr)
                n = max(3, samples if rate > 1 else min(samples, 30))
                got = guarded(f"1. at {rate}/s", lambda: webhook_to_sms(stack, provider, rate, n))
                if got:
                    latency(f"1. alert webhook -> first SMS, {rate} new incidents/s", got)
        if "2" not in skip:
            print("2. throughput ...", file=sys.stderr)
            dup = guarded("2. duplicates", lambda: throughput(stack, requests, new=False))
            new = guarded("2. new incidents", lambda: throughput(stack, requests, new=True))
            if dup is not None:
                rows.append(("2. webhook acceptance, duplicates of an open group", str(requests), f"{dup:.1f} req/s", "", ""))
            if new is not None:
                rows.append(("2. webhook acceptance, new incidents", str(requests), f"{new:.1f} req/s", "", ""))
        if "3" not in skip:
            print("3. SMS ack ...", file=sys.stderr)
            got = guarded("3. SMS ack", lambda: sms_ack(stack, provider, ack_samples))
            if got:
                latency("3. signed SMS 'ack <n>' -> TwiML answer", got)
        if RETRIES:
            notes.append(f"Benchmarks 1-3: {RETRIES['503']} webhook deliveries answered 429/502/503 and were redelivered.")
            RETRIES.clear()
        if "6" not in skip:
            print("6. storm ...", file=sys.stderr)
            s = guarded("6. storm", lambda: storm(stack, provider, storm_alerts, storm_seconds, 50))
        if "6" not in skip and s is not None:
            rows.append((f"6. storm: {storm_alerts} alerts over 50 groups in {s['sent_in']:.0f} s "
                         f"(asked {storm_seconds:g} s)", str(storm_alerts),
                         f"{s['incidents']} incidents", f"largest history {s['largest_history']} events",
                         f"{s['sms']} SMS"))
            if RETRIES:
                notes.append(f"The storm: {RETRIES['503']} deliveries answered 429 (the per-address limit) or 503 "
                             "(no answer from the incident's workflow in time) and were redelivered after Retry-After, "
                             "as Alertmanager does.")
                RETRIES.clear()
            if s["incidents"] != 50:
                notes.append(f"The storm opened {s['incidents']} incidents, not 50.")
    finally:
        stack.close()
    if "4" not in skip:
        print("4. open incidents ...", file=sys.stderr)
        o = guarded("4. open incidents", lambda: open_incidents(workdir / "open", provider, counts))
        if o is not None:
            for count, took, rss in o["held"]:
                rows.append(("4. open incidents held by one worker, timers pending", str(count),
                             f"worker RSS {rss:.0f} MB", f"idle {o['idle_mb']:.0f} MB", f"declared in {took:.0f} s"))
    if "5" not in skip:
        print("5. deadlines in the same second ...", file=sys.stderr)
        d = guarded("5. deadlines", lambda: same_second_deadlines(workdir / "deadlines", provider, deadline_count,
                                                                 args.deadline_rate))
        if d is not None and d["late"]:
            m, p = med_p99(d["late"])
            rows.append((f"5. ack deadline -> escalation SMS ({d['future']} deadlines within {d['spread']:.1f} s)",
                         str(len(d["late"])), ms(m), ms(p), f"{m / f_med:.1f}x"))
            if d["future"] < d["deadlines"]:
                notes.append(f"Benchmark 5: {d['deadlines'] - d['future']} of {d['deadlines']} deadlines had passed "
                             "before their lateness could be measured and are left out.")
    provider.fake.stop()

    header = ("benchmark", "n", "median", "p99", "median / floor")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    line = lambda r: "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) + " |"  # noqa: E731
    table = "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
    print(table)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{v:.1f}" for v in __import__("os").getloadavg())
    args.out.write_text(
        f"# Benchmark results\n\nWritten by `{command.strip()}` on {when}: the embedded stack (Temporal dev "
        "server on SQLite, one worker, the API under uvicorn) on this machine, pages through the real Twilio SDK "
        "into the fake Twilio of tests/fakes.py. Latencies are medians and p99 (nearest rank); the floor is a bare "
        "workflow started by a client that runs one activity, on the same server in the same run. "
        f"Load average when it ended: {load} ({__import__('os').cpu_count()} CPUs).\n\n"
        f"{table}\n\n" + "".join(f"- {n}\n" for n in notes),
        encoding="utf-8",
    )
    print(f"\nwritten to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
