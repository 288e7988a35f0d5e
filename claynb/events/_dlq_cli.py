"""``claynb dlq``: list or replay the event tier's dead-letter subject.

    claynb dlq list   [--bus-url URL] [--namespace NS] [--json]
    claynb dlq replay [--bus-url URL] [--namespace NS] [--limit N] [--kind budget] [--include-unknown [--yes]]

Dead letters live on the bus the service used, so the bus must outlive the service:
``--bus-url`` or ``NATS_URL`` (an embedded NATS is gone when its process ends). Letters of
kind ``outcome_unknown`` (the send may have been charged) are replayed only when asked, and
then only after saying plainly that Clay may charge them twice and getting a yes (typed at
the prompt, or ``--yes``); without a terminal to ask, nothing is replayed without ``--yes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=["list", "replay"], help="list the letters or replay them"
    )
    parser.add_argument("--bus-url", default=None, help="nats:// or redis:// (default NATS_URL)")
    parser.add_argument("--namespace", default="default", help="event namespace on the bus")
    parser.add_argument("--limit", type=int, default=None, help="at most this many letters")
    parser.add_argument(
        "--kind",
        action="append",
        default=None,
        help="only letters of this kind (budget, credits_exhausted, failed, outcome_unknown)",
    )
    parser.add_argument(
        "--include-unknown",
        action="store_true",
        help="replay outcome_unknown letters too (Clay may charge them twice)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="with --include-unknown: replay without asking (you accept paying twice)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    url = args.bus_url or os.environ.get("NATS_URL") or os.environ.get("REDIS_URL")
    if not url:
        print(
            "claynb dlq: no bus: pass --bus-url (the bus the service used) or set NATS_URL",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(_run(args, url))


async def _run(args: argparse.Namespace, url: str) -> int:
    from claynb.events._bus import Bus
    from claynb.events._dlq import NEEDS_CHECK, letter_rows, replay

    bus = Bus(url, args.namespace)
    await bus.start()
    try:
        if args.action == "list":
            letters = await bus.dead_letters(args.limit or 1_000_000)
            kinds = set(args.kind) if args.kind else None
            rows = [r for r in letter_rows(letters) if kinds is None or r["kind"] in kinds]
            _print_rows(rows, as_json=args.json)
            return 0
        kinds = set(args.kind) if args.kind else None
        include_unknown = args.include_unknown
        if include_unknown:
            letters = await bus.dead_letters(args.limit or 1_000_000)
            unknown = [
                letter
                for letter in letters
                if letter.event.get("kind") == NEEDS_CHECK
                and (kinds is None or NEEDS_CHECK in kinds)
            ]
            if unknown and not _confirmed(len(unknown), args.yes):
                print("nothing replayed", file=sys.stderr)
                return 1
        replayed = await replay(bus, limit=args.limit, kinds=kinds, include_unknown=include_unknown)
        print(
            json.dumps({"replayed": len(replayed)})
            if args.json
            else f"replayed {len(replayed)} lead(s)"
        )
        return 0
    finally:
        await bus.stop()


def _confirmed(n: int, yes: bool) -> bool:
    """Say what replaying unknown outcomes risks; True once the person agreed."""
    print(
        f"WARNING: {n} letter(s) are outcome_unknown: their send may have reached Clay and "
        "been charged. Replaying sends them again, and Clay may charge them twice.",
        file=sys.stderr,
    )
    if yes:
        return True
    if not sys.stdin.isatty():
        print("not asked on a terminal: pass --yes to replay them anyway", file=sys.stderr)
        return False
    return input("Replay them anyway? [y/N] ").strip().lower() in ("y", "yes")


def _print_rows(rows: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, default=str))
        return
    if not rows:
        print("the dead-letter subject is empty")
        return
    import pandas as pd

    print(pd.DataFrame(rows).to_string(index=False))
    print(f"{len(rows)} dead letter(s)")
