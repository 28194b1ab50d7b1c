"""How fast does the public status page answer while incidents are open?

Starts the embedded stack as processes (the helper the end-to-end tests use),
declares ``--open`` incidents on the shipped components, each with ``--updates``
public updates, resolves ``--resolved`` more (so the history and the uptime bars
have intervals to draw), waits until the read model shows them, then fetches
each public route ``--requests`` times, one after another, as an anonymous
visitor would (no token).

    .venv/bin/python bench/status_page.py
    .venv/bin/python bench/status_page.py --open 50 --updates 10 --requests 500

Prints, per route, the median, p99 (nearest rank) and max latency and the size
of the answer.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.stack import Stack, policy_data, wait_until  # noqa: E402

COMPONENTS = ["control-panel", "api", "billing", "dns", "email"]
ROUTES = ["/status", "/api/v2/summary.json", "/api/v2/incidents.json", "/status/history.atom"]


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def declare(stack: Stack, i: int, updates: int) -> int:
    resp = stack.http.post("/api/incidents", json={
        "title": f"Benchmark incident {i}", "severity": "SEV-2", "components": [COMPONENTS[i % len(COMPONENTS)]]})
    if resp.status_code != 201:
        raise SystemExit(f"POST /api/incidents answered {resp.status_code}: {resp.text}")
    number = int(resp.json()["id"])
    for u in range(updates):
        r = stack.http.post(f"/api/incidents/{number}/status-updates",
                            json={"message": f"Update {u + 1}: we are still looking into slow responses."})
        if r.status_code not in (200, 201):
            raise SystemExit(f"status update answered {r.status_code}: {r.text}")
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=20, help="open incidents on the page (default 20)")
    parser.add_argument("--resolved", type=int, default=20, help="resolved incidents in the history (default 20)")
    parser.add_argument("--updates", type=int, default=5, help="public updates per incident (default 5)")
    parser.add_argument("--requests", type=int, default=200, help="requests per route (default 200)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    stack = Stack(workdir, policy_data(ack_timeout="1h", first_status_within="1h"), log_level="WARNING")
    try:
        print("starting the Temporal dev server, the worker and the API ...", file=sys.stderr)
        stack.start()
        for i in range(args.resolved):
            n = declare(stack, i, 1)
            r = stack.http.post(f"/api/incidents/{n}/resolve", json={"summary": "Fixed by a rollback."})
            if r.status_code != 200:
                raise SystemExit(f"resolve answered {r.status_code}: {r.text}")
        last = 0
        for i in range(args.open):
            last = declare(stack, args.resolved + i, args.updates)
        visitor = httpx.Client(base_url=stack.base_url, timeout=20)
        wait_until(f"#{last} on the status page", lambda: f"Benchmark incident {args.resolved + args.open - 1}"
                   in visitor.get("/status").text or None, timeout=60, interval=0.2)
        print(f"{args.open} open incidents with {args.updates} updates each, {args.resolved} resolved; "
              f"{args.requests} sequential anonymous requests per route")
        for route in ROUTES:
            timings, size = [], 0
            for _ in range(args.requests + 5):
                started = time.perf_counter()
                resp = visitor.get(route)
                took = (time.perf_counter() - started) * 1000
                if resp.status_code != 200:
                    raise SystemExit(f"GET {route} answered {resp.status_code}")
                timings.append(took)
                size = len(resp.content)
            timings = timings[5:]  # warm-up
            print(f"  {route:<26} median {statistics.median(timings):6.1f} ms   p99 "
                  f"{nearest_rank(timings, 99):6.1f} ms   max {max(timings):6.1f} ms   {size / 1024:6.1f} KiB")
    except BaseException:
        print(stack.logs(60), file=sys.stderr)
        raise
    finally:
        stack.close()


if __name__ == "__main__":
    main()
