"""claynb's own overhead: 200,000 rows through enrich against an instant, unlimited emulator.

    python benchmarks/enrich_overhead.py [--rows 200000]

The emulator runs in a separate process (zero run latency, no rate limit, meters large
enough never to run out), so what is measured is claynb: normalising, de-duplicating,
journaling, sending 2,000 runs of 100 over loopback HTTP, polling, caching, the ledger
and merging back into a frame. The frame is a CRM export shape (ten text columns).

Prints rows/s end to end (target >= 5,000) and peak memory as a multiple of the input
frame's ``memory_usage(deep=True)`` (target <= 3x), measured as the process's resident
memory (RSS, sampled every 5 ms) above what it was before the call. ``--tracemalloc``
adds a second run measured with tracemalloc (Python allocations only; much slower).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import threading
import time
import tracemalloc
from typing import Any

import pandas as pd
import psutil

TARGET_ROWS_PER_S = 5_000
TARGET_MEMORY_RATIO = 3.0


def serve(conn: Any, stop: Any) -> None:
    """Child process: an instant emulator with meters that never run out."""
    import claynb

    unlimited = claynb.Plan("unlimited", 0.0, 10**12, 10**12)
    emu = claynb.Emulator(plan=unlimited, run_latency_s=0, rate_limit_rps=None)
    emu.start()
    conn.send((emu.url, emu.api_key))
    stop.wait()
    emu.stop()


def crm_frame(rows: int) -> pd.DataFrame:
    """A CRM export's shape: ten text columns, every email distinct."""
    sources = ["Webinar", "Inbound", "Event", "Partner", "Outbound"]
    statuses = ["New", "Working", "Nurture", "Qualified"]
    titles = ["VP Sales", "Head of RevOps", "Growth Lead", "CTO", "Data Engineer"]
    countries = ["US", "GB", "DE", "FR", "CA", "NL"]
    return pd.DataFrame(
        {
            "Lead ID": [f"L-{i:07d}" for i in range(rows)],
            "Name": [f"Person{i} Surname{i % 997}" for i in range(rows)],
            "Email": [f"person{i}.surname{i % 997}@company{i % 5000}.com" for i in range(rows)],
            "Company": [f"Company {i % 5000}" for i in range(rows)],
            "Domain": [f"company{i % 5000}.com" for i in range(rows)],
            "Title": [titles[i % 5] for i in range(rows)],
            "Country": [countries[i % 6] for i in range(rows)],
            "Lead Source": [sources[i % 5] for i in range(rows)],
            "Lead Status": [statuses[i % 4] for i in range(rows)],
            "Created": [f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(rows)],
        }
    )


class RssPeak:
    """Samples this process's resident memory on a thread; the peak above the start."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def delta(self) -> int:
        return self.peak - self.base


def enrich_once(df: pd.DataFrame, url: str, key: str) -> tuple[pd.DataFrame, float]:
    import claynb

    client = claynb.ClayClient(api_key=key, base_url=url)
    home = tempfile.mkdtemp(prefix="claynb-bench-")
    start = time.perf_counter()
    out = claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, home=home
    )
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also measure a second run with tracemalloc"
    )
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    stop = ctx.Event()
    server = ctx.Process(target=serve, args=(child, stop), daemon=True)
    server.start()
    url, key = parent.recv()
    try:
        df = crm_frame(args.rows)
        frame_bytes = int(df.memory_usage(deep=True).sum())
        enrich_once(df.head(500), url, key)  # warm imports and the connection pool

        cpu_start = psutil.Process().cpu_times()
        with RssPeak() as rss:
            out, seconds = enrich_once(df, url, key)
        cpu_end = psutil.Process().cpu_times()
        cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
        statuses = out["clay_status"].value_counts().to_dict()
        del out

        traced_peak = traced_seconds = None
        if args.tracemalloc:
            tracemalloc.start()
            out, traced_seconds = enrich_once(df, url, key)
            _, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    finally:
        stop.set()
        server.join(30)

    rate = args.rows / seconds
    print(
        f"enrich_overhead: {args.rows:,} rows, enrich-person, emulator in another process "
        f"(zero latency, unlimited)"
    )
    print(f"  statuses: {statuses}")
    print(f"  input frame memory_usage(deep=True): {frame_bytes / 1e6:.1f} MB")
    print(
        f"  end to end: {seconds:.1f} s = {rate:,.0f} rows/s "
        f"(target >= {TARGET_ROWS_PER_S:,}: {'met' if rate >= TARGET_ROWS_PER_S else 'MISSED'})"
    )
    measured = [("RSS peak above the start of the call", rss.delta)]
    if traced_peak is not None:
        measured.append(("tracemalloc peak (Python allocations during the call)", traced_peak))
    load = psutil.getloadavg()[0]
    print(
        f"  claynb's process used {cpu:.1f} s of CPU = {args.rows / cpu:,.0f} rows per CPU-second "
        f"(load average {load:.1f} on {psutil.cpu_count()} CPUs: on a busy machine the wall "
        f"clock rate falls, the CPU rate does not)"
    )
    for name, peak in measured:
        ratio = peak / frame_bytes
        verdict = "met" if ratio <= TARGET_MEMORY_RATIO else "MISSED"
        print(
            f"  {name}: {peak / 1e6:.1f} MB = {ratio:.2f}x the frame "
            f"(target <= {TARGET_MEMORY_RATIO:g}x: {verdict})"
        )
    if traced_seconds is not None:
        print(f"  (the tracemalloc run took {traced_seconds:.1f} s: tracing slows Python down)")


if __name__ == "__main__":
    main()
