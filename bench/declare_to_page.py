"""How long from ``POST /api/incidents`` to the first recorded page?

Starts the embedded stack as processes (Temporal dev server on a fresh SQLite
file, one worker, the API; the same helper the end-to-end tests use), declares
one incident to warm everything up, then declares ``--count`` incidents one
after another. For each, the latency is the page row's ``created_at`` (written
by the notification activity when it claims the delivery, just before the
console channel sends it) minus the wall-clock time just before the POST was
sent. Every process runs on this machine, so they share one clock.

    .venv/bin/python bench/declare_to_page.py            # 20 declarations
    .venv/bin/python bench/declare_to_page.py --count 50

Prints every sample, then the median, p90 (nearest rank) and max.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.stack import Stack, policy_data, wait_until  # noqa: E402


def first_page(stack: Stack, incident_id: int) -> dict[str, Any] | None:
    pages = [n for n in stack.notifications(incident_id) if n["kind"] == "page"]
    return min(pages, key=lambda n: n["created_at"]) if pages else None


def declare_and_time(stack: Stack, title: str) -> tuple[float, float]:
    """(seconds from the POST to the page row, seconds the POST itself took)."""
    sent_at = datetime.now(UTC)
    started = time.perf_counter()
    resp = stack.http.post("/api/incidents", json={"title": title, "severity": "SEV-1"})
    answered = time.perf_counter() - started
    if resp.status_code != 201:
        raise SystemExit(f"POST /api/incidents answered {resp.status_code}: {resp.text}")
    number = resp.json()["id"]
    page = wait_until(f"the page of #{number}", lambda: first_page(stack, number), timeout=60, interval=0.02)
    recorded = datetime.fromisoformat(page["created_at"])
    return (recorded - sent_at).total_seconds(), answered


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="declarations to time (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the stack's directory and logs")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="warroom-bench-"))
    # Durations long enough that only the first page happens during the run.
    stack = Stack(workdir, policy_data(ack_timeout="1h", first_status_within="1h"), log_level="WARNING")
    try:
        print("starting the Temporal dev server, the worker and the API ...", file=sys.stderr)
        stack.start()
        cold, _ = declare_and_time(stack, "Warm-up incident")
        samples: list[tuple[float, float]] = []
        for i in range(1, args.count + 1):
            latency, answered = declare_and_time(stack, f"Benchmark incident {i}")
            samples.append((latency, answered))
            print(f"  #{i:>3}  POST -> page recorded {latency * 1000:7.1f} ms   (POST answered in {answered * 1000:6.1f} ms)")
    except BaseException:
        print(stack.logs(60), file=sys.stderr)
        raise
    finally:
        stack.close()

    latencies = [s[0] * 1000 for s in samples]
    answers = [s[1] * 1000 for s in samples]
    print()
    print(f"declare -> first recorded page, {len(latencies)} incidents, one at a time (after one warm-up: {cold * 1000:.1f} ms)")
    print(f"  median {statistics.median(latencies):7.1f} ms")
    print(f"  p90    {nearest_rank(latencies, 90):7.1f} ms")
    print(f"  max    {max(latencies):7.1f} ms")
    print(f"  min    {min(latencies):7.1f} ms")
    print(f"POST /api/incidents round trip: median {statistics.median(answers):.1f} ms, max {max(answers):.1f} ms")
    if args.keep:
        print(f"stack directory kept at {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
