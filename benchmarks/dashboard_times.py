"""How long the notebooks' dashboards take to draw and redraw, side by side in one run.

    python benchmarks/dashboard_times.py [--repeat 3]

For each dashboard: the first draw, cold (nothing simulated yet) and, for the matrix, as
notebook 05 has it (the cells above already filled the shared ``SimulationCache``); then the
redraw after each control moves once, in the order a person would try them, each labelled
with what it had to do (re-read or re-price what was simulated, or simulate again: those
show a progress bar). Then ``decision_matrix`` and ``decision_grid`` on their own, and the
two sharing one cache.

The targets (issue 15): a first draw within 1 s, every redraw within 0.3 s, each function
within 1 s. Every row prints the wall-clock time (best of ``--repeat``), the CPU time of
that same try (other work on a shared machine stretches the first, hardly the second), the
target and whether it is met. Compare rows with each other, not with another machine; the
machine's load average is printed before and after (on a machine busy with other work the
wall clock stretches towards the CPU time, as the simulations' second thread waits for a core).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claynb import sim

FIRST_DRAW_TARGET_S = 1.0
REDRAW_TARGET_S = 0.3
FUNCTION_TARGET_S = 1.0
SIMULATOR_MOVES: list[tuple[str, Any, str]] = [
    ("slo_s", 120.0, "re-read"),
    ("workers", 8, "queue re-simulated"),
    ("volume_per_day", 30_000.0, "re-simulated"),
    ("plan", "launch", "re-billed"),
    ("burstiness", 0.3, "re-simulated"),
    ("monthly_budget_usd", 20_000.0, "re-simulated"),
]
MATRIX_MOVES: list[tuple[str, Any, str]] = [
    ("team_size", 3, "re-priced"),
    ("engineer_usd_hour", 150.0, "re-priced"),
    ("delay_usd_per_lead_hour", 2.0, "re-priced"),
    ("worker_usd_month", 40.0, "re-priced"),
    ("slo_s", 120.0, "re-priced"),
    ("volume_per_day", 5_000.0, "re-priced, a grid volume"),
    ("volume_per_day", 150_000.0, "one volume simulated"),
    ("plan", "launch", "re-billed"),
    ("burstiness", 0.3, "grid re-simulated"),
    ("rate_limit_rps", 5.0, "grid re-simulated"),
]


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


def timed(action: Callable[[], Any]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def best_of(repeat: int, action: Callable[[], Any]) -> Timing:
    return min((timed(action) for _ in range(repeat)), key=lambda t: t.wall_s)


def redraws(board: sim.Dashboard, moves: list[tuple[str, Any, str]]) -> list[tuple[str, Timing]]:
    out = []
    for name, value, what in moves:

        def move(name: str = name, value: Any = value) -> None:
            board.controls[name].value = value

        out.append((f"redraw: {name} ({what})", timed(move)))
    return out


def row(label: str, t: Timing, target: float) -> str:
    verdict = "ok" if t.wall_s <= target else f"over {target:g} s"
    return f"  {label:<48} {t.wall_s:6.3f} s  (cpu {t.cpu_s:6.3f} s)  {verdict}"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"before: {load()}\n")
    print("simulator dashboard (notebook 04)")
    print(row("first draw", best_of(args.repeat, sim.simulator_dashboard), FIRST_DRAW_TARGET_S))
    board = sim.simulator_dashboard()
    for label, t in redraws(board, SIMULATOR_MOVES):
        print(row(label, t, REDRAW_TARGET_S))

    print("\nmatrix dashboard (notebook 05)")
    cold = best_of(args.repeat, sim.matrix_dashboard)
    print(row("first draw, cold (grid simulated)", cold, FIRST_DRAW_TARGET_S))
    cache = sim.SimulationCache()
    sim.decision_grid(cache=cache)  # what notebook 05's cells above the dashboard leave
    warm = best_of(args.repeat, lambda: sim.matrix_dashboard(cache=cache))
    print(row("first draw in notebook 05 (shared cache)", warm, FIRST_DRAW_TARGET_S))
    board = sim.matrix_dashboard(cache=cache)
    for label, t in redraws(board, MATRIX_MOVES):
        print(row(label, t, REDRAW_TARGET_S))

    print("\nthe cells above the dashboard, each in a fresh cache")
    for name, function in (
        ("decision_matrix", sim.decision_matrix),
        ("decision_grid", sim.decision_grid),
    ):
        print(row(f"{name}()", best_of(args.repeat, function), FUNCTION_TARGET_S))
    shared = sim.SimulationCache()
    both = timed(lambda: (sim.decision_matrix(cache=shared), sim.decision_grid(cache=shared)))
    print(row("both, sharing one SimulationCache", both, 2 * FUNCTION_TARGET_S))
    print(f"\nafter: {load()}")


if __name__ == "__main__":
    main()
