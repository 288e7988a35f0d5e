"""``claynb.enrich(..., backend="events")``: the whole loop for a frame, checked against meters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb import Faults


def leads_frame(n: int = 60) -> pd.DataFrame:
    emails = [f"ada.lovelace{i % 40}@engine{i % 4}.co.uk" for i in range(n)]
    emails[min(3, n - 1)] = "not an email"
    return pd.DataFrame({"Email": emails}, index=pd.RangeIndex(100, 100 + n))


def test_events_backend_matches_the_direct_backend_and_the_meters(
    make_emulator: Any, nats_url: str, tmp_path: Path
) -> None:
    df = leads_frame()
    direct_emu = make_emulator(run_latency_s=0)
    direct = claynb.enrich(
        df,
        "enrich-person",
        {"email": "Email"},
        progress=False,
        home=tmp_path / "a",
        client=claynb.ClayClient(api_key=direct_emu.api_key, base_url=direct_emu.url),
    )

    emu = make_emulator(
        run_latency_s=0.05,
        webhook_hold_s=0.2,
        faults=Faults(drop_webhook=0.2, duplicate_webhook=0.1, reorder_webhook=0.1),
        seed=3,
    )
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    out = claynb.enrich(
        df,
        "enrich-person",
        {"email": "Email"},
        client=client,
        backend="events",
        progress=False,
        home=tmp_path / "b",
        bus_url=nats_url,
        batch_size=10,
        reconcile_timeout_s=0.5,
        reconcile_interval_s=0.2,
        timeout=60,
    )
    assert list(out.index) == list(df.index)
    pd.testing.assert_series_equal(out["clay_status"], direct["clay_status"])
    pd.testing.assert_series_equal(out["clay_full_name"], direct["clay_full_name"])
    meters = emu.meters()
    assert out["clay_data_credits"].sum() == meters["data_credits_used"]
    assert out["clay_actions"].sum() == meters["actions_used"]
    keys = [c["inputs_key"] for c in meters["charges"]]
    assert len(keys) == len(set(keys))  # each unique input charged once
    assert (
        meters["per_routine"]["enrich-person"]["items"] == 40
    )  # 40 unique valid inputs, each sent once

    again = claynb.enrich(
        df,
        "enrich-person",
        {"email": "Email"},
        client=client,
        backend="events",
        progress=False,
        home=tmp_path / "b",
        bus_url=nats_url,
    )
    assert set(again["clay_status"]) <= {"cached", "invalid_input"}
    assert emu.meters()["data_credits_used"] == meters["data_credits_used"]


def test_a_budget_is_never_crossed_and_the_rest_is_over_budget(
    make_emulator: Any, nats_url: str
) -> None:
    emu = make_emulator(run_latency_s=0.02)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    budget = claynb.Budget(data_credits=9)
    out = claynb.enrich(
        leads_frame(40),
        "enrich-person",
        {"email": "Email"},
        client=client,
        budget=budget,
        backend="events",
        progress=False,
        bus_url=nats_url,
        batch_size=3,
        reconcile_timeout_s=0.5,
    )
    assert emu.meters()["data_credits_used"] <= 9
    assert out["clay_data_credits"].sum() == emu.meters()["data_credits_used"]
    assert (out["clay_status"] == "over_budget").sum() > 0
    assert out.loc[out["clay_status"] == "over_budget", "clay_error"].str.contains("budget").all()


def test_unknown_options_are_refused(make_emulator: Any) -> None:
    emu = make_emulator()
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    with pytest.raises(TypeError, match="no_such_option"):
        claynb.enrich(
            leads_frame(3),
            "enrich-person",
            {"email": "Email"},
            client=client,
            backend="events",
            progress=False,
            no_such_option=1,
        )
