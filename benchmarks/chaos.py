"""Chaos figures: the queue and event tiers with parts of them killed mid-run.

    python benchmarks/chaos.py [--leads 300] [--latency 0.5] [--only redis]

Runs each scenario of the chaos suite (``tests/_chaos.py``, the same code the tests marked
``chaos`` assert on) with real processes and real signals, and prints, per scenario: the
leads, the items Clay charged, how many it charged twice (always 0), the credits spent
against the cap, the seconds from the end of the fault until every lead had its outcome
(recovery, no human involved), and the leads' statuses. On a loaded machine the recovery
times stretch; the counts do not change.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import _chaos  # noqa: E402 - the suite's scenarios, found through the line above


def scenarios(leads: int, latency: float) -> dict[str, Callable[[Path], _chaos.Figures]]:
    q = partial(_chaos.run_queue_scenario, leads=leads, latency_s=latency)
    e = partial(_chaos.run_events_service_restart, leads=leads, latency_s=2 * latency)
    return {
        "redis SIGKILL + restart, cap 120": lambda d: q(
            d, "redis SIGKILL + restart, cap 120", _chaos.kill_redis_and_restart, cap=120
        ),
        "redis SIGSTOP 4 s": lambda d: q(d, "redis SIGSTOP 4 s", _chaos.stop_redis),
        "one worker SIGKILL": lambda d: q(d, "one worker SIGKILL", _chaos.kill_one_worker),
        "all workers SIGKILL": lambda d: q(d, "all workers SIGKILL", _chaos.kill_all_workers),
        "worker SIGKILL at 60% of cap 100": lambda d: q(
            d, "worker SIGKILL at 60% of cap 100", _chaos.kill_worker_at_share_of_budget, cap=100
        ),
        "NATS SIGKILL 3 s while the reconciler lands (webhooks dropped)": lambda d: (
            _chaos.run_events_nats_outage(d, leads=leads, latency_s=latency)
        ),
        "service SIGKILL, back 3.5 s later": lambda d: e(d, "service SIGKILL, back 3.5 s later"),
        "service SIGKILL on a Redis Streams bus": lambda d: e(
            d, "service SIGKILL on a Redis Streams bus", bus_kind="redis"
        ),
        "service SIGKILL mid-send (Redis Streams bus, runs of 60 s)": lambda d: e(
            d,
            "service SIGKILL mid-send (Redis Streams bus)",
            bus_kind="redis",
            mid_send=True,
            latency_s=60.0,
        ),
        "service SIGTERM (redeploy)": lambda d: e(
            d, "service SIGTERM (redeploy)", sig=signal.SIGTERM
        ),
        "receiver restart during deliveries": lambda d: e(
            d, "receiver restart during deliveries", during_deliveries=True, down_s=1.0
        ),
        "50% of webhooks dropped": lambda d: e(
            d, "50% of webhooks dropped", sig=None, drop_webhooks=0.5
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.5, help="emulator run latency (s)")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    args = parser.parse_args()
    print(_chaos.HEADER)
    failed = 0
    for name, run in scenarios(args.leads, args.latency).items():
        if args.only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="claynb-chaos-") as workdir:
            fig = run(Path(workdir))
        print(fig.row(), flush=True)
        try:
            _chaos.check(fig)
        except AssertionError as exc:
            failed += 1
            print(f"  FAILED: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
