"""The ledger: every charge recorded once, summarised by day and routine, plotted."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

import claynb
from claynb.pipeline._journal import FILENAME
from claynb.pipeline._ledger import Charge, Ledger, charges_frame, record


def test_ledger_matches_the_emulators_meters(emulator: Any) -> None:
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    people = pd.DataFrame({"Email": [f"l{i}.m{i}@ledger.com" for i in range(50)]})
    firms = pd.DataFrame({"Domain": [f"firm{i}.com" for i in range(30)]})
    claynb.enrich(people, "enrich-person", {"email": "Email"}, client=client, progress=False)
    claynb.enrich(
        firms,
        "enrich-company",
        {"domain": "Domain"},
        client=client,
        progress=False,
        budget=claynb.Budget(plan="launch"),
    )

    book = claynb.ledger()
    meters = emulator.meters(charges=False)
    assert book.total["actions"] == meters["actions_used"]
    assert book.total["data_credits"] == meters["data_credits_used"]
    by_routine = book.by_routine
    assert by_routine.loc["enrich-person", "rows"] == 50
    assert by_routine.loc["enrich-company", "rows"] == 30
    assert by_routine.loc["enrich-person", "runs"] == meters["per_routine"]["enrich-person"]["runs"]
    assert 0 < by_routine.loc["enrich-company", "match_rate"] <= 1
    assert set(book.charges["plan"]) == {"growth", "launch"}
    assert set(book.charges["backend"]) == {"direct"}
    assert (book.charges["usd"] > 0).any()
    day = book.by_day
    assert len(day) == 1 and day["rows"].iloc[0] == 80
    assert book.summary()["rows"].sum() == 80
    assert "80 rows" in repr(book) and "<table" in book._repr_html_()
    fig = book.plot()
    assert isinstance(fig, Figure) and fig.axes[0].get_title().startswith("Clay spend")
    assert isinstance(book.plot(meter="usd"), Figure)


def test_recording_a_run_twice_counts_once(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "l.sqlite") as conn:
        from claynb.pipeline._ledger import SCHEMA

        conn.executescript(SCHEMA)
        charge = Charge("run_1", 1_700_000_000.0, "r", "direct", "growth", 10, 7, 7.0, 9.0, 1.5)
        assert record(conn, charge) is True
        assert record(conn, charge) is False
        frame = charges_frame(conn)
    assert len(frame) == 1 and str(frame["at"].dt.tz) == "UTC"


def test_empty_ledger(claynb_home: Path) -> None:
    book = claynb.ledger()
    assert len(book) == 0 and book.by_day.empty and book.by_routine.empty
    assert isinstance(book.plot(), Figure)
    assert (claynb_home / FILENAME).exists()


def test_summary_across_days() -> None:
    at = pd.to_datetime(["2026-03-01 10:00", "2026-03-01 23:59", "2026-03-02 00:01"], utc=True)
    charges = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "at": at,
            "routine": ["x", "y", "x"],
            "backend": "direct",
            "plan": "growth",
            "rows": [10, 5, 1],
            "matched": [8, 5, 0],
            "actions": [8.0, 5, 0],
            "data_credits": [8.0, 50, 0],
            "usd": [1.0, 2, 0],
            "cost_source": ["metered", "estimated", "metered"],
        }
    )
    book = Ledger(charges)
    assert book.by_day["rows"].tolist() == [15, 1]
    assert book.by_routine.loc["x", "match_rate"] == 8 / 11
    # Where the figures come from, per routine and overall: metered only when all were.
    assert book.by_routine["cost_source"].to_dict() == {"x": "metered", "y": "estimated"}
    assert book.cost_source == "estimated" and "estimated" in repr(book)
    assert len(book.summary()) == 3
    assert isinstance(book.plot(meter="actions"), Figure)
