"""What claiming rows before sending them costs, alone and with a second process.

    python benchmarks/claims_cost.py [--rows 50000]

Every enrich call claims the rows it is about to send in the state file under
``CLAYNB_HOME`` (:mod:`claynb.pipeline._claims`), so two processes never pay for the same
row. This prints, measured side by side in one run:

1. the claims alone: claiming ``--rows`` fresh rows and ending the claims, in CPU
   microseconds per row, and as a share of a first enrich run's CPU per row;
2. a first enrich run of ``--rows`` rows in rows per CPU-second of this process, alone,
   then with a second process enriching as many other rows on the same home at the same
   time (its claims, journal and cache writes take turns with ours on SQLite's one
   writer), then with a second process on the *same* rows (one sends, the other waits and
   takes the answers: the rows are paid once).

The emulator runs in another process (zero latency, unlimited meters), as in
``enrich_overhead.py``, so what is measured is claynb. Figures are CPU seconds of the
measured process (``user + system``): a loaded machine slows the wall clock, not them.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from typing import Any

import psutil
from enrich_overhead import crm_frame, instant_emulator, scratch_home

import claynb
from claynb.pipeline._claims import Claims
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import item_key


def cpu_seconds() -> float:
    """This process's CPU time, every thread, at the clock's full resolution (psutil's
    ``cpu_times`` counts whole ticks, so claiming a few thousand rows read as zero)."""
    return time.process_time()


def claims_alone(rows: int) -> float:
    """CPU seconds to claim ``rows`` fresh keys and end the claims, in a fresh home."""
    keys = [item_key("enrich-person", {"email": f"p{i}@claims.com"}) for i in range(rows)]
    with Journal.open(scratch_home("claynb-claims-")) as journal:
        start = cpu_seconds()
        with Claims(journal, "enrich-person") as claims:
            taken = claims.take(keys)
        spent = cpu_seconds() - start
    assert len(taken.mine) == rows
    return spent


def enrich(rows: tuple[int, int], url: str, key: str, home: str) -> tuple[float, Any]:
    """One first run of the CRM frame's ``rows``; (CPU seconds, statuses)."""
    df = crm_frame(rows[1]).iloc[rows[0] :]
    client = claynb.ClayClient(api_key=key, base_url=url)
    start = cpu_seconds()
    out = claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, home=home
    )
    return cpu_seconds() - start, out["clay_status"].value_counts().to_dict()


def second(rows: tuple[int, int], url: str, key: str, home: str, go: Any, done: Any) -> None:
    """Child process: wait for the signal, then enrich ``rows`` on the same home."""
    go.wait()
    done.send(enrich(rows, url, key, home))


def with_second(rows: int, other: tuple[int, int], url: str, key: str) -> tuple[float, Any, Any]:
    """Our first run of ``rows`` while a second process enriches ``other`` on the same home."""
    home = scratch_home("claynb-claims-")
    ctx = mp.get_context("spawn")
    go, (theirs, ours) = ctx.Event(), ctx.Pipe()
    child = ctx.Process(target=second, args=(other, url, key, home, go, ours), daemon=True)
    child.start()
    time.sleep(3)  # let the child import everything before both start
    go.set()
    cpu, statuses = enrich((0, rows), url, key, home)
    their_cpu, their_statuses = theirs.recv()
    child.join(60)
    return cpu, statuses, (their_cpu, their_statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    n = args.rows

    with instant_emulator() as (url, key):
        enrich((0, 500), url, key, scratch_home("claynb-claims-"))  # warm up
        claim_cpu = claims_alone(n)
        alone, statuses = enrich((0, n), url, key, scratch_home("claynb-claims-"))
        beside, _, _ = with_second(n, (n, 2 * n), url, key)
        same, same_statuses, (their_cpu, their_statuses) = with_second(n, (0, n), url, key)

    load = psutil.getloadavg()[0]
    print(f"claims_cost: {n:,} rows, enrich-person, emulator in another process")
    print(f"  (load average {load:.1f} on {psutil.cpu_count()} CPUs; CPU seconds of this process)")
    print(
        f"  claims alone: {claim_cpu * 1e6 / n:.2f} us of CPU per row = "
        f"{n / claim_cpu:,.0f} rows per CPU-second = {claim_cpu / alone:.1%} of a first run"
    )
    print(f"  first run alone: {n / alone:,.0f} rows per CPU-second ({statuses})")
    print(
        f"  first run beside a second process on other rows: {n / beside:,.0f} rows per "
        f"CPU-second ({beside / alone:.2f}x the CPU of the run alone)"
    )
    print(
        f"  first run beside a second process on the same rows: {n / same:,.0f} rows per "
        f"CPU-second ({same_statuses}); the other: {their_statuses}, "
        f"{their_cpu:.1f} s of CPU"
    )


if __name__ == "__main__":
    main()
