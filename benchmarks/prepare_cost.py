"""What ``prepare`` alone costs: its memory and its CPU, on two frames of 200,000 rows.

    python benchmarks/prepare_cost.py [--rows 200000] [--repeat 5]

``prepare`` (normalising, de-duplicating and keying a frame's inputs) runs first in every
``enrich`` and ``estimate``. Three frames: ``distinct``, ``crm_frame``'s e-mails (every one
distinct: the first-run benchmark's frame, whose e-mails come nearly in sorted order),
``shuffled``, the same rows in a random order, and ``messy``, e-mails of which about
36,000 are distinct once normalised, with NA, blanks, mixed case, spaces, ``mailto:``
and invalid values.

Each frame is measured in a fresh process (memory a call frees mostly stays resident, so
one call must not inherit another's): the process's resident memory (RSS, sampled every
5 ms on a thread) above its start, at the peak and when ``prepare`` returned; Arrow's own
peak (a proxy memory pool set as the default for the call: every Arrow buffer ``prepare``
allocates, and only those); then ``prepare``'s CPU seconds (``time.process_time``), the
median of ``--repeat`` calls. Run it with another tree's interpreter to compare
(``/other/tree/.venv/bin/python benchmarks/prepare_cost.py``): the script imports the
``claynb`` that interpreter has installed.

Side by side with main (b354ca6; two pairs, loads of 6 to 8 on 2 CPUs, ``--repeat 7``),
this tree first, RSS at the peak, Arrow's peak, CPU:

- distinct: 46.4 and 50.6 MB against 107.4 and 107.5; Arrow 3.2 MB against 38.2;
  0.174 and 0.162 CPU-s against 0.175 and 0.170.
- shuffled: 48.1 and 48.2 MB against 102.3 and 102.4; Arrow 3.2 against 38.2; but
  0.209 and 0.199 CPU-s against 0.175 and 0.171: Arrow's sort of 200,000 distinct
  values in a random order (50 to 70 ms) costs more than the hashing it replaced (20 to
  35 ms); in the order ``crm_frame`` gives, about 10 ms.
- messy: 29.0 and 30.1 MB against 36.6 and 36.7; Arrow 5.6 against 10.9; 0.054 and
  0.050 CPU-s against 0.054 and 0.046 (its distinct values hold about 1 MB, so they are
  hashed: the sort would take 0.03 s more).

What is left of the distinct frame's 46 to 50 MB: the keys, a 32-character ``str`` each
(about 19 MB with their list), the groups' normalised text (10.8 MB, alive to the
merge), the rows' groups (1.6 MB), and numpy's short-lived arrays of a row each.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time

import pandas as pd
import psutil
import pyarrow as pa
from enrich_overhead import RssPeak, crm_frame

FRAMES = ("distinct", "shuffled", "messy")


def messy_frame(rows: int) -> pd.DataFrame:
    """E-mails as a spreadsheet holds them: 48,000 ways of writing them (NA, blanks, case,
    spaces, ``mailto:``, invalid), about 36,000 distinct once normalised."""
    values: list[str | None] = []
    for i in range(rows):
        j = (i * 7919) % 48_000
        shape = j % 8
        if shape == 0:
            values.append(None)
        elif shape == 1:
            values.append("  ")
        elif shape == 2:
            values.append(f"  Person{j // 2}@Company{j % 300}.COM ")
        elif shape == 3:
            values.append(f"mailto:person{j // 2}@company{j % 300}.com")
        elif shape == 4:
            values.append(f"not an e-mail {j}")
        else:
            values.append(f"person{j // 2}@company{j % 300}.com")
    return pd.DataFrame({"Email": values})


def frame(name: str, rows: int) -> pd.DataFrame:
    if name == "messy":
        return messy_frame(rows)
    df = crm_frame(rows)
    if name == "shuffled":  # the same rows in a random order (sorting them costs more)
        df = df.sample(frac=1.0, random_state=13, ignore_index=True)
    return df


def measure(name: str, rows: int, repeat: int) -> str:
    """One frame's figures, as a line (run in a process of its own)."""
    from claynb._routines import get_routine
    from claynb.pipeline._normalise import prepare

    df = frame(name, rows)
    gc.collect()  # what building the frame freed is not counted for prepare, nor reused by it
    pa.default_memory_pool().release_unused()
    routine = get_routine("enrich-person")
    inputs = {"email": "Email"}
    pool = pa.proxy_memory_pool(pa.default_memory_pool())
    default = pa.default_memory_pool()
    with RssPeak() as rss:
        pa.set_memory_pool(pool)
        try:
            prepared = prepare(df, routine, inputs)
        finally:
            pa.set_memory_pool(default)
        end = rss.proc.memory_info().rss - rss.base
    groups, arrow_peak = prepared.groups, pool.max_memory()
    del prepared  # before the pool its buffers came from
    times = []
    for _ in range(repeat):
        start = time.process_time()
        prepare(df, routine, inputs)
        times.append(time.process_time() - start)
    mb = 1e6
    return (
        f"{name:<9} {rows:>8,} rows {groups:>8,} groups  "
        f"RSS peak +{rss.delta / mb:6.1f} MB, at its end +{end / mb:6.1f} MB  "
        f"Arrow peak {arrow_peak / mb:6.1f} MB  "
        f"CPU {statistics.median(times):.3f} s (median of {repeat})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--frame", choices=FRAMES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.frame:
        print(measure(args.frame, args.rows, args.repeat), flush=True)
        return
    import claynb

    print(f"claynb from {claynb.__file__}; load {psutil.getloadavg()}")
    for name in FRAMES:
        command = [sys.executable, __file__, "--frame", name, "--rows", str(args.rows)]
        subprocess.run([*command, "--repeat", str(args.repeat)], check=True)


if __name__ == "__main__":
    main()
