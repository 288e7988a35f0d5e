"""``claynb emulator``: serve the Clay emulator on loopback until Ctrl-C.

Prints the base URL and the API key. Printing the key is deliberate and the only place
claynb does so: it is the user's own throwaway key for a local emulator, and a client
cannot talk to the emulator without it.
"""

from __future__ import annotations

import argparse
import sys
import time

from claynb._plans import PLANS
from claynb.emulator._faults import Faults
from claynb.emulator._server import Emulator
from claynb.emulator._settings import (
    DEFAULT_RATE_LIMIT_RPS,
    RATE_LIMIT_HEADERS,
    VARIANTS,
    parse_latency,
)
from claynb.wire._config import ENV_ADMIN_URL

FAULT_FLAGS = (
    "server_error",
    "timeout",
    "drop_connection",
    "drop_webhook",
    "duplicate_webhook",
    "reorder_webhook",
    "fail_webhook",
)


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def _latency(text: str) -> tuple[float, float]:
    try:
        return parse_latency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=8765, help="loopback port (0 picks a free one; default 8765)"
    )
    parser.add_argument(
        "--api-key", default=None, help="the key clients must send (generated when omitted)"
    )
    parser.add_argument(
        "--plan", default="growth", choices=sorted(PLANS), help="meters to start with"
    )
    parser.add_argument(
        "--run-latency-s",
        type=_latency,
        default=(1.0, 3.0),
        metavar="S|LOW,HIGH",
        help="seconds a run takes: a number or a LOW,HIGH range (0 finishes at once)",
    )
    parser.add_argument(
        "--rate-limit-rps",
        type=float,
        default=DEFAULT_RATE_LIMIT_RPS,
        help=f"requests per second across /public/v0 (default {DEFAULT_RATE_LIMIT_RPS:g}; "
        "0: no limit)",
    )
    parser.add_argument("--rate-limit-burst", type=float, default=None, help="token bucket size")
    parser.add_argument(
        "--rate-limit-header",
        choices=RATE_LIMIT_HEADERS,
        default=RATE_LIMIT_HEADERS[0],
        help="what X-RateLimit-Limit counts (absent: no X-RateLimit-* headers)",
    )
    parser.add_argument(
        "--slow-s", type=float, default=30.0, help="how long a timeout fault holds its answer"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for latencies and faults")
    parser.add_argument(
        "--search-period-quota",
        type=int,
        default=None,
        metavar="N",
        help="search records allowed per month (default: the plan's monthly Actions)",
    )
    for name, kind in VARIANTS.items():
        choices = [v.value for v in kind]
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            choices=choices,
            default=choices[0],
            help=f"behaviour Clay does not publish (default {choices[0]})",
        )
    parser.add_argument(
        "--table-row-limit",
        type=int,
        default=None,
        metavar="N",
        help="rows a table holds (default: the plan's; Free 200, paid 50,000)",
    )
    for name in FAULT_FLAGS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_probability,
            default=0.0,
            metavar="P",
            help=f"probability of the {name.replace('_', ' ')} fault",
        )


def build(args: argparse.Namespace) -> Emulator:
    faults = Faults(**{name: getattr(args, name) for name in FAULT_FLAGS})
    return Emulator(
        plan=args.plan,
        run_latency_s=args.run_latency_s,
        rate_limit_rps=args.rate_limit_rps or None,
        faults=faults,
        api_key=args.api_key,
        port=args.port,
        seed=args.seed,
        rate_limit_burst=args.rate_limit_burst,
        rate_limit_header=args.rate_limit_header,
        slow_s=args.slow_s,
        search_period_quota=args.search_period_quota,
        table_row_limit=args.table_row_limit,
        **{name: getattr(args, name) for name in VARIANTS},
    )


def run(args: argparse.Namespace) -> int:
    try:
        emu = build(args)
        emu.start()
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"claynb emulator: {exc}", file=sys.stderr)
        return 2
    print(f"Clay emulator serving at {emu.url}  (Public API: {emu.url}/public/v0)")
    print(f"API key: {emu.api_key}")
    print(
        f"  export CLAY_BASE_URL={emu.url} CLAY_API_KEY=<the key above> "
        f"{ENV_ADMIN_URL}={emu.admin_url}"
    )
    print(
        f"Meters: {emu.admin_url}/meters (with {ENV_ADMIN_URL} set, claynb reads each row's "
        "cost from them)   Ctrl-C to stop.",
        flush=True,
    )
    try:
        while emu.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping", file=sys.stderr)
    finally:
        emu.stop()
    return 0
