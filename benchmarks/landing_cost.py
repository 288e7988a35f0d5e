"""What landing a run costs: ``Journal.finished`` alone, 2,000 runs of 100 answers.

    python benchmarks/landing_cost.py [--runs 2000] [--size 100] [--prefill 200000]

A first enrich run of 200,000 rows lands 2,000 runs of 100 answers: each is one
transaction that caches the answers, records the charge in the ledger and marks the
batch finished (:meth:`claynb.pipeline._journal.Journal.finished`). This times that alone,
in CPU seconds of this process (``time.process_time``: user and system, which a busy
machine does not stretch the way it does the wall clock), into a state file whose cache
already holds ``--prefill`` other answers. Each batch is journaled (``intent``,
``started``) untimed before it lands, as the direct tier does. Then it checks what was
landed is there: every answer found by a bulk look-up.

It lands the same runs twice, side by side in the same run, each into a state file of
its own: as claynb does (into the inbox, folded when the journal closes, the fold timed
with it), and the naive way (each answer written straight into the hash-keyed cache,
where its key falls: what claynb did before the inbox), and prints the ratio.

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
- Both ways in one run (this script's default, load 1.1 on 2 CPUs): 0.89 ms a run through
  the inbox, 2.30 straight into the cache: 2.60x.
- New state files have 16 KB pages (``claynb._sqlite.PAGE_SIZE``; issue 13 item 2): 0.80
  ms a run through the inbox against 0.94 with 4 KB pages, side by side with main at
  loads of 3.1 to 4.4 (two pairs); straight into the cache 3.36 to 3.51 against 2.30 to
  2.70 (4.2 to 4.4x): a random page costs more to write when it is larger, which is why
  answers go through the inbox.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import Any

from claynb._routines import Cost
from claynb.pipeline import _cache
from claynb.pipeline._cache import cache_put
from claynb.pipeline._journal import Journal
from claynb.pipeline._work import CostSource, ItemResult, Status, item_key

#: How claynb lands answers (into the inbox), kept while the straight way stands in.
_inbox_put = cache_put

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
    journal.fold()


def put_straight(
    conn: Any,
    routine: str,
    answers: Iterable[tuple[str, str, dict[str, Any]]],
    *,
    now: float,
    run_id: str | None = None,
) -> int:
    """The naive landing, for comparison: each answer into the cache itself, where its key
    falls (since the cache is an index of the answers, a fold at every landing)."""
    stored = _inbox_put(conn, routine, answers, now=now, run_id=run_id)
    _cache.fold(conn)
    return stored


@contextlib.contextmanager
def landing_straight() -> Iterator[None]:
    """While the block runs, the journal lands answers with :func:`put_straight`."""
    _cache.cache_put = put_straight
    try:
        yield
    finally:
        _cache.cache_put = _inbox_put


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


def land(args: argparse.Namespace) -> tuple[float, float, int, int]:
    """Land ``args.runs`` runs into a fresh state file pre-filled with ``args.prefill``
    answers: CPU seconds landing and closing the journal, answers found again, keys."""
    with tempfile.TemporaryDirectory() as home:
        with Journal.open(home) as journal:
            prefill(journal, args.prefill)
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
        closing = time.process_time() - cpu  # the journal closed (and folded) as the block ended
        with Journal.open(home) as again:
            found = len(again.cache_hits(ROUTINE, keys, results=False).at)
    return landing, closing, found, len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--prefill", type=int, default=200_000)
    args = parser.parse_args()
    print(
        f"landing {args.runs:,} runs of {args.size} into a cache of {args.prefill:,} other "
        "answers (CPU of this process)"
    )
    per_run = {}
    for name, way in (("inbox", contextlib.nullcontext()), ("straight", landing_straight())):
        with way:
            landing, closing, found, asked = land(args)
        per_run[name] = 1000 * (landing + closing) / args.runs
        print(
            f"  {name:8s}: landing {landing:.2f} CPU-s, closing the journal {closing:.2f} "
            f"CPU-s; {per_run[name]:.2f} ms a run; answers found again {found:,} of {asked:,}"
        )
    ratio = per_run["straight"] / per_run["inbox"]
    print(f"  straight into the cache costs {ratio:.2f}x landing through the inbox")


if __name__ == "__main__":
    main()
