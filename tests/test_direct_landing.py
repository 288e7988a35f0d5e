"""The direct tier lands finished runs in groups: one transaction for the runs that
finish together, and a run the journal refuses fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from claynb._plans import get_plan
from claynb._routines import Cost
from claynb.direct._landing import LANDING_GROUP, Landings
from claynb.pipeline._journal import FINISHED, Journal
from claynb.pipeline._work import ItemResult, Status


class CountingJournal(Journal):
    """The real journal, noting the runs of each transaction that lands some."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.groups: list[list[str]] = []

    def finished_runs(
        self, runs: Sequence[tuple[str, Sequence[ItemResult]]], **kwargs: Any
    ) -> list[bool]:
        self.groups.append([run_id for run_id, _ in runs])
        return super().finished_runs(runs, **kwargs)


def _in_flight(journal: Journal, run_id: str, key: str) -> list[ItemResult]:
    journal.started(journal.intent("r", "direct", {key: {"email": f"{key}@x.co"}}), run_id)
    return [ItemResult(key, Status.ENRICHED, {"full_name": key}, cost=Cost(1, 0), run_id=run_id)]


async def _land_all(journal: Journal, runs: list[tuple[str, list[ItemResult]]]) -> list[Any]:
    landings = Landings(journal, backend="direct", plan=get_plan("growth"))
    landed = await asyncio.gather(
        *(landings.land(run_id, results) for run_id, results in runs), return_exceptions=True
    )
    await landings.drained()
    return landed


def test_runs_finishing_together_land_in_one_transaction(tmp_path: Path) -> None:
    journal = CountingJournal(tmp_path / "j.sqlite")
    with journal:
        runs = [(f"run_{k}", _in_flight(journal, f"run_{k}", k)) for k in "abcd"]
        assert asyncio.run(_land_all(journal, runs)) == [None] * 4
        assert journal.groups == [["run_a", "run_b", "run_c", "run_d"]]
        assert {r["state"] for r in journal.runs()} == {FINISHED}
        assert set(journal.cached("r", list("abcd"))) == set("abcd")


def test_a_run_the_journal_refuses_fails_alone(tmp_path: Path) -> None:
    journal = CountingJournal(tmp_path / "j.sqlite")
    with journal:
        good = [(f"run_{k}", _in_flight(journal, f"run_{k}", k)) for k in "ab"]
        never = ("run_never", [ItemResult("z", Status.ENRICHED, {"full_name": "z"})])
        landed = asyncio.run(_land_all(journal, [good[0], never, good[1]]))
        assert landed[0] is None and landed[2] is None
        assert isinstance(landed[1], KeyError)
        # the group was refused as a whole, then each run landed on its own
        assert journal.groups[0] == ["run_a", "run_never", "run_b"]
        assert sorted(journal.groups[1:]) == [["run_a"], ["run_b"], ["run_never"]]
        assert set(journal.cached("r", ["a", "b", "z"])) == {"a", "b"}
        assert journal.in_flight("r") == []


@pytest.mark.parametrize("runs", [1, 40])
def test_every_run_lands_whatever_the_group_size(tmp_path: Path, runs: int) -> None:
    journal = CountingJournal(tmp_path / "j.sqlite")
    with journal:
        keys = [f"k{i}" for i in range(runs)]
        flights = [(f"run_{k}", _in_flight(journal, f"run_{k}", k)) for k in keys]
        assert asyncio.run(_land_all(journal, flights)) == [None] * runs
        assert max(len(group) for group in journal.groups) <= LANDING_GROUP
        assert sorted(r for group in journal.groups for r in group) == sorted(
            run_id for run_id, _ in flights
        )
        assert set(journal.cached("r", keys)) == set(keys)
