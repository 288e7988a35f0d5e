"""Event tier latency: lead event -> enriched contact, at a steady rate, with webhooks dropped.

    python benchmarks/events_latency.py [--rate 50] [--seconds 15] [--drop 0.2] [--latency 1.0]

Runs the whole loop locally (embedded NATS JetStream, the receiver on loopback, the
enrichment service, the claynb emulator) twice, side by side: once with no webhook lost
and once with ``--drop`` of them dropped. The emulator finishes each run in ``--latency``
seconds (1 s by default: realistic for a short Clay routine, short enough for a benchmark).
Leads are published at ``--rate`` events/s, each with distinct inputs. Printed: p50 and p95
latency from the lead event to its enriched contact, the share of leads whose run was
completed by the reconciler (its webhook never came), and the ratios between the two runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import claynb
from claynb.events import EventTier, ServiceSettings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def one_run(
    rate: float, seconds: float, drop: float, latency: float, seed: int, reconcile_timeout_s: float
) -> dict[str, Any]:
    faults = claynb.Faults(drop_webhook=drop)
    settings = ServiceSettings(
        linger_s=0.25, reconcile_timeout_s=reconcile_timeout_s, reconcile_interval_s=0.5
    )
    with claynb.Emulator(run_latency_s=latency, faults=faults, seed=seed) as emu:
        client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
        with EventTier(client, settings=settings) as tier:
            ids = _publish_steadily(tier, rate, seconds)
            settled = tier.wait(ids, timeout=reconcile_timeout_s * 4 + latency * 4 + 30)
            contacts = dict(tier.collector.contacts)
            stats = tier.service.stats if tier.service else None
        meters = emu.meters()
    latencies = [c["seen_at"] - c["event_at"] for c in contacts.values()]
    by_reconciler = sum(1 for c in contacts.values() if c.get("via") == "reconciler")
    charged = [c["inputs_key"] for c in meters["charges"]]
    return {
        "drop": drop,
        "leads": len(ids),
        "contacts": len(contacts),
        "settled": settled,
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "reconciled_share": by_reconciler / max(1, len(contacts)),
        "runs": stats.runs_started if stats else 0,
        "charged_once": len(charged) == len(set(charged)),
    }


def _publish_steadily(tier: EventTier, rate: float, seconds: float) -> list[str]:
    """``rate`` leads a second for ``seconds``, in ticks of 0.1 s, each stamped when published."""
    ids: list[str] = []
    start, tick, n = time.monotonic(), 0.1, 0
    total = int(rate * seconds)
    while n < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        batch = [
            (f"lead-{i}", {"email": f"buyer{i}.name@company{i % 97}.com"}) for i in range(n, due)
        ]
        if batch:
            ids += tier.publish_leads("enrich-person", batch)
            n = due
        time.sleep(tick)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="lead events per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long leads are published")
    parser.add_argument("--drop", type=float, default=0.2, help="share of webhooks dropped")
    parser.add_argument("--latency", type=float, default=1.0, help="emulator run latency, seconds")
    parser.add_argument(
        "--reconcile-timeout",
        type=float,
        default=3.0,
        help="seconds without a webhook before a run is polled",
    )
    args = parser.parse_args(argv)
    print(
        f"event tier: {args.rate:g} leads/s for {args.seconds:g}s, emulator run latency {args.latency:g}s, "
        f"reconciler polls after {args.reconcile_timeout:g}s; embedded NATS JetStream"
    )
    rows = [
        one_run(args.rate, args.seconds, drop, args.latency, 11, args.reconcile_timeout)
        for drop in (0.0, args.drop)
    ]
    print(
        f"{'webhooks dropped':>17} {'leads':>6} {'contacts':>8} {'p50 s':>7} {'p95 s':>7} "
        f"{'mean s':>7} {'reconciled':>10} {'runs':>5} {'charged once':>12}"
    )
    for r in rows:
        print(
            f"{r['drop']:>16.0%} {r['leads']:>6} {r['contacts']:>8} {r['p50']:>7.2f} {r['p95']:>7.2f} "
            f"{r['mean']:>7.2f} {r['reconciled_share']:>10.1%} {r['runs']:>5} {str(r['charged_once']):>12}"
        )
    base, faulty = rows
    print(
        f"ratio with {args.drop:.0%} dropped / none dropped: p50 x{faulty['p50'] / base['p50']:.2f}, "
        f"p95 x{faulty['p95'] / base['p95']:.2f}"
    )
    ok = all(r["settled"] and r["contacts"] == r["leads"] and r["charged_once"] for r in rows)
    if not ok:
        print("NOT every lead was enriched exactly once", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
