"""Sending rows to a table's webhook source: pacing, chunking, 413 avoidance, the cap.

Against the emulator's real webhook source over HTTP. Rates are scaled up (emulator and
client alike) so the tests stay fast; the logic is the one used at 10 records/s.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _client_helpers import statuses

import claynb
from claynb.wire._sources import SourceTracker, plan_chunks, tracker_for

# Scaled up from Clay's 10 records/s, not so far that a loaded CI box (the client's
# one-chunk cushion is then 200 ms) turns scheduling noise into 429s. Arrays of up to ten
# records: the emulator's default workspace splits an array into rows (array_posts="rows"),
# the opt-in a user makes for a workspace seen to do so.
FAST = claynb.SourcePolicy(records_per_s=50.0, burst=20, max_chunk_records=10)
ONE_BY_ONE = claynb.SourcePolicy(records_per_s=50.0, burst=20)


def records(n: int, pad: int = 0, start: int = 0) -> list[dict[str, Any]]:
    return [{"email": f"lead{i}@acme.com", "note": "x" * pad} for i in range(start, start + n)]


def client_for(emu: Any, policy: claynb.SourcePolicy = FAST, **kw: Any) -> claynb.ClayClient:
    return claynb.ClayClient(emu.api_key, base_url=emu.url, source_policy=policy, **kw)


def table_stats(emu: Any, table_id: str) -> dict[str, Any]:
    return dict(emu.meters(charges=False)["tables"][table_id])


@pytest.fixture
def fast_source(make_emulator: Callable[..., Any]) -> Any:
    return make_emulator(source_rate_per_s=50.0, source_burst=20)


# -- chunking (pure) ----------------------------------------------------------------------


def test_one_record_per_request_by_default() -> None:
    assert plan_chunks([100] * 3, claynb.SourcePolicy()) == [[0], [1], [2]]


def test_chunks_hold_at_most_ten_records_and_90_kb_in_order() -> None:
    policy = claynb.SourcePolicy(max_chunk_records=10)
    sizes = [100] * 25 + [40_000, 40_000, 40_000] + [89_990] + [10]
    chunks = plan_chunks(sizes, policy)
    assert chunks == [list(range(10)), list(range(10, 20)), list(range(20, 27)), [27], [28], [29]]
    for chunk in chunks:
        assert len(chunk) <= 10
        assert 2 + sum(sizes[i] for i in chunk) + len(chunk) - 1 <= 90_000


def test_a_record_that_can_never_fit_is_refused_before_anything_is_sent(fast_source: Any) -> None:
    table = fast_source.create_table("leads")
    with client_for(fast_source) as c, pytest.raises(claynb.ConfigError, match="Nothing was sent"):
        c.send_to_source(table["webhook_url"], records(3) + [{"blob": "y" * 120_000}])
    assert statuses(fast_source) == {}


# -- against the emulator -----------------------------------------------------------------


def test_records_are_paced_and_chunked_without_a_429(fast_source: Any) -> None:
    table = fast_source.create_table("leads")
    with client_for(fast_source) as c:
        report = c.send_to_source(table["webhook_url"], records(65))
    assert (report.sent, report.chunks, report.rate_limited, report.unsent) == (65, 7, 0, [])
    assert table_stats(fast_source, table["table_id"])["rows"] == 65
    assert statuses(fast_source) == {"200": 7}


@pytest.mark.parametrize("arrays", ["rows", "one_row", "rejected"])
def test_by_default_every_record_is_its_own_row_whatever_arrays_become(
    make_emulator: Callable[..., Any], arrays: str
) -> None:
    emu = make_emulator(source_rate_per_s=50.0, source_burst=20, array_posts=arrays)
    table = emu.create_table("leads")
    with client_for(emu, policy=ONE_BY_ONE) as c:
        report = c.send_to_source(table["webhook_url"], records(12))
    assert (report.sent, report.requests, report.unsent) == (12, 12, [])
    assert table_stats(emu, table["table_id"])["rows"] == 12


def test_a_send_that_would_pass_the_tables_rows_warns_and_stops(
    make_emulator: Callable[..., Any], claynb_home: Path
) -> None:
    """Clay drops rows past a full table without a word: claynb stops before sending."""
    emu = make_emulator(source_rate_per_s=50.0, source_burst=20, plan="free")
    url = emu.create_table("leads")["webhook_url"]
    policy = claynb.SourcePolicy(records_per_s=50.0, burst=20, row_limit=20, warn_fraction=0.9)
    with client_for(emu, policy=policy) as c:
        c.send_to_source(url, records(15))
        with (
            pytest.warns(claynb.SourceCapWarning, match="table's 20 rows"),
            pytest.raises(claynb.ConfigError, match="Nothing was sent") as info,
        ):
            c.send_to_source(url, records(6, start=15))
    assert info.value.report.sent == 0 and len(info.value.report.unsent) == 6
    assert tracker_for(claynb_home).used(url) == 15
    assert sum(t["rows"] for t in emu.meters(charges=False)["tables"].values()) == 15


def test_big_records_are_packed_under_the_payload_cap(fast_source: Any) -> None:
    table = fast_source.create_table("leads")
    with client_for(fast_source) as c:
        report = c.send_to_source(table["webhook_url"], records(12, pad=25_000))
    assert report.sent == 12 and report.chunks == 4  # three 25 KB records per 90 KB chunk
    assert "413" not in statuses(fast_source)


def test_a_server_with_a_smaller_cap_gets_split_chunks(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(source_rate_per_s=100.0, source_burst=20, source_max_bytes=30_000)
    table = emu.create_table("leads")
    with client_for(emu) as c:
        report = c.send_to_source(table["webhook_url"], records(8, pad=9_000))
        assert report.sent == 8 and report.unsent == []
        with pytest.raises(claynb.PayloadTooLarge) as info:
            c.send_to_source(table["webhook_url"], records(1, pad=40_000))
    assert "413" in statuses(emu)  # the first send met 413s and split its way through
    assert info.value.report.sent == 0 and info.value.report.unsent == [0]
    assert table_stats(emu, table["table_id"])["rows"] == 8


def test_429s_from_a_faster_client_are_waited_out(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(source_rate_per_s=50.0, source_burst=20)
    greedy = claynb.SourcePolicy(records_per_s=10_000.0, burst=20, max_chunk_records=10)
    table = emu.create_table("leads")
    with client_for(emu, policy=greedy) as c:
        report = c.send_to_source(table["webhook_url"], records(50))
    assert report.sent == 50 and report.rate_limited >= 1
    assert statuses(emu)["429"] == report.rate_limited
    assert table_stats(emu, table["table_id"])["rows"] == 50  # nothing lost or doubled


def test_the_lifetime_cap_is_tracked_warned_about_and_never_crossed(
    make_emulator: Callable[..., Any], claynb_home: Path
) -> None:
    emu = make_emulator(source_rate_per_s=100.0, source_burst=20, source_lifetime_cap=50)
    policy = claynb.SourcePolicy(
        records_per_s=100.0, burst=20, lifetime_cap=50, warn_fraction=0.8, max_chunk_records=10
    )
    url = emu.create_table("leads")["webhook_url"]
    with client_for(emu, policy=policy) as c:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            first = c.send_to_source(url, records(35))
        with pytest.warns(claynb.SourceCapWarning, match="45 of its 50"):
            second = c.send_to_source(url, records(10, start=35))
    assert (first.cap_left, second.cap_left) == (15, 5)
    # A new client (a restarted kernel) still knows: the count lives under CLAYNB_HOME.
    assert tracker_for(claynb_home).used(url) == 45
    with (
        client_for(emu, policy=policy) as again,
        pytest.raises(claynb.ConfigError, match="5 more of its 50"),
        pytest.warns(claynb.SourceCapWarning, match="Nothing was sent"),
    ):
        again.send_to_source(url, records(10, start=45))
    assert emu.meters(charges=False)["tables"]
    assert sum(t["submissions"] for t in emu.meters(charges=False)["tables"].values()) == 45


def test_the_servers_403_at_the_cap_is_believed(
    make_emulator: Callable[..., Any], tmp_path: Path
) -> None:
    emu = make_emulator(source_rate_per_s=100.0, source_burst=20, source_lifetime_cap=12)
    url = emu.create_table("leads")["webhook_url"]
    with client_for(emu, home=tmp_path / "other-machine") as elsewhere:
        elsewhere.send_to_source(url, records(8))
    with client_for(emu) as c, pytest.raises(claynb.Forbidden) as info:
        c.send_to_source(url, records(10))
    assert info.value.report.sent == 0 and len(info.value.report.unsent) == 10
    assert info.value.report.cap_left == 0
    assert tracker_for(c.home or "").used(url) == claynb.SourcePolicy().lifetime_cap


def test_a_wrong_auth_token_is_401(fast_source: Any) -> None:
    table = fast_source.create_table("leads", auth_token="tok-right-123456")
    with client_for(fast_source) as c:
        assert (
            c.send_to_source(table["webhook_url"], records(2), auth_token="tok-right-123456").sent
            == 2
        )
        with pytest.raises(claynb.AuthenticationError):
            c.send_to_source(table["webhook_url"], records(2), auth_token="tok-wrong-654321")


def test_a_dropped_chunk_is_unknown_counted_and_not_resent(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(source_rate_per_s=100.0, source_burst=20)
    table = emu.create_table("leads")
    emu.set_faults(claynb.Faults(drop_connection=1.0))
    with client_for(emu) as c, pytest.raises(claynb.OutcomeUnknown) as info:
        c.send_to_source(table["webhook_url"], records(25))
    report = info.value.report
    assert info.value.item_ids == [str(i) for i in range(10)]
    assert report.unknown == list(range(10)) and report.unsent == list(range(10, 25))
    assert report.cap_used == 10  # counted: it may have landed
    assert table_stats(emu, table["table_id"])["submissions"] == 10  # it did, once


def test_async_client_sends_to_a_source(fast_source: Any) -> None:
    table = fast_source.create_table("leads")

    async def main() -> claynb.SourceReport:
        async with claynb.AsyncClayClient(
            fast_source.api_key, base_url=fast_source.url, source_policy=FAST
        ) as c:
            return await c.send_to_source(table["webhook_url"], records(30))

    report = asyncio.run(main())
    assert report.sent == 30 and report.rate_limited == 0
    assert table_stats(fast_source, table["table_id"])["rows"] == 30


def test_tracker_counts_atomically_per_url(tmp_path: Path) -> None:
    tracker = SourceTracker(tmp_path / "s.sqlite3")
    assert tracker.used("http://x/a") == 0
    assert tracker.add("http://x/a/", 5) == 5 and tracker.add("http://x/a", 2) == 7
    tracker.mark_full("http://x/a", 50)
    assert tracker.used("http://x/a") == 50 and tracker.used("http://x/b") == 0
