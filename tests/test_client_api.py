"""Every client method, sync and async, over real HTTP against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from _client_helpers import statuses

import claynb
from claynb._routines import DEFAULT_ROUTINES, run_item
from claynb.pipeline._work import item_key


def people(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"p{i}", "inputs": {"email": f"ada{i}@acme.com"}} for i in range(start, start + n)
    ]


def client_for(emu: Any, **kw: Any) -> claynb.ClayClient:
    return claynb.ClayClient(emu.api_key, base_url=emu.url, **kw)


def test_me_and_repr(emulator: Any) -> None:
    with client_for(emulator) as c:
        me = c.me()
        assert repr(c) == f"ClayClient(base_url='{emulator.url}/public/v0', api_key='***')"
    assert me.user_id == "usr_emulator" and me.workspace_id == "ws_emulator"


def test_run_then_results_match_the_routine_and_charge_what_the_meters_say(
    emulator: Any,
) -> None:
    items = people(40)
    with emulator.client() as c:
        run_id = c.run_routine("enrich-person", items)
        results = c.wait_for_run(run_id, poll_interval=0.01)
        charges = c.run_charges(run_id)
    assert results.complete and results.status == "complete"
    assert results.total == results.finished == 40
    assert [i.id for i in results.items] == [i["id"] for i in items]
    routine = DEFAULT_ROUTINES["enrich-person"]
    for item, sent in zip(results.items, items, strict=True):
        expected = run_item(routine, sent["inputs"])
        assert item.result == expected.result and charges.cost_of(item.id) == expected.cost
    meters = emulator.meters(charges=False)
    assert meters["actions_used"] == sum(c.actions for c in charges.items.values())
    assert meters["data_credits_used"] == sum(c.data_credits for c in charges.items.values())


def test_a_client_not_told_of_an_emulator_reads_no_charges(emulator: Any) -> None:
    with client_for(emulator) as c:
        run_id = c.run_routine("enrich-person", people(2))
        c.wait_for_run(run_id, poll_interval=0.01)
        assert c.run_charges(run_id) is None and c.emulator_meters() is None
    with pytest.raises(claynb.ConfigError, match="same server"):
        claynb.ClayClient(
            emulator.api_key, base_url=emulator.url, emulator_admin_url="http://10.0.0.1/_emulator"
        )


def test_results_follow_every_cursor_page(emulator: Any) -> None:
    with client_for(emulator) as c:
        c.page_limit = 7
        run_id = c.run_routine(
            "enrich-company",
            [{"id": f"c{i}", "inputs": {"domain": f"firm{i}.io"}} for i in range(100)],
        )
        results = c.wait_for_run(run_id, poll_interval=0.01)
    assert [i.id for i in results.items] == [f"c{i}" for i in range(100)]
    # 15 pages of 7 (one poll found it complete), plus the POST.
    assert statuses(emulator) == {"200": 15, "202": 1}


def test_results_while_running_show_progress_then_complete(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(run_latency_s=0.5)
    with client_for(emu) as c:
        run_id = c.run_routine("enrich-person", people(5))
        early = c.get_run_results(run_id)
        done = c.wait_for_run(run_id, poll_interval=0.05)
    assert not early.complete and early.status == "in_progress" and early.items == []
    assert early.total == 5
    assert done.complete and len(done.items) == 5


def test_wait_for_run_gives_up_without_resending(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(run_latency_s=30)
    with client_for(emu) as c:
        run_id = c.run_routine("enrich-person", people(2))
        with pytest.raises(claynb.ClayError, match="not finished"):
            c.wait_for_run(run_id, poll_interval=0.05, timeout=0.2)
    assert emu.meters(charges=False)["runs"]["total"] == 1


def test_too_many_or_no_items_are_refused_locally(emulator: Any) -> None:
    with client_for(emulator) as c:
        with pytest.raises(claynb.ConfigError):
            c.run_routine("enrich-person", people(101))
        with pytest.raises(claynb.ConfigError):
            c.run_routine("enrich-person", [])
    assert emulator.meters(charges=False)["requests"]["total"] == 0


def test_batch_upload_start_and_results(emulator: Any) -> None:
    items = [
        {
            "id": item_key("enrich-company", {"domain": f"d{i}.com"}),
            "inputs": {"domain": f"d{i}.com"},
        }
        for i in range(250)
    ]
    with client_for(emulator) as c:
        run_id = c.start_batch("enrich-company", items)
        results = c.wait_for_batch(run_id, poll_interval=0.01)
        again = c.get_batch_results(run_id)
    assert results.ok and results.complete and results.total == 250
    assert again.complete and [i.id for i in again.items] == [i.id for i in results.items]
    assert sorted(i.id for i in results.items) == sorted(i["id"] for i in items)
    assert emulator.meters(charges=False)["per_routine"]["enrich-company"]["items"] == 250


def test_batch_items_with_bad_inputs_fail_one_by_one_uncharged(emulator: Any) -> None:
    with client_for(emulator) as c:
        run_id = c.start_batch("enrich-company", [{"id": "x", "inputs": {"wrong": 1}}])
        results = c.wait_for_batch(run_id, poll_interval=0.01)
    assert results.ok and [(i.id, i.status) for i in results.items] == [("x", "failed")]
    assert results.items[0].error and emulator.meters(charges=False)["actions_used"] == 0


def test_a_batch_file_that_cannot_run_is_a_failed_terminal_state(emulator: Any) -> None:
    with client_for(emulator) as c:
        # A malformed file can only come from outside the client (it validates items).
        target = c.request(
            "POST", "/routines/enrich-company/run-batch/upload-url", spends=False
        ).json()
        c.request("PUT", target["upload_url"], content=b'{"no id": true}\nnot json\n')
        started = c.request(
            "POST", "/routines/enrich-company/run-batch/start", json={"file_id": target["file_id"]}
        ).json()
        results = c.wait_for_batch(started["routine_run_id"], poll_interval=0.01)
    assert results.complete and not results.ok
    assert results.status == "validation_failed" and results.error and results.items == []


def test_tables_are_403_below_enterprise_and_readable_on_it(
    make_emulator: Callable[..., Any],
) -> None:
    growth = make_emulator()
    with client_for(growth) as c, pytest.raises(claynb.Forbidden) as info:
        c.query_table("t_anything")
    assert info.value.status == 403
    emu = make_emulator(plan="enterprise")
    table = emu.create_table("leads")
    with client_for(emu) as c:
        report = c.send_to_source(table["webhook_url"], [{"name": f"n{i}"} for i in range(10)])
        rows = c.query_table(table["table_id"], limit=4)
        first_page = c.query_table(table["table_id"], limit=4, max_pages=1)
    assert report.sent == 10
    assert len(rows.records) == 10 and rows.pages == 3  # 4 + 4 + 2, every cursor followed
    assert len(first_page.records) == 4 and first_page.pages == 1


def test_lower_level_request_uses_the_same_auth_and_errors(emulator: Any) -> None:
    with client_for(emulator) as c:
        assert c.request("GET", "/me").json()["workspace"]["id"] == "ws_emulator"
        with pytest.raises(claynb.NotFound):
            c.request("GET", "/routines/run/nope/results")


def test_async_client_does_everything_inside_a_running_loop(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(plan="enterprise")

    async def main() -> tuple[Any, ...]:
        async with claynb.AsyncClayClient(emu.api_key, base_url=emu.url) as c:
            me = await c.me()
            run_ids = await asyncio.gather(
                *(c.run_routine("enrich-person", people(20, 20 * n)) for n in range(5))
            )
            results = await asyncio.gather(
                *(c.wait_for_run(r, poll_interval=0.01) for r in run_ids)
            )
            batch = await c.wait_for_batch(
                await c.start_batch("enrich-person", people(3)), poll_interval=0.01
            )
            first = await c.get_run_results(run_ids[0])
            raw = await c.request("GET", "/me")
            rows = await c.query_table(emu.create_table("t")["table_id"])
            return me, results, batch, first, raw, rows

    me, results, batch, first, raw, rows = asyncio.run(main())
    assert me.workspace_id == "ws_emulator" and raw.status_code == 200
    assert [len(r.items) for r in results] == [20] * 5
    assert batch.ok and len(batch.items) == 3
    assert first.complete and rows.records == []
    assert emu.meters(charges=False)["runs"]["total"] == 6
