"""``claynb worker``: an RQ worker for the queue tier.

The Clay API key comes from ``CLAY_API_KEY`` in the worker's environment and nowhere
else (a command-line flag would show in ``ps``); ``CLAY_BASE_URL`` or ``--base-url`` says
where Clay is. Several workers may run, on several machines, against one Redis.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        default=None,
        help="Redis to work from (default: REDIS_URL; required unless set)",
    )
    parser.add_argument(
        "--queue",
        action="append",
        default=None,
        help="queue name to listen on (repeatable; default: claynb)",
    )
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument(
        "--no-scheduler",
        dest="with_scheduler",
        action="store_false",
        help="do not run RQ's scheduler (needed for retries with backoff, "
        "budget waits and periodic refresh)",
    )
    parser.add_argument(
        "--fork", action="store_true", help="fork a work horse per job (RQ's Worker)"
    )
    parser.add_argument("--name", default=None, help="worker name (default: RQ's)")
    parser.add_argument("--base-url", default=None, help="Clay base URL (default: CLAY_BASE_URL)")
    parser.add_argument(
        "--poll-interval-s",
        type=float,
        default=None,
        help="seconds between polls of a run's results",
    )
    parser.add_argument(
        "--lease-s",
        type=float,
        default=None,
        help="job lease: a dead worker's job is retried after about this long",
    )
    parser.add_argument(
        "--fleet-rate-limit-rps",
        dest="fleet_rps",
        type=float,
        default=None,
        help="Public API requests/s for every worker of the workspace together "
        "(default: learned from Clay's 429s and X-RateLimit-Remaining/Reset)",
    )
    parser.add_argument(
        "--no-fleet-pacing",
        dest="fleet_pacing",
        action="store_false",
        help="pace this worker alone instead of with every worker of the workspace (Redis)",
    )
    parser.add_argument(
        "--sink",
        action="append",
        default=[],
        help="also deliver each lead's outcome to a sink: http(s)://URL, "
        "sqlite:PATH[#table] or csv:PATH (repeatable; several workers "
        "with the same sink share the work, each outcome delivered once)",
    )
    parser.add_argument("--log-level", default="WARNING")


def run(args: argparse.Namespace) -> int:
    url = args.redis_url or os.environ.get("REDIS_URL")
    if not url:
        print(
            "claynb worker: give --redis-url or set REDIS_URL (the Redis your application "
            "enqueues to)",
            file=sys.stderr,
        )
        return 2
    if not os.environ.get("CLAY_API_KEY"):
        print("claynb worker: CLAY_API_KEY is not set in this environment", file=sys.stderr)
        return 2
    for flag, env in (
        ("base_url", "CLAY_BASE_URL"),
        ("poll_interval_s", "CLAYNB_POLL_INTERVAL_S"),
        ("lease_s", "CLAYNB_LEASE_S"),
        ("fleet_rps", "CLAYNB_FLEET_RPS"),
    ):
        value = getattr(args, flag)
        if value is not None:
            os.environ[env] = str(value)
    if not args.fleet_pacing:
        os.environ["CLAYNB_FLEET_PACING"] = "0"
    import redis

    from claynb.queue._sinks import Dispatcher, sink_from_spec
    from claynb.queue._worker import run_worker

    conn = redis.Redis.from_url(url)
    queues = args.queue or ["claynb"]
    dispatchers = [
        Dispatcher(conn, sink_from_spec(spec), queue=q).start()
        for spec in args.sink
        for q in queues
    ]
    try:
        run_worker(
            conn,
            queues,
            burst=args.burst,
            with_scheduler=args.with_scheduler,
            name=args.name,
            fork=args.fork,
            logging_level=args.log_level,
        )
    finally:
        for d in dispatchers:
            d.stop()
            if args.burst:
                d.drain(timeout_s=10)
    return 0
