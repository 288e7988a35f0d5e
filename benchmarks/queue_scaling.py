"""Queue tier scaling: 1, 2, 4 and 8 RQ workers with default settings against a rate limit.

    python benchmarks/queue_scaling.py [--leads 2000] [--batch 10] [--latency 0.2]
                                       [--header per_second|per_minute|absent]

Each row runs the same leads (no cache, a fresh emulator with its default rate limit of
20 requests/s) through real worker processes on an embedded Redis. Workers run with
claynb's defaults: the workspace's pace is shared through Redis (one bucket for the
fleet, learned from Clay's 429s and X-RateLimit-Remaining/Reset, a 429 seen by one
worker holding all of them). Two rows per fleet size: "normal" polls a run at claynb's
default interval (1 s, growing), "brisk" every 0.1 s, which makes every fleet of two or
more limit-bound. Worker start-up is excluded (the workers are registered before the
clock starts).

Reported side by side, measured in the same run: "accepted/limit" is requests the
emulator served (not answered 429) per second over its limit, the figure that matters
where the work is limit-bound (target >= 0.90); "429s" the share of requests refused
(target < 1%); leads/s and that rate relative to one worker polling normally.
``--no-fleet-pacing`` runs the same rows with every worker pacing alone, for comparison.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import psutil
import redis

import claynb
from claynb.emulator._settings import DEFAULT_RATE_LIMIT_RPS as LIMIT
from claynb.queue import JobOptions, LeadQueue, WorkerPool
from claynb.queue._demo import synthetic_leads
from claynb.services.redis import redis_server

BRISK_POLL_S = 0.1
TARGET_RATIO = 0.90
TARGET_429 = 0.01


def _wait_for_workers(conn: redis.Redis, queue: str, n: int, timeout: float = 600) -> None:
    from rq import Queue, Worker

    deadline = time.monotonic() + timeout
    while len(Worker.all(queue=Queue(queue, connection=conn))) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{n} workers did not register within {timeout}s")
        time.sleep(0.1)


def measure(
    url: str, workers: int, poll_s: float | None, args: argparse.Namespace
) -> dict[str, Any]:
    with claynb.Emulator(
        run_latency_s=args.latency, seed=workers, rate_limit_header=args.header
    ) as emu:
        conn = redis.Redis.from_url(url)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        lq = LeadQueue(
            "enrich-person",
            connection=conn,
            name=queue,
            base_url=emu.url,
            batch_size=args.batch,
            use_cache=False,
            options=JobOptions(retries=3, backoff_s=(1,)),
        )
        df = synthetic_leads(args.leads, seed=100 + workers)
        with WorkerPool(
            url,
            queues=[queue],
            n=workers,
            api_key=emu.api_key,
            base_url=emu.url,
            poll_interval_s=poll_s,
            fleet_pacing=not args.no_fleet_pacing,
        ) as pool:
            _wait_for_workers(conn, queue, workers)
            requests_before = emu.meters()["requests"]["total"]
            start = time.perf_counter()
            sub = lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Lead ID")
            out = lq.wait(sub, timeout=1200)
            elapsed = time.perf_counter() - start
            pool.stop()
        meters = emu.meters()
    requests = meters["requests"]["total"] - requests_before
    limited = meters["requests"]["by_status"].get("429", 0)
    assert len(out) == args.leads and out["lead"].is_unique
    return {
        "workers": workers,
        "polling": "normal" if poll_s is None else "brisk",
        "seconds": elapsed,
        "leads_per_s": args.leads / elapsed,
        "requests": requests,
        "requests_per_s": requests / elapsed,
        "ratio_of_limit": (requests - limited) / elapsed / LIMIT,
        "share_429": limited / max(1, requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10, help="leads per run")
    parser.add_argument("--latency", type=float, default=0.2, help="emulator run latency, s")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument(
        "--header",
        default="per_second",
        choices=["per_second", "per_minute", "absent"],
        help="the emulator's rate_limit_header variant",
    )
    parser.add_argument("--no-fleet-pacing", action="store_true")
    args = parser.parse_args()
    rows = []
    with redis_server() as url:
        for n in args.workers:
            for poll_s in (None, BRISK_POLL_S):
                rows.append(measure(url, n, poll_s, args))
                print(rows[-1], flush=True)
    base = rows[0]["leads_per_s"]
    load = psutil.getloadavg()
    print(
        f"{args.leads} leads, runs of {args.batch}, run latency {args.latency}s, emulator "
        f"defaults (20 requests/s, X-RateLimit-Limit {args.header}), fleet pacing "
        f"{'off' if args.no_fleet_pacing else 'on'}; load average {load[0]:.1f} "
        f"on {psutil.cpu_count()} CPUs"
    )
    print(
        f"{'workers':>8} {'polling':>8} {'seconds':>8} {'leads/s':>8} {'requests':>9} "
        f"{'req/s':>7} {'accepted/limit':>15} {'vs 1 worker':>12} {'429s':>6}"
    )
    for r in rows:
        print(
            f"{r['workers']:>8} {r['polling']:>8} {r['seconds']:>8.1f} {r['leads_per_s']:>8.1f} "
            f"{r['requests']:>9} {r['requests_per_s']:>7.1f} {r['ratio_of_limit']:>15.2f} "
            f"{r['leads_per_s'] / base:>11.2f}x {r['share_429']:>6.1%}"
        )
    print(
        f"targets where limit-bound: accepted/limit >= {TARGET_RATIO:.2f}, 429s < {TARGET_429:.0%}"
    )


if __name__ == "__main__":
    main()
