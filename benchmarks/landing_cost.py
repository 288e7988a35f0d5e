"""What landing a run costs: ``Journal.finished`` alone, 2,000 runs of 100 answers.

    python benchmarks/landing_cost.py [--runs 2000] [--prefill 200000] [--fold]

A first enrich run of 200,000 rows lands 2,000 runs of 100 answers: each is one
transaction that caches the answers, records the charge in the ledger and marks the
batch finished (:meth:`claynb.pipeline._journal.Journal.finished`). This times that alone,
in CPU seconds of this process (``time.process_time``: user and system, which a busy
machine does not stretch the way it does the wall clock), into a state file whose cache
already holds ``--prefill`` other answers. Each batch is journaled (``intent``,
``started``) untimed before it lands, as the direct tier does. Then it checks what was
landed is there: every answer found by a bulk look-up.

For a side-by-side figure, run the same file against another tree in the same minute
(``git archive main | tar -x -C /tmp/main`` then ``PYTHONPATH=/tmp/main python
benchmarks/landing_cost.py``), and quote ``uptime`` beside both.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from claynb._routines import Cost
from claynb.pipeline._cache import cache_put
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import CostSource, ItemResult, Status, item_key

ROUTINE = "enrich-person"


def prefill(journal: Journal, rows: int) -> None:
    """``rows`` other answers in the cache, 100,000 a transaction."""
    for lo in range(0, rows, 100_000):
        answers = [
            (
                item_key(ROUTINE, {"email": f"other{i}@prefill{i % 977}.io"}),
                "enriched",
                {"full_name": f"Other {i}", "title": "VP Sales", "company": "Prefill"},
            )
            for i in range(lo, min(rows, lo + 100_000))
        ]
        with journal.transaction() as conn:
            cache_put(conn, ROUTINE, answers, now=time.time())
    if hasattr(journal, "fold"):  # not in a tree from before the inbox (a side-by-side run)
        journal.fold()


def run_results(run: int, size: int) -> list[ItemResult]:
    """A run's answers as the direct tier hands them to ``finished``: most enriched."""
    results = []
    for i in range(run * size, (run + 1) * size):
        key = item_key(ROUTINE, {"email": f"person{i}@company{i % 5000}.com"})
        if i % 10 == 9:
            results.append(ItemResult(key, Status.NO_MATCH, cost=Cost(1.0, 0.0)))
            continue
        answer = {
            "full_name": f"Person {i}",
            "title": "Head of RevOps",
            "company": f"Company {i % 5000}",
            "linkedin_url": f"https://linkedin.example/in/person{i}",
            "location": "Berlin, DE",
            "seniority": "vp",
        }
        results.append(
            ItemResult(
                key, Status.ENRICHED, answer, cost=Cost(1.0, 2.0), cost_source=CostSource.METERED
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--prefill", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, Journal.open(home) as journal:
        start = time.perf_counter()
        prefill(journal, args.prefill)
        filled = time.perf_counter() - start
        landing = 0.0
        keys: list[str] = []
        for run in range(args.runs):
            results = run_results(run, args.size)
            keys += [r.key for r in results]
            batch = journal.intent(ROUTINE, "direct", {r.key: {} for r in results})
            journal.started(batch, f"run-{run}")
            cpu = time.process_time()
            journal.finished(f"run-{run}", results)
            landing += time.process_time() - cpu
        cpu = time.process_time()
        journal.close()
        closing = time.process_time() - cpu
        with Journal.open(home) as again:
            found = len(again.cache_hits(ROUTINE, keys, results=False).at)
    per_run_ms = 1000 * (landing + closing) / args.runs
    print(f"cache pre-filled with {args.prefill:,} answers in {filled:.0f} s")
    print(
        f"landing {args.runs:,} runs of {args.size}: {landing:.2f} CPU-s, closing the "
        f"journal {closing:.2f} CPU-s; {per_run_ms:.2f} ms CPU a run"
    )
    print(f"answers found again: {found:,} of {len(keys):,}")


if __name__ == "__main__":
    main()
