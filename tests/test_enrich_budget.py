"""Budgets and 402s through enrich, checked against the emulator's own meters."""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb import direct as _direct
from claynb._routines import Cost


def emails(n: int, start: int = 0) -> list[str]:
    return [f"p{i}.q{i}@budget{i % 11}.com" for i in range(start, start + n)]


def used(emu: Any) -> tuple[float, float]:
    m = emu.meters(charges=False)
    return m["actions_used"], m["data_credits_used"]


def charged_keys(emu: Any) -> list[str]:
    return [c["inputs_key"] for c in emu.meters(charges=True)["charges"]]


class CountingGuard:
    """Wraps the real guard to record how many batches held money at once."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.held, self.peak = inner, 0, 0
        self.lock = threading.Lock()

    def reserve(self, cost: Cost) -> bool:
        ok = self.inner.reserve(cost)
        if ok:
            with self.lock:
                self.held += 1
                self.peak = max(self.peak, self.held)
        return ok

    def affordable(self, unit: Cost, n: int) -> int:
        return self.inner.affordable(unit, n)

    def settle(self, reserved: Cost, actual: Cost, source: Any = None) -> None:
        with self.lock:
            self.held -= 1
        self.inner.settle(reserved, actual, source)

    def release(self, reserved: Cost) -> None:
        with self.lock:
            self.held -= 1
        self.inner.release(reserved)


def test_cap_exactly_met_never_crossed_with_32_requests_in_flight(make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=(0.05, 0.2))
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    budget = claynb.Budget(data_credits=40)
    seen: dict[str, CountingGuard] = {}

    def spy(routine: Any, items: Any, *, guard: Any, **kw: Any) -> Any:
        seen["guard"] = CountingGuard(guard)
        return _direct.run(routine, items, guard=seen["guard"], **kw)

    df = pd.DataFrame({"Email": emails(200)})
    out = claynb.enrich(
        df,
        "enrich-person",
        {"email": "Email"},
        client=client,
        budget=budget,
        backend=spy,
        concurrency=32,
        batch_size=1,
        progress=False,
    )

    assert seen["guard"].peak == 32
    assert used(emu) == (40, 40)  # met exactly, not one unit more
    assert out["clay_data_credits"].sum() == 40 and out["clay_actions"].sum() == 40
    assert budget.spent == Cost(40, 40) and budget.reserved == Cost()
    status = out["clay_status"].value_counts()
    assert status["enriched"] == 40 and status["over_budget"] > 0
    assert set(status.index) <= {"enriched", "no_match", "over_budget"}
    over = out[out["clay_status"] == "over_budget"]
    assert over["clay_error"].str.contains("budget").all()
    assert len(charged_keys(emu)) == len(set(charged_keys(emu)))


def test_budget_object_caps_several_calls_together(emulator: Any) -> None:
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    budget = claynb.Budget(actions=30)
    first = claynb.enrich(
        pd.DataFrame({"Email": emails(20)}),
        "enrich-person",
        {"email": "Email"},
        client=client,
        budget=budget,
        progress=False,
    )
    second = claynb.enrich(
        pd.DataFrame({"Email": emails(60, start=20)}),
        "enrich-person",
        {"email": "Email"},
        client=client,
        budget=budget,
        progress=False,
    )
    total = first["clay_actions"].sum() + second["clay_actions"].sum()
    assert total == 30 == used(emulator)[0] == budget.spent.actions
    assert (second["clay_status"] == "over_budget").any()


def test_402_mid_frame_keeps_finished_rows_and_returns(make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=0.02)
    emu.set_credits(data_credits_left=25)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    df = pd.DataFrame({"Email": emails(150)})

    out = claynb.enrich(
        df,
        "enrich-person",
        {"email": "Email"},
        client=client,
        batch_size=10,
        concurrency=2,
        progress=False,
    )

    assert used(emu)[1] == 25
    assert out["clay_data_credits"].sum() == 25
    status = out["clay_status"].value_counts()
    assert status["enriched"] == 25 and status["over_budget"] > 0
    over = out[out["clay_status"] == "over_budget"]
    assert over["clay_error"].str.contains("credits exhausted|402").all()
    assert over["clay_full_name"].isna().all()

    # A top-up later: the same call sends only what was not done, pays nothing twice.
    emu.top_up(data_credits=1_000)
    again = claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress=False)
    assert set(again.loc[over.index, "clay_status"]) <= {"enriched", "no_match"}
    done_before = out["clay_status"].isin(["enriched", "no_match"])
    assert (again.loc[done_before, "clay_status"] == "cached").all()
    keys = charged_keys(emu)
    assert len(keys) == len(set(keys))


def test_402_answered_to_the_post_itself(make_emulator: Any) -> None:
    emu = make_emulator()
    emu.set_credits(actions_left=0, data_credits_left=0)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    out = claynb.enrich(
        pd.DataFrame({"Email": emails(30)}),
        "enrich-person",
        {"email": "Email"},
        client=client,
        progress=False,
    )
    assert (out["clay_status"] == "over_budget").all()
    assert out["clay_error"].str.contains("credits exhausted").all()
    assert used(emu) == (0, 0)


@pytest.mark.parametrize("cap", [0, 1])
def test_tiny_budgets(emulator: Any, cap: int) -> None:
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    out = claynb.enrich(
        pd.DataFrame({"Email": emails(10)}),
        "enrich-person",
        {"email": "Email"},
        client=client,
        budget=claynb.Budget(data_credits=cap),
        progress=False,
    )
    assert used(emulator)[1] == out["clay_data_credits"].sum() <= cap
    if cap == 0:
        assert (out["clay_status"] == "over_budget").all()
