"""Queue tier scaling: throughput with 1, 2 and 4 RQ workers against a rate-limited emulator.

    python benchmarks/queue_scaling.py [--leads 1000] [--rate 20] [--batch 10] [--latency 0.2]

Each configuration runs the same leads (fresh cache, fresh emulator) through real worker
processes on an embedded Redis. Reported side by side, measured in the same run: Public
API requests per second as a fraction of the emulator's limit, leads per second, and
that rate relative to one worker. Worker start-up is excluded (workers are up and
registered before the clock starts). "accepted/limit" counts requests the emulator
served (not answered 429) per second, over its limit; "429s" is the share refused.
The last row ("fleet") runs the most workers with ``--fleet-rate-limit-rps`` set to the
emulator's limit: each worker paces itself to its share, so the fleet keeps to the limit
instead of learning it from 429s.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import redis

import claynb
from claynb.queue import JobOptions, LeadQueue, WorkerPool
from claynb.queue._demo import synthetic_leads
from claynb.services.redis import redis_server


def _wait_for_workers(conn: redis.Redis, queue: str, n: int, timeout: float = 60) -> None:
    from rq import Queue, Worker

    deadline = time.monotonic() + timeout
    while len(Worker.all(queue=Queue(queue, connection=conn))) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"{n} workers did not register within {timeout}s")
        time.sleep(0.1)


def measure(
    url: str, workers: int, args: argparse.Namespace, fleet: bool = False
) -> dict[str, Any]:
    with claynb.Emulator(run_latency_s=args.latency, rate_limit_rps=args.rate, seed=workers) as emu:
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
            poll_interval_s=args.latency / 2,
            fleet_rps=args.rate if fleet else None,
        ) as pool:
            _wait_for_workers(conn, queue, workers)
            requests_before = emu.meters()["requests"]["total"]
            start = time.perf_counter()
            sub = lq.enqueue_frame(df, inputs={"email": "Email"}, id_column="Lead ID")
            out = lq.wait(sub, timeout=600)
            elapsed = time.perf_counter() - start
            pool.stop()
        meters = emu.meters()
        requests = meters["requests"]["total"] - requests_before
        limited = meters["requests"]["by_status"].get("429", 0)
        assert len(out) == args.leads and out["lead"].is_unique
        return {
            "workers": f"{workers}{' fleet' if fleet else ''}",
            "seconds": elapsed,
            "leads_per_s": args.leads / elapsed,
            "requests_per_s": requests / elapsed,
            "ratio_of_limit": (requests - limited) / elapsed / args.rate,
            "share_429": limited / max(1, requests),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="emulator rate limit, requests/s")
    parser.add_argument("--batch", type=int, default=10, help="leads per run")
    parser.add_argument("--latency", type=float, default=0.2, help="emulator run latency, s")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--no-fleet",
        action="store_true",
        help="skip the last row: the most workers, pacing to a shared limit",
    )
    args = parser.parse_args()
    rows = []
    with redis_server() as url:
        for n in args.workers:
            rows.append(measure(url, n, args))
        if not args.no_fleet:
            rows.append(measure(url, max(args.workers), args, fleet=True))
    base = rows[0]["leads_per_s"]
    print(
        f"{args.leads} leads, runs of {args.batch}, run latency {args.latency}s, "
        f"emulator limit {args.rate:g} requests/s"
    )
    print(
        f"{'workers':>8} {'seconds':>8} {'leads/s':>8} {'req/s':>7} {'accepted/limit':>15} {'vs 1 worker':>12} {'429s':>6}"
    )
    for r in rows:
        print(
            f"{r['workers']:>8} {r['seconds']:>8.1f} {r['leads_per_s']:>8.1f} {r['requests_per_s']:>7.1f} "
            f"{r['ratio_of_limit']:>15.2f} {r['leads_per_s'] / base:>11.2f}x {r['share_429']:>6.1%}"
        )


if __name__ == "__main__":
    main()
