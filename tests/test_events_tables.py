"""The table round trip: a frame into an emulated Clay table, its callbacks joined back by row id."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from _events_helpers import namespace

from claynb.events._dedupe import SqliteDedupeStore
from claynb.events._receiver import ReceiverSettings
from claynb.events._server import ReceiverServer
from claynb.events._tables import MISSING, NOT_SENT, RECEIVED, collect_callbacks

CALLBACK = "cb_table_roundtrip_secret_42"
TOKEN = "tok_source_auth_0123456789"


@pytest.fixture
def receiver(nats_url: str, tmp_path: Path) -> Iterator[ReceiverServer]:
    settings = ReceiverSettings(callback_secret=CALLBACK)
    with ReceiverServer(
        settings, nats_url, namespace(), store=SqliteDedupeStore(tmp_path / "rx.sqlite")
    ) as rx:
        yield rx


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Email": [
                f"grace.hopper{i}@navy{i % 3}.mil" if i % 4 else f"bad-{i}" for i in range(n)
            ],
            "Score": [float(i) if i % 5 else float("nan") for i in range(n)],
        },
        index=[f"r{i}" for i in range(n)],
    )


def make_table(emu: Any, url: str, **http_api: Any) -> dict[str, str]:
    return emu.create_table(
        "leads",
        enrichments=[{"routine": "enrich-person", "inputs": {"email": "Email"}}],
        http_api={"url": url, "headers": {"x-claynb-secret": CALLBACK}, **http_api},
        auth_token=TOKEN,
    )


def accepted_count(receiver: ReceiverServer, expect: int, within_s: float = 10.0) -> int:
    """The receiver's count of accepted callbacks once it reaches ``expect`` (or the last one
    seen after ``within_s``). A callback is counted as its answer is sent, after it was
    published: the rows can reach the frame a moment before the last count does."""
    deadline = time.monotonic() + within_s
    while (count := receiver.stats.get("accepted", 0)) < expect and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_every_row_comes_back_joined_by_its_row_id(
    make_emulator: Any, receiver: ReceiverServer
) -> None:
    emu = make_emulator(run_latency_s=0.05)
    table = make_table(emu, receiver.callback_url)
    client = emu.client()
    df = frame(12)
    out = df.clay.send_to_table(
        table["webhook_url"], TOKEN, client=client, receiver=receiver, timeout=20
    )
    assert list(out.index) == list(df.index) and "clay_row_id" not in df.columns  # input untouched
    assert (out["clay_callback"] == RECEIVED).all()
    assert out["clay_row_id"].is_unique
    matched = out["clay_full_name"].notna()
    assert matched.sum() > 0
    # The enrichment's answer landed on the row it belongs to: same email domain.
    for _, row in out[matched].iterrows():
        assert row["clay_company_domain"] == row["Email"].split("@")[1]
    assert emu.meters()["tables"] and accepted_count(receiver, 12) == 12
    assert TOKEN not in repr(out.attrs) and CALLBACK not in out.to_string()


def test_rows_without_a_callback_are_reported_then_collected_later(
    make_emulator: Any, receiver: ReceiverServer
) -> None:
    """The HTTP API column points at a dead URL first: nothing comes back, nothing is lost."""
    emu = make_emulator(run_latency_s=0)
    table = make_table(emu, "http://127.0.0.1:9/unreachable", retry=False)
    client = emu.client()
    df = frame(4)
    with pytest.warns(UserWarning, match="4 row\\(s\\) had no callback"):
        out = df.clay.send_to_table(
            table["webhook_url"], TOKEN, client=client, receiver=receiver, timeout=1.0
        )
    assert (out["clay_callback"] == MISSING).all()
    # The callbacks arrive later (as Clay's retries would deliver them): joined in afterwards.
    for row_id, email in zip(out["clay_row_id"], df["Email"], strict=True):
        body = {"claynb_row_id": row_id, "Email": email, "title": "Rear Admiral"}
        assert (
            httpx.post(
                receiver.callback_url, json=body, headers={"x-claynb-secret": CALLBACK}
            ).status_code
            == 200
        )
    late = collect_callbacks(out, receiver.store)
    assert (late["clay_callback"] == RECEIVED).all()
    assert set(late["clay_title"]) == {"Rear Admiral"}


def test_a_callback_for_someone_elses_row_does_not_join(
    make_emulator: Any, receiver: ReceiverServer
) -> None:
    emu = make_emulator(run_latency_s=0)
    table = make_table(emu, "http://127.0.0.1:9/unreachable", retry=False)
    client = emu.client()
    with pytest.warns(UserWarning):
        out = frame(2).clay.send_to_table(
            table["webhook_url"], TOKEN, client=client, receiver=receiver, timeout=0.5
        )
    httpx.post(
        receiver.callback_url,
        json={"claynb_row_id": "other-send-0", "title": "x"},
        headers={"x-claynb-secret": CALLBACK},
    )
    assert (collect_callbacks(out, receiver.store)["clay_callback"] == MISSING).all()


def test_a_send_stopped_part_way_keeps_the_rows_it_sent(
    make_emulator: Any, receiver: ReceiverServer
) -> None:
    """The source's lifetime cap is hit mid-frame: the rows sent before it (one record per
    request) come back joined, the refused ones are marked not sent, and no exception
    throws the frame away."""
    emu = make_emulator(run_latency_s=0, source_lifetime_cap=12)
    table = make_table(emu, receiver.callback_url)
    client = emu.client()
    df = frame(15)
    with pytest.warns(UserWarning, match="stopped accepting rows part-way"):
        out = df.clay.send_to_table(
            table["webhook_url"], TOKEN, client=client, receiver=receiver, timeout=10
        )
    counts = out["clay_callback"].value_counts()
    assert counts.get(RECEIVED, 0) == 12 and counts.get(NOT_SENT, 0) == 3
    assert "clay_send_error" in out.attrs and TOKEN not in out.attrs["clay_send_error"]
