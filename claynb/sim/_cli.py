"""``claynb simulate``: a simulation (or the decision matrix) to a table on stdout, or a PNG.

claynb simulate --volume 20000 --slo 300                 # every tier side by side
claynb simulate --tier queue --workers 8 --png queue.png
claynb simulate --volume 20000 --recommend --team-size 4 --budget 5000
claynb simulate --matrix --png matrix.png                # the heatmap, your point marked
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from claynb.sim._arrivals import ArrivalProfile
from claynb.sim._tiers import TIERS, ClayBehaviour, RunLatency
from claynb.sim._units import count, duration, summary_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tier", choices=[*TIERS, "all"], default="all", help="tier to simulate (default: all)"
    )
    parser.add_argument(
        "--volume", type=float, default=10_000, help="leads per day (default 10000)"
    )
    parser.add_argument("--days", type=float, default=1.0, help="days to simulate (default 1)")
    parser.add_argument(
        "--arrivals", choices=["steady", "business_hours"], default="business_hours"
    )
    parser.add_argument(
        "--burstiness", type=float, default=0.0, help="share of leads arriving in bursts, 0-1"
    )
    parser.add_argument("--burst-size", type=int, default=500, help="leads per burst (default 500)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="workers (queue), concurrency (direct), consumers (events)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="items per Clay run, 1-100")
    parser.add_argument(
        "--rate-limit", type=_rate, default=10.0, help="Clay requests/s, or 'none' (default 10)"
    )
    parser.add_argument(
        "--latency",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=(30.0, 60.0),
        help="Clay seconds per item, uniform range (default 30 60)",
    )
    parser.add_argument(
        "--failure-rate", type=float, default=0.01, help="transient run failures (default 0.01)"
    )
    parser.add_argument(
        "--slo", type=float, default=300.0, help="latency SLO in seconds (default 300)"
    )
    parser.add_argument(
        "--plan", default="growth", help="Clay plan: free, launch, growth, enterprise"
    )
    parser.add_argument("--budget", type=float, default=None, help="monthly Clay budget in USD")
    parser.add_argument(
        "--routine", default="enrich-person", help="routine id (default enrich-person)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--recommend", action="store_true", help="also print the recommended tier and why"
    )
    parser.add_argument(
        "--team-size", type=int, default=None, help="team size, for --recommend and --matrix"
    )
    parser.add_argument("--matrix", action="store_true", help="compute the decision matrix instead")
    parser.add_argument(
        "--png", metavar="PATH", default=None, help="write a PNG instead of the table"
    )


def _rate(text: str) -> float | None:
    if text.lower() in ("none", "unlimited", "0"):
        return None
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("rate limit must be positive, or 'none'")
    return value


def _common(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "arrivals": ArrivalProfile(
            shape=args.arrivals, burstiness=args.burstiness, burst_size=args.burst_size
        ),
        "clay": ClayBehaviour(
            run_latency=RunLatency("uniform", low=args.latency[0], high=args.latency[1]),
            rate_limit_rps=args.rate_limit,
            failure_rate=args.failure_rate,
        ),
        "plan": args.plan,
        "routine": args.routine,
        "seed": args.seed,
    }


def run(args: argparse.Namespace) -> int:
    try:
        if args.matrix:
            return _matrix(args)
        return _simulate(args)
    except (ValueError, KeyError) as exc:
        print(f"claynb simulate: {exc}", file=sys.stderr)
        return 2


def _simulate(args: argparse.Namespace) -> int:
    from claynb.sim._simulate import simulate

    tiers = TIERS if args.tier == "all" else (args.tier,)
    results = [
        simulate(
            t,
            args.volume,
            days=args.days,
            workers=args.workers,
            batch_size=args.batch_size,
            monthly_budget_usd=args.budget,
            slo_s=args.slo,
            **_common(args),
        )
        for t in tiers
    ]
    if args.png:
        _write_png(results, args.png)
        print(f"wrote {args.png}")
    else:
        table = summary_table(results)
        print(
            f"{count(args.volume)} leads/day, {args.days:g} day(s) simulated, "
            f"SLO {duration(args.slo)}, plan {args.plan}"
        )
        print(table.to_string())
    if args.recommend:
        _print_recommendation(args)
    return 0


def _write_png(results: list[Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(results),
        3,
        figsize=(16, 3.6 * len(results)),
        squeeze=False,
        gridspec_kw={"width_ratios": [3, 3, 1.5]},
    )
    for row, result in zip(axes, results, strict=True):
        result.plot_latency(row[0])
        result.plot_queue_depth(row[1])
        result.plot_cost(row[2])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _print_recommendation(args: argparse.Namespace) -> None:
    from claynb.sim._matrix import recommend

    rec = recommend(
        args.volume,
        args.slo,
        team_size=args.team_size,
        monthly_budget_usd=args.budget,
        **_common(args),
    )
    print(f"\nrecommended: {rec}")


def _matrix(args: argparse.Namespace) -> int:
    from claynb.sim._heatmap import plot_decision_matrix
    from claynb.sim._matrix import decision_matrix

    options = {**_common(args), "team_size": args.team_size, "monthly_budget_usd": args.budget}
    if args.png:
        fig = plot_decision_matrix(volume_per_day=args.volume, latency_slo_s=args.slo, **options)
        fig.savefig(args.png, dpi=100)
        print(f"wrote {args.png}")
        return 0
    frame = decision_matrix(args.volume, args.slo, **options)
    edges = frame.attrs["thresholds"]
    print(
        f"SLO {args.slo:g} s: direct -> queue at {edges['direct_to_queue']:,.0f}/day, "
        f"queue -> events at {edges['queue_to_events']:,.0f}/day"
    )
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(frame.to_string())
    return 0
