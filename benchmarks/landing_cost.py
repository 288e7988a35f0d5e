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
(``git archive main | tar -x -C /tmp/main`` then, from /tmp/main, ``PYTHONPATH=/tmp/main
python /path/to/this/landing_cost.py``), and quote ``uptime`` beside both.

What it showed (issue 13), per run of 100, the fold included:

- Each answer written straight into the cache (keyed by a 64-bit hash, so the 100 answers
  of a run fall on about 100 random pages): 2.8 to 3.0 ms CPU with 200,000 answers in the
  cache (load 1.9 to 2.4 on 2 CPUs), 3.2 ms with 2,000,000 (load 2.8 to 4.9). Most of it is
  system time: the write-ahead log gets the hundred pages at every commit (two writes a
  page), and copies them back every 80 runs. A larger page cache (``PRAGMA cache_size``,
  128 MB) or ``mmap_size`` did not help (3.0 to 3.6 ms at 200,000, noise included): the
  pages were in memory already; writing them out at every commit is the cost.
- Appended to an inbox (``cache_inbox``, rowid order: a few pages a commit), folded into
  the cache in key order at the end: 0.92 to 0.96 ms with 200,000 (3x less, side by side,
  same load), 1.80 ms with 2,000,000 (1.8x less). Of that, the landings themselves are
  about 0.45 ms (statements, the answers' JSON), and the fold the rest: with 2 million
  answers in the cache, 200,000 new ones fall on three quarters of its 150,000 pages, so
  a fold rewrites most of the file (2.0 to 2.3 CPU-s, of which the checkpoint 0.4 and the
  sort 0.15): it cannot get much cheaper while the cache is keyed by a hash.
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
