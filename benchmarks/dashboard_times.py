"""How long the notebooks' dashboards take to draw and redraw, side by side in one run.

    python benchmarks/dashboard_times.py [--repeat 3]

For each dashboard: the first draw, cold (nothing simulated yet) and as notebook 05 has it
(the cells above already filled the shared ``SimulationCache``), then the redraw after each
control moves once, in the order a person would try them. Each redraw is labelled with what
it had to do: re-price what was simulated, or simulate again (those show a progress bar).
Then the figures the dashboards' first draw replaced: ``decision_matrix`` and
``decision_grid`` alone, and both sharing one cache.

The targets: a first draw within 1 s and a redraw within 0.3 s wherever nothing has to be
simulated again. Times are wall clock, best of ``--repeat``, on a shared machine: compare
the rows with each other, not with another machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from claynb import sim

FIRST_DRAW_TARGET_S = 1.0
REDRAW_TARGET_S = 0.3
SIMULATOR_MOVES: list[tuple[str, Any, str]] = [
    ("slo_s", 120.0, "re-read"),
    ("workers", 8, "queue re-simulated"),
    ("volume_per_day", 30_000.0, "re-simulated"),
    ("plan", "launch", "re-simulated"),
    ("burstiness", 0.3, "re-simulated"),
    ("monthly_budget_usd", 20_000.0, "re-simulated"),
]
MATRIX_MOVES: list[tuple[str, Any, str]] = [
    ("team_size", 3, "re-priced"),
    ("engineer_usd_hour", 150.0, "re-priced"),
    ("delay_usd_per_lead_hour", 2.0, "re-priced"),
    ("worker_usd_month", 40.0, "re-priced"),
    ("slo_s", 120.0, "re-priced"),
    ("volume_per_day", 5_000.0, "re-priced (a grid volume)"),
    ("volume_per_day", 150_000.0, "one volume simulated"),
    ("plan", "launch", "grid re-simulated"),
    ("burstiness", 0.3, "grid re-simulated"),
    ("rate_limit_rps", 5.0, "grid re-simulated"),
]


def best_of(repeat: int, make: Callable[[], float]) -> float:
    return min(make() for _ in range(repeat))


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def redraws(
    board: sim.Dashboard, moves: list[tuple[str, Any, str]]
) -> list[tuple[str, str, float]]:
    out = []
    for name, value, what in moves:

        def move(name: str = name, value: Any = value) -> None:
            board.controls[name].value = value

        out.append((name, what, timed(move)))
    return out


def row(label: str, seconds: float, target: float | None) -> str:
    verdict = "" if target is None else ("  ok" if seconds <= target else f"  over {target:g} s")
    return f"  {label:<46} {seconds:7.3f} s{verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print("simulator dashboard (notebook 04)")
    first = best_of(args.repeat, lambda: timed(sim.simulator_dashboard))
    print(row("first draw", first, FIRST_DRAW_TARGET_S))
    board = sim.simulator_dashboard()
    for name, what, seconds in redraws(board, SIMULATOR_MOVES):
        target = REDRAW_TARGET_S if what in ("re-read", "queue re-simulated") else None
        print(row(f"redraw: {name} ({what})", seconds, target))

    print("\nmatrix dashboard (notebook 05)")
    cold = best_of(args.repeat, lambda: timed(sim.matrix_dashboard))
    print(row("first draw, cold (grid simulated)", cold, None))
    cache = sim.SimulationCache()
    sim.decision_grid(cache=cache)  # what notebook 05's cells above the dashboard leave

    def warm() -> float:
        return timed(lambda: sim.matrix_dashboard(cache=cache))

    warm_s = best_of(args.repeat, warm)
    print(row("first draw in notebook 05 (shared cache)", warm_s, FIRST_DRAW_TARGET_S))
    board = sim.matrix_dashboard(cache=cache)
    for name, what, seconds in redraws(board, MATRIX_MOVES):
        target = REDRAW_TARGET_S if what.startswith("re-priced") else None
        print(row(f"redraw: {name} ({what})", seconds, target))
    print(f"  cold / warm first draw: {cold / warm_s:.1f}x")

    print("\nthe cells above the dashboard")
    alone = timed(sim.decision_matrix) + timed(sim.decision_grid)
    shared = sim.SimulationCache()
    together = timed(lambda: sim.decision_matrix(cache=shared)) + timed(
        lambda: sim.decision_grid(cache=shared)
    )
    print(row("decision_matrix + decision_grid, each alone", alone, None))
    print(row("the same two sharing one SimulationCache", together, None))
    print(f"  alone / shared: {alone / together:.2f}x")


if __name__ == "__main__":
    main()
