"""claynb.enrich against the naive direct pattern, on 2,000 rows with ~1 s runs.

    python benchmarks/enrich_vs_naive.py [--rows 2000] [--sample 20]

The naive direct integration enriches one row per request and blocks on it: POST the
row, poll until it is done, then the next row. Against an emulator whose runs take about
a second (0.8 to 1.2 s), that is about a second and a half per row, so the naive loop is
timed on a sample of rows (``--sample``) and extrapolated to the whole frame; the
output says so. claynb enriches the whole frame for real, in the same run, against the
same emulator; the items it sent are read from the emulator's meters (one per row).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd

import claynb

TARGET = 50.0
LATENCY = (0.8, 1.2)
NAIVE_POLL_S = 0.5  # the naive poll loop: check, sleep, check again


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"Email": [f"lead{i}.person{i % 211}@firm{i % 97}.com" for i in range(rows)]}
    )


def naive(client: claynb.ClayClient, emails: list[str]) -> float:
    """One row per request, POST then poll, one at a time; seconds taken."""
    start = time.perf_counter()
    for i, email in enumerate(emails):
        run_id = client.run_routine(
            "enrich-person", [{"id": f"naive-{i}", "inputs": {"email": email}}]
        )
        while not client.get_run_results(run_id).complete:
            time.sleep(NAIVE_POLL_S)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--sample", type=int, default=20, help="rows the naive loop really runs")
    args = parser.parse_args()
    df = frame(args.rows)

    with claynb.Emulator(run_latency_s=LATENCY, plan="enterprise") as emu:
        client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
        sample = df["Email"].tolist()[-args.sample :]
        naive_s = naive(client, sample)
        naive_total = naive_s / len(sample) * args.rows

        before = emu.meters(charges=False)["per_routine"]["enrich-person"]["items"]
        start = time.perf_counter()
        out = claynb.enrich(
            df,
            "enrich-person",
            {"email": "Email"},
            client=client,
            progress=False,
            home=tempfile.mkdtemp(prefix="claynb-bench-"),
        )
        claynb_s = time.perf_counter() - start
        sent = emu.meters(charges=False)["per_routine"]["enrich-person"]["items"] - before

    ratio = naive_total / claynb_s
    print(
        f"enrich_vs_naive: {args.rows:,} rows, enrich-person, emulator run latency "
        f"{LATENCY[0]}-{LATENCY[1]} s"
    )
    print(
        f"  naive (one row per request, POST then poll every {NAIVE_POLL_S} s, "
        f"one at a time): {naive_s:.1f} s for a sample of {len(sample)} rows "
        f"= {naive_s / len(sample):.2f} s/row, extrapolated to {args.rows:,} rows: "
        f"{naive_total:,.0f} s"
    )
    print(
        f"  claynb.enrich: {claynb_s:.1f} s for all {args.rows:,} rows, measured "
        f"({sent:,} items sent; statuses {out['clay_status'].value_counts().to_dict()})"
    )
    print(
        f"  speed-up: {ratio:,.0f}x (target >= {TARGET:g}x: {'met' if ratio >= TARGET else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
