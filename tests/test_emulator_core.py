"""The emulator's I/O-free core on a hand-driven clock: buckets, meters, runs, parsing."""

from __future__ import annotations

import pytest

from claynb._plans import Plan
from claynb._routines import Cost
from claynb.emulator._bucket import TokenBucket
from claynb.emulator._meters import Meters
from claynb.emulator._settings import build_settings, parse_latency
from claynb.emulator._state import EmulatorState
from claynb.emulator._validate import parse_jsonl


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_says_when() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert [bucket.take(0.0).allowed for _ in range(4)] == [True, True, True, False]
    refused = bucket.take(0.0)
    assert (
        refused.remaining == 0
        and refused.reset_in == pytest.approx(0.5)
        and refused.retry_after == 1
    )
    assert bucket.take(0.5).allowed


def test_bucket_lets_an_oversized_batch_through_when_full_and_runs_into_debt() -> None:
    bucket = TokenBucket(rate=10, burst=20, now=0.0)
    assert bucket.take(0.0, cost=25).allowed
    refused = bucket.take(0.0, cost=1)
    assert (
        not refused.allowed and refused.retry_after == 1 and refused.reset_in == pytest.approx(0.6)
    )


def test_meters_never_go_negative_and_refuse_what_they_cannot_pay() -> None:
    meters = Meters(Plan("p", 0, 2, 3))
    record = (0, "r", "run", "i", "k", 1, 2, "p")
    assert meters.charge(Cost(1, 2), record)
    assert not meters.charge(Cost(1, 2), record)  # 1 credit left, 2 asked: nothing taken
    assert (meters.actions_left, meters.data_credits_left, len(meters.charges)) == (1, 1, 1)
    assert (
        meters.charge(Cost(0, 0), record) and len(meters.charges) == 1
    )  # a free miss is no charge
    meters.set_left(actions_left=-5, data_credits_left=None)
    assert meters.actions_left == 0 and meters.exhausted()


def test_unlimited_meters_stay_unlimited() -> None:
    meters = Meters(Plan("custom", 0, None, None))
    assert meters.charge(Cost(1e9, 1e9), (0,) * 8) and not meters.exhausted()
    meters.top_up(5, 5)
    assert meters.snapshot()["actions_left"] is None


def test_runs_finish_and_charge_when_due_without_a_poll() -> None:
    clock = Clock()
    state = EmulatorState(
        build_settings(
            plan="growth", run_latency_s=(2.0, 2.0), rate_limit_rps=None, faults=None, seed=0
        ),
        clock=clock,
        wall=clock,
    )
    run, finished = state.start_run("enrich-company", [("1", {"domain": "acme.com"})])
    assert not finished and not run.done and run.finished_count(clock.now) == 0
    clock.now += 1.0
    assert not state.finalise_due() and state.meters.actions_used == 0
    clock.now += 1.0
    assert [r.id for r in state.finalise_due().runs] == [run.id]
    assert run.done and state.meters.actions_used == 1
    assert not state.finalise_due()  # charged once, never again


def test_latency_is_sampled_per_run_from_the_seed() -> None:
    def samples(seed: int) -> list[float]:
        state = EmulatorState(
            build_settings(
                plan="growth", run_latency_s=(1.0, 3.0), rate_limit_rps=None, faults=None, seed=seed
            )
        )
        return [state.sample_latency() for _ in range(5)]

    assert samples(1) == samples(1) != samples(2)
    assert all(1.0 <= s <= 3.0 for s in samples(3))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, (0.0, 0.0)),
        (1.5, (1.5, 1.5)),
        ("1,3", (1.0, 3.0)),
        ((0.5, 2), (0.5, 2.0)),
        ("2", (2.0, 2.0)),
    ],
)
def test_parse_latency(text: object, expected: tuple[float, float]) -> None:
    assert parse_latency(text) == expected  # type: ignore[arg-type]


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(TypeError, match="unknown emulator setting"):
        build_settings(
            plan="growth", run_latency_s=0, rate_limit_rps=None, faults=None, seed=0, bogus=1
        )


def test_jsonl_validation_counts_and_caps() -> None:
    items, details, invalid = parse_jsonl(
        b'{"id":"1","inputs":{}}\n\n{"id":"2","inputs":{},"x":1}\n', 10
    )
    assert len(items) == 1 and invalid == 1 and details[0]["line_number"] == 3
    _, details, invalid = parse_jsonl(b"", 10)
    assert invalid == 1 and "no rows" in details[0]["message"]
    _, details, invalid = parse_jsonl(b'{"id":"1","inputs":{}}\n' * 4, 3)
    assert invalid == 1 and "at most 3" in details[0]["message"]
