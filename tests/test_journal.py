"""The resume journal: ordered states, landing in one transaction, usable across processes."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from claynb._routines import Cost
from claynb._states import IllegalTransition
from claynb.pipeline._journal import (
    BATCH_MOVES,
    FINISHED,
    IN_FLIGHT,
    SENDING,
    UNKNOWN,
    BatchState,
    Journal,
)
from claynb.pipeline._work import CostSource, ItemResult, Status


def _other_process(path: str) -> None:
    """Runs in a spawned process: journals a run and leaves it in flight."""
    with Journal(path) as journal:
        batch = journal.intent(
            "enrich-person",
            "queue",
            {"k1": {"email": "a@b.co"}, "k2": {"email": "c@d.co"}},
            Cost(2, 2),
        )
        journal.started(batch, "run_from_elsewhere")


def test_states_in_order(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        batch = journal.intent("enrich-person", "direct", {"k1": {"email": "a@b.co"}})
        assert journal.runs()[0]["state"] == SENDING
        journal.started(batch, "run_1")
        assert [r.run_id for r in journal.in_flight("enrich-person")] == ["run_1"]
        assert journal.in_flight("enrich-person", ["other"]) == []
        results = [
            ItemResult(
                "k1",
                "enriched",
                {"full_name": "A B"},
                cost=Cost(1, 1),
                run_id="run_1",
                cost_source=CostSource.METERED,
            )
        ]
        assert journal.finished("run_1", results) is True
        assert journal.finished("run_1", results) is False  # idempotent: landed once
        assert journal.runs()[0]["state"] == FINISHED
        assert journal.in_flight("enrich-person") == []
        assert journal.cached("enrich-person", ["k1"])["k1"].result == {"full_name": "A B"}
        assert journal.observed_rates("enrich-person") == (1, 1, 1.0, 1.0, "metered")


def test_finished_lands_failures_and_no_matches(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        inputs = {"a": {"email": "a@x.co"}, "b": {"email": "b@x.co"}, "c": {"email": "c@x.co"}}
        journal.started(journal.intent("r", "direct", inputs), "run_2")
        journal.finished(
            "run_2",
            [
                ItemResult("a", "no_match"),
                ItemResult("b", "failed", error="boom"),
                ItemResult("c", "over_budget", error="not run"),
            ],
        )
        assert set(journal.cached("r", ["a", "b", "c"])) == {"a"}
        [failure] = journal.failures("r")
        assert (failure.key, failure.inputs, failure.error) == ("b", {"email": "b@x.co"}, "boom")


def test_unknown_outcomes_are_parked_until_forgotten(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        batch = journal.intent("r", "direct", {"a": {}, "b": {}})
        assert sorted(journal.unknown(batch, "timed out")) == ["a", "b"]
        assert journal.runs()[0]["state"] == UNKNOWN
        assert journal.unknown_keys("r") == {"a": "timed out", "b": "timed out"}
        journal.forget_unknown("r", ["a"])
        assert list(journal.unknown_keys("r")) == ["b"]


def test_unknown_batches_are_listed_per_backend_until_a_delivery_adopts_them(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        mine = journal.intent("r", "events", {"a": {"email": "a@x.co"}, "b": {}})
        journal.unknown(mine, "the process died")
        other = journal.intent("r", "queue", {"c": {}})
        journal.unknown(other, "timed out")
        [held] = journal.unknown_batches("events")
        assert (held.batch, held.routine, held.keys) == (mine, "r", ["a", "b"])
        assert held.inputs["a"] == {"email": "a@x.co"} and held.since > 0
        journal.adopt(mine, "run_1")
        assert journal.unknown_batches("events") == []
        assert [u.batch for u in journal.unknown_batches("queue")] == [other]


def test_a_move_the_table_does_not_allow_raises_and_changes_nothing(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        batch = journal.intent("r", "direct", {"a": {"email": "a@x.co"}})
        journal.started(batch, "run_1")
        with pytest.raises(IllegalTransition, match="in_flight"):
            journal.started(batch, "run_2")  # a second run id for one send
        with pytest.raises(IllegalTransition, match="gone"):
            journal.abandon(batch)  # a started run can no longer be forgotten
        assert journal.finished("run_1", [ItemResult("a", Status.NO_MATCH)])
        with pytest.raises(IllegalTransition, match="finished"):
            journal.unknown(batch, "too late")
        assert [r["state"] for r in journal.runs()] == [FINISHED]
        assert [r["run_id"] for r in journal.runs()] == ["run_1"]


def test_the_table_is_the_whole_machine() -> None:
    assert BATCH_MOVES.sources(IN_FLIGHT) == {SENDING, UNKNOWN}
    assert BATCH_MOVES.sources(FINISHED) == {IN_FLIGHT}
    assert not BATCH_MOVES.allows(FINISHED, IN_FLIGHT)
    assert {str(s) for s in BatchState} == {"sending", "in_flight", "finished", "unknown"}


def test_abandoned_intent_leaves_nothing(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.abandon(journal.intent("r", "direct", {"a": {}}))
        assert journal.runs() == [] and journal.unknown_keys("r") == {}


def test_a_run_journaled_by_another_process_is_seen_here(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_other_process, args=(path,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    with Journal(path) as journal:
        [run] = journal.in_flight("enrich-person")
        assert run.run_id == "run_from_elsewhere" and sorted(run.keys) == ["k1", "k2"]
        assert run.backend == "queue" and run.reserved == Cost(2, 2)
        assert journal.runs()[0]["state"] == IN_FLIGHT


def test_intent_of_a_dead_process_becomes_unknown(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    code = (
        "import sys, os; from claynb.pipeline._journal import Journal\n"
        f"j = Journal({str(path)!r}); j.intent('r', 'direct', {{'a': {{}}}}); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())
    with Journal(path) as journal:
        assert journal.recover("r") == 1
        assert "died before Clay answered" in journal.unknown_keys("r")["a"]
        assert journal.recover("r") == 0


def test_an_intent_of_this_live_process_is_left_alone(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.intent("r", "direct", {"a": {}})
        assert journal.recover("r") == 0 and journal.unknown_keys("r") == {}


def _journaled_run(journal: Journal, run_id: str, key: str) -> list[ItemResult]:
    """A run of one row journaled in flight, and its result."""
    journal.started(journal.intent("r", "direct", {key: {"email": f"{key}@x.co"}}), run_id)
    return [ItemResult(key, Status.ENRICHED, {"full_name": key}, cost=Cost(1, 0), run_id=run_id)]


def test_finished_runs_lands_several_in_one_transaction(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        runs = [(f"run_{k}", _journaled_run(journal, f"run_{k}", k)) for k in "abc"]
        assert journal.finished_runs(runs[:1]) == [True]
        # one already landed: False for it, the others landed now
        assert journal.finished_runs(runs) == [False, True, True]
        assert {r["state"] for r in journal.runs()} == {FINISHED}
        assert set(journal.cached("r", ["a", "b", "c"])) == {"a", "b", "c"}
        assert journal.observed_rates("r")[:3] == (3, 3, 3.0)  # each charge recorded once


def test_finished_runs_is_all_or_none(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        good = ("run_a", _journaled_run(journal, "run_a", "a"))
        never = ("run_never", [ItemResult("z", Status.ENRICHED, {"full_name": "z"})])
        with pytest.raises(KeyError):
            journal.finished_runs([good, never])
        # rolled back: the good run is still in flight, nothing cached, no charge
        assert [r.run_id for r in journal.in_flight("r")] == ["run_a"]
        assert journal.cached("r", ["a"]) == {}
        assert journal.observed_rates("r")[0] == 0
