"""The compiled loops (numba) against the pure-Python ones: the same runs, to the last bit.

Both engines run here side by side (``CLAYNB_SIM_ENGINE=python`` selects the pure loops),
on a grid of settings that covers what each loop branches on: one lead or many a run, a
full batch, free or busy workers, the rate limit's spacing, failures and retries, polls
short and long, uniform and fixed latency, and the kinds the compiled loop leaves to the
pure one. Then whole decisions, both ways, must be the same frames.
"""

from __future__ import annotations

import heapq

import numpy as np
import pandas as pd
import pytest
from _sim_helpers import QUEUE_SETTING_NAMES, QUEUE_SETTINGS, queue_case

from claynb import sim
from claynb.sim._arrivals import ArrivalProfile, generate_arrivals
from claynb.sim._compiled import ENV_ENGINE, Engine, engine, kernels
from claynb.sim._draws import RunDraws
from claynb.sim._engine import Runs, batch_fcfs, compiled_batch_fcfs, fcfs_starts
from claynb.sim._simulate import simulate
from claynb.sim._tiers import ClayBehaviour, QueueTier, RunLatency

pytest.importorskip("numba", reason="the compiled engine needs numba (pip install claynb[fast])")


@pytest.fixture(autouse=True)
def pure(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The compiled loops loaded (small jobs use them only once loaded), and a way to switch
    to the pure ones inside a test: ``pure.setenv(ENV_ENGINE, "python")``."""
    monkeypatch.delenv(ENV_ENGINE, raising=False)
    assert kernels() is not None
    return monkeypatch


def test_the_engine_is_chosen_at_each_call(pure: pytest.MonkeyPatch) -> None:
    assert engine() == Engine.COMPILED and kernels(leads=10) is not None
    pure.setenv(ENV_ENGINE, "python")
    assert engine() == Engine.PYTHON and kernels() is None


def _brute_fcfs(arr: np.ndarray, svc: np.ndarray, servers: int, spacing: float) -> np.ndarray:
    free = [-np.inf] * servers
    starts, last = [], -np.inf
    for a, s in zip(arr, svc, strict=True):
        t = max(a, heapq.heappop(free), last + spacing)
        heapq.heappush(free, t + s)
        starts.append(t)
        last = t
    return np.array(starts)


@pytest.mark.parametrize("servers", [2, 3, 8, 64])
@pytest.mark.parametrize("spacing", [0.0, 0.7])
def test_multi_server_queue_is_the_pure_loop_to_the_bit(
    pure: pytest.MonkeyPatch, servers: int, spacing: float
) -> None:
    rng = np.random.default_rng(servers)
    arr = np.round(np.cumsum(rng.exponential(1.0, 5_000)), 1)  # ties as well
    svc = rng.exponential(2.5 * servers, 5_000)
    compiled = fcfs_starts(arr, svc, servers, spacing)
    pure.setenv(ENV_ENGINE, "python")
    python = fcfs_starts(arr, svc, servers, spacing)
    assert np.array_equal(compiled, python)
    np.testing.assert_allclose(python, _brute_fcfs(arr, svc, servers, spacing), rtol=0, atol=1e-9)


SETTINGS = [
    *QUEUE_SETTINGS,
    (60_000, 0.0, 1, 100, {"failure_rate": 0.05}, 30.0),
    (3_000, 0.2, 4, 100, {"rate_limit_rps": None, "failure_rate": 0.3}, 1.0),
    (8_000, 0.0, 16, 100, {"run_latency": RunLatency("fixed", low=42.0)}, 10.0),
    (8_000, 0.0, 16, 50, {"run_latency": RunLatency("uniform", low=5.0, high=200.0)}, 3.0),
]
COMPILED_KINDS = ("uniform", "fixed")  # the latency kinds the compiled loop knows


def _draws(tier: QueueTier, clay: ClayBehaviour, leads: int) -> RunDraws:
    return RunDraws(tier, clay, np.random.default_rng(5), leads)


@pytest.mark.parametrize(QUEUE_SETTING_NAMES, SETTINGS)
def test_batch_workers_make_the_pure_loops_runs_to_the_bit(
    volume: float, burstiness: float, workers: int, batch: int, clay: dict, poll: float
) -> None:
    tier, behaviour, arrivals, spacing = queue_case(volume, burstiness, workers, batch, clay, poll)
    compiled_draws, python_draws = (_draws(tier, behaviour, arrivals.size) for _ in range(2))
    compiled = compiled_batch_fcfs(arrivals, workers, batch, compiled_draws, spacing)
    if behaviour.run_latency.kind not in COMPILED_KINDS:
        assert compiled is None  # left to the pure loop (see the test below)
        return
    python = batch_fcfs(arrivals, workers, batch, python_draws, spacing, find_stretches=False)
    assert isinstance(compiled, Runs)
    for name in ("start", "first", "count", "busy"):
        assert np.array_equal(getattr(compiled, name), getattr(python, name)), name
    runs = python.start.size
    assert np.array_equal(compiled_draws.gave_up(runs), python_draws.gave_up(runs))
    # The same blocks of draws were made, so whatever is drawn next is the same too.
    assert compiled_draws.arrays()[0].size == len(python_draws.flat)


def test_latency_kinds_without_a_compiled_form_are_left_to_the_pure_loop(
    pure: pytest.MonkeyPatch,
) -> None:
    tier = QueueTier(workers=8, poll_interval_s=30.0)
    lognormal = ClayBehaviour(run_latency=RunLatency("lognormal"))
    arrivals = generate_arrivals(5_000, 1.0, None, np.random.default_rng(1))
    draws = _draws(tier, lognormal, arrivals.size)
    assert compiled_batch_fcfs(arrivals, 8, 100, draws, 0.2) is None
    compiled = simulate("queue", 5_000, workers=8, clay=lognormal, seed=2)
    pure.setenv(ENV_ENGINE, "python")
    python = simulate("queue", 5_000, workers=8, clay=lognormal, seed=2)
    assert np.array_equal(compiled.latency_s, python.latency_s, equal_nan=True)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"arrivals": ArrivalProfile(burstiness=0.3), "rate_limit_rps": 5.0},
        {"monthly_budget_usd": 20_000.0, "clay": ClayBehaviour(failure_rate=0.1)},
    ],
)
def test_decisions_are_the_same_frames_with_either_engine(
    pure: pytest.MonkeyPatch, options: dict
) -> None:
    volumes, slos = (300, 3_000, 30_000, 150_000), (60, 300, 3_600)
    compiled = sim.decision_grid(volumes, slos, **options)
    pure.setenv(ENV_ENGINE, "python")
    python = sim.decision_grid(volumes, slos, **options)
    pd.testing.assert_frame_equal(compiled, python, check_exact=True)


def test_a_small_simulation_does_not_load_numba_and_a_grid_does() -> None:
    """Loading numba costs about half a second once per process, more than a small
    simulation: that one runs the pure loops; a decision grid loads the compiled ones."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from claynb import sim\n"
        "sim.simulate('queue', 10_000)\n"
        "print('claynb.sim._kernels' in sys.modules)\n"
        "sim.decision_grid(volumes=(1_000,), slos=(300,))\n"
        "print('claynb.sim._kernels' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.parametrize("horizon", [86_400.0, 30 * 86_400.0, 1e-3])
@pytest.mark.parametrize("per_run", [False, True])
def test_runs_finished_by_each_point_are_searchsorted_s_bins(horizon: float, per_run: bool) -> None:
    """The compiled binning of queue depth finds each run's first grid point at or after its
    end by division: it must land exactly where a binary search does, grid points included."""
    compiled = kernels()
    assert compiled is not None
    rng = np.random.default_rng(7)
    grid = np.linspace(0.0, horizon, 600)
    done = np.concatenate(
        [
            rng.random(5_000) * horizon * 1.2,  # some after the horizon
            grid,  # exactly on a point
            np.nextafter(grid, np.inf),
            np.nextafter(grid, -np.inf),
            [0.0, -1.0, np.nan, np.inf, horizon],
        ]
    )
    count = rng.integers(1, 100, done.size) if per_run else np.zeros(0, np.int64)
    expected = np.bincount(
        np.searchsorted(grid, done, side="left"),
        weights=count if per_run else None,
        minlength=grid.size + 1,
    )
    got = compiled.finished_at(grid, done, count)
    assert got.tolist() == expected.astype(np.int64).tolist()
