"""How close does the client get to the server's rate limit, and how many 429s does it take?

10,000 items go through ``claynb`` clients against an in-process emulator with a rate
limit: runs of 100 items, each followed by its result poll (run latency 0, so one poll
completes). Several workers share one client, as an enrichment does. For each scenario it
prints, from the emulator's own meters, the rate of accepted requests (not answered 429)
as a ratio of the limit, the share of all requests answered 429, and items/s.

Scenarios: the sync client from threads and the async client from tasks, each either
told the limit (``rate_limit_rps=``) or learning it from X-RateLimit-* headers; and, for
comparison in the same run, a baseline of plain httpx from the same threads that only
sleeps for Retry-After when answered 429 (what a hand-written loop typically does).
Target for the claynb clients: at least 0.9 of the limit with under 2% answered 429.

    python benchmarks/client_throughput.py                 # all four scenarios
    python benchmarks/client_throughput.py --items 2000 --rps 40 --scenarios sync-learned
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

import claynb

ROUTINE = "enrich-company"
BATCH = 100
SCENARIOS = ("sync-given", "sync-learned", "async-given", "async-learned", "baseline-httpx")


@dataclass
class Outcome:
    scenario: str
    items: int
    requests: int
    rate_limited: int
    elapsed_s: float
    limit: float

    @property
    def accepted_rps(self) -> float:
        """Requests the server accepted (not answered 429) per second."""
        return (self.requests - self.rate_limited) / self.elapsed_s

    @property
    def ratio(self) -> float:
        return self.accepted_rps / self.limit

    @property
    def share_429(self) -> float:
        return self.rate_limited / self.requests if self.requests else 0.0

    @property
    def met(self) -> bool:
        return self.ratio >= 0.9 and self.share_429 < 0.02

    def line(self) -> str:
        verdict = (
            "(comparison)"
            if self.scenario.startswith("baseline")
            else "ok"
            if self.met
            else "MISSED"
        )
        return (
            f"{self.scenario:<14} {self.requests:>8} {self.accepted_rps:>9.2f} "
            f"{self.ratio:>8.3f} {100 * self.share_429:>7.2f}% {self.items / self.elapsed_s:>9.1f}"
            f"  {verdict}"
        )


def batches(total: int) -> list[list[dict[str, Any]]]:
    items = [{"id": f"c{i}", "inputs": {"domain": f"company{i}.com"}} for i in range(total)]
    return [items[i : i + BATCH] for i in range(0, total, BATCH)]


def sync_work(client: claynb.ClayClient, work: list[list[dict[str, Any]]], workers: int) -> int:
    def one(chunk: list[dict[str, Any]]) -> int:
        run_id = client.run_routine(ROUTINE, chunk)
        return len(client.wait_for_run(run_id, poll_interval=0.05).items)

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, work))


def baseline_work(emu: Any, work: list[list[dict[str, Any]]], workers: int) -> int:
    """Plain httpx: no pacing, sleep for Retry-After on a 429, poll until complete."""
    headers = {"clay-api-key": emu.api_key}
    api = f"{emu.url}/public/v0"

    def send(http: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
        while True:
            response = http.request(method, url, headers=headers, **kw)
            if response.status_code != 429:
                response.raise_for_status()
                return response
            time.sleep(float(response.headers.get("retry-after", "1")))

    def one(chunk: list[dict[str, Any]]) -> int:
        with httpx.Client(timeout=30) as http:
            run_id = send(
                http, "POST", f"{api}/routines/{ROUTINE}/run", json={"items": chunk}
            ).json()
            url = f"{api}/routines/run/{run_id['routine_run_id']}/results"
            while (answer := send(http, "GET", url, params={"limit": BATCH})).status_code == 202:
                time.sleep(0.05)
            return len(answer.json()["data"])

    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(one, work))


async def async_work(
    client: claynb.AsyncClayClient, work: list[list[dict[str, Any]]], workers: int
) -> int:
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for chunk in work:
        queue.put_nowait(chunk)
    done = 0

    async def worker() -> None:
        nonlocal done
        while not queue.empty():
            chunk = queue.get_nowait()
            run_id = await client.run_routine(ROUTINE, chunk)
            results = await client.wait_for_run(run_id, poll_interval=0.05)
            done += len(results.items)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done


def run_scenario(scenario: str, items: int, rps: float, workers: int) -> Outcome:
    mode, knowledge = scenario.split("-")
    given = rps if knowledge == "given" else None
    work = batches(items)
    with claynb.Emulator(plan="enterprise", run_latency_s=0, rate_limit_rps=rps) as emu:
        started = time.perf_counter()
        if mode == "baseline":
            finished = baseline_work(emu, work, workers)
        elif mode == "sync":
            with claynb.ClayClient(emu.api_key, base_url=emu.url, rate_limit_rps=given) as client:
                finished = sync_work(client, work, workers)
        else:
            finished = asyncio.run(_async_scenario(emu, given, work, workers))
        elapsed = time.perf_counter() - started
        time.sleep(0.2)  # the emulator counts an answer just after sending it
        counts = emu.meters(charges=False)["requests"]["by_status"]
    if finished != items:
        raise SystemExit(f"{scenario}: {finished} of {items} items came back")
    return Outcome(scenario, items, sum(counts.values()), counts.get("429", 0), elapsed, rps)


async def _async_scenario(
    emu: Any, given: float | None, work: list[list[dict[str, Any]]], workers: int
) -> int:
    async with claynb.AsyncClayClient(
        emu.api_key, base_url=emu.url, rate_limit_rps=given
    ) as client:
        return await async_work(client, work, workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rps", type=float, default=20.0, help="the emulator's rate limit")
    parser.add_argument("--workers", type=int, default=8, help="threads or tasks sharing a client")
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(
        f"{args.items:,} items in runs of {BATCH} + result polls, limit {args.rps:g} req/s, "
        f"{args.workers} workers per client\n"
    )
    print(
        f"{'scenario':<14} {'requests':>8} {'ok req/s':>9} {'÷limit':>8} {'429s':>8} {'items/s':>9}"
    )
    outcomes = []
    for scenario in args.scenarios:
        outcome = run_scenario(scenario, args.items, args.rps, args.workers)
        outcomes.append(outcome)
        print(outcome.line(), flush=True)
    missed = [o.scenario for o in outcomes if not o.met and not o.scenario.startswith("baseline")]
    print(
        f"\ntarget for the claynb clients: >= 0.9 of the limit, < 2% answered 429: "
        f"{'met by every scenario' if not missed else 'missed by ' + ', '.join(missed)}"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
