"""How much does the page size matter when a search is paged under a rate limit?

``claynb.search`` fetches the same 5,000 people from an in-process emulator with a rate
limit (5 requests/s by default), once per page size: Clay's default page of 20, claynb's
100, the OpenAPI's maximum of 500, and 100 on the Free plan (50 a request there, found by
one refused page). For each it prints the records fetched and, from the emulator's own
meters, the requests made (the free field-list check and the create included) and the
pages served, then records/s and the speed-up over pages of 20 measured in the same run.
Every run fetches the same records (the same search gives the same records), so only the
paging differs.

    python benchmarks/search_paging.py
    python benchmarks/search_paging.py --records 2000 --rps 10
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass

import claynb

FILTERS = {"location_countries_include": ["Germany", "France", "United States"]}  # ~65,000
SCENARIOS = (("growth", 20), ("growth", 100), ("growth", 500), ("free", 100))


@dataclass
class Outcome:
    plan: str
    page_size: int
    records: int
    requests: int
    pages: int
    elapsed_s: float

    @property
    def per_s(self) -> float:
        return self.records / self.elapsed_s


def measure(plan: str, page_size: int, records: int, rps: float, home: str) -> Outcome:
    quota = {"search_period_quota": records * 2}  # Free's default quota is smaller than the run
    with claynb.Emulator(plan=plan, run_latency_s=0, rate_limit_rps=rps, **quota) as emu:
        client = claynb.ClayClient(emu.api_key, base_url=emu.url)
        started = time.perf_counter()
        frame = claynb.search(
            "people",
            filters=FILTERS,
            limit=records,
            page_size=page_size,
            client=client,
            progress=False,
            home=home,
        )
        elapsed = time.perf_counter() - started
        meters = emu.meters(charges=False)
        client.close()
    return Outcome(
        plan,
        page_size,
        len(frame),
        meters["requests"]["total"],
        meters["search"]["pages"],
        elapsed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--rps", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="claynb-bench-") as home:
        outcomes = [measure(p, s, args.records, args.rps, home) for p, s in SCENARIOS]
    base = outcomes[0].per_s
    print(f"{args.records} records, emulator rate limit {args.rps:g} requests/s")
    print(
        f"{'plan':<8} {'page':>5} {'records':>8} {'requests':>9} {'pages':>6} "
        f"{'records/s':>10} {'vs 20':>7}"
    )
    for o in outcomes:
        print(
            f"{o.plan:<8} {o.page_size:>5} {o.records:>8} {o.requests:>9} {o.pages:>6} "
            f"{o.per_s:>10.1f} {o.per_s / base:>6.1f}x"
        )


if __name__ == "__main__":
    main()
