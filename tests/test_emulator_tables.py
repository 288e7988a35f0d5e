"""Table webhook sources, enrichment columns, the HTTP API column and /tables/query."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from claynb._routines import DEFAULT_ROUTINES, run_item
from claynb.emulator._tables import NOT_RUN_MESSAGE, ONE_ROW_COLUMN

PERSON = [{"routine": "enrich-person", "inputs": {"email": "Email"}, "output_prefix": ""}]


def leads(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"Email": f"grace.hopper{i}@navy.mil", "Lead": i} for i in range(start, start + n)]


def wait_http_deliveries(emu: Any, count: int) -> list[dict[str, Any]]:
    """HTTP API attempts recorded so far, waiting for ``count`` (a receiver hears of a row
    a moment before the emulator records the attempt)."""
    deadline = time.monotonic() + 60
    while True:
        found = [d for d in emu.meters()["deliveries"] if d["kind"] == "http_api"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


def query(emu: Any, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        emu.url + "/public/v0/tables/query", json=body, headers={"clay-api-key": emu.api_key}
    )


def test_rows_are_enriched_then_posted_by_the_http_api_column(emulator: Any, recorder: Any) -> None:
    table = emulator.create_table(
        "Leads",
        enrichments=PERSON,
        http_api={"url": recorder.url + "/rows", "headers": {"x-shared": "s3cret-value"}},
    )
    assert "/v3/sources/webhook/pull-in-data-from-a-webhook-" in table["webhook_url"]
    records = leads(6)
    for record in records:  # one record per request: what a source is documented to take
        r = httpx.post(table["webhook_url"], json=record)
        assert r.status_code == 200 and r.json() == {}  # nothing documented to read in it
    got = recorder.wait_for(6)
    assert len(got) == 6 and all(g.headers["x-shared"] == "s3cret-value" for g in got)
    bodies = {b["Lead"]: b for b in (json.loads(g.body) for g in got)}
    routine = DEFAULT_ROUTINES["enrich-person"]
    credits = 0.0
    for record in records:
        outcome = run_item(routine, {"email": record["Email"]})
        body = bodies[record["Lead"]]
        assert body["Email"] == record["Email"]
        assert {k: body[k] for k in outcome.result} == outcome.result  # enriched fields, no prefix
        credits += outcome.cost.data_credits
    http = wait_http_deliveries(emulator, 6)
    assert len(http) == 6 and {d["outcome"] for d in http} == {"delivered"}
    m = emulator.meters()
    assert m["per_routine"]["enrich-person"]["data_credits"] == credits == m["data_credits_used"]
    # Clay bills an HTTP API call one Action: one per row, on top of the enrichments.
    assert m["per_routine"]["http-api"]["actions"] == 6
    assert m["actions_used"] == m["per_routine"]["enrich-person"]["actions"] + 6
    assert m["tables"][table["table_id"]]["submissions"] == 6


def test_enrichment_chain_feeds_the_next_column(emulator: Any, recorder: Any) -> None:
    table = emulator.create_table(
        "Chain",
        enrichments=PERSON
        + [
            {
                "routine": "find-mobile-phone",
                "inputs": {"linkedin_url": "linkedin_url"},
                "output_prefix": "m_",
            }
        ],
        http_api={"url": recorder.url, "include_meta": True},
    )
    httpx.post(table["webhook_url"], json=leads(10))
    bodies = [json.loads(g.body) for g in recorder.wait_for(10)]
    assert len(bodies) == 10
    for body in bodies:
        person, phone = body["_clay"]["enrichments"]
        if person["status"] == "matched":
            expected = run_item(
                DEFAULT_ROUTINES["find-mobile-phone"], {"linkedin_url": body["linkedin_url"]}
            )
            assert phone["status"] == ("matched" if expected.status == "matched" else "no_match")
            assert body.get("m_mobile_phone") == expected.result.get("mobile_phone")
        else:
            assert phone["status"] == "failed"  # no LinkedIn URL to look up: uncharged


def test_object_is_one_row_and_other_bodies_are_400(emulator: Any) -> None:
    url = emulator.create_table("T")["webhook_url"]
    assert httpx.post(url, json={"Email": "a@b.co"}).status_code == 200
    assert httpx.post(url, json=[1, 2]).status_code == 400  # "rows": each must be an object
    assert httpx.post(url, content=b"{oops").status_code == 400
    assert (
        httpx.post(
            emulator.url + "/v3/sources/webhook/pull-in-data-from-a-webhook-nope", json={}
        ).status_code
        == 404
    )


def test_auth_token_is_checked(emulator: Any) -> None:
    url = emulator.create_table("T", auth_token="tok-abcdef")["webhook_url"]
    assert httpx.post(url, json={"a": 1}).status_code == 401
    assert (
        httpx.post(url, json={"a": 1}, headers={"x-clay-webhook-auth": "nope-nope"}).status_code
        == 401
    )
    assert (
        httpx.post(url, json={"a": 1}, headers={"x-clay-webhook-auth": "tok-abcdef"}).status_code
        == 200
    )


def test_over_100_kb_is_413(emulator: Any) -> None:
    url = emulator.create_table("T")["webhook_url"]
    r = httpx.post(url, json={"blob": "x" * (100 * 1024)})
    assert r.status_code == 413 and r.json()["message"]
    [table] = emulator.meters()["tables"].values()
    assert table["rows"] == table["submissions"] == 0


def test_records_beyond_the_burst_are_429_with_retry_after(make_emulator: Any) -> None:
    # A slower refill than Clay's 10/s so a loaded test machine cannot refill between posts.
    emu = make_emulator(source_rate_per_s=1.0)
    url = emu.create_table("T")["webhook_url"]
    assert httpx.post(url, json=[{"i": i} for i in range(20)]).status_code == 200  # the burst of 20
    r = httpx.post(url, json={"i": 20})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    time.sleep(int(r.headers["Retry-After"]))
    assert httpx.post(url, json={"i": 21}).status_code == 200
    assert emu.meters()["tables"][next(iter(emu.meters()["tables"]))]["submissions"] == 21


@pytest.mark.parametrize("arrays", ["rows", "one_row", "rejected"])
def test_what_an_array_posted_to_a_source_becomes(make_emulator: Any, arrays: str) -> None:
    """Not published: the ``array_posts`` setting plays each plausible answer."""
    emu = make_emulator(array_posts=arrays, plan="enterprise")  # the Tables API to look
    table = emu.create_table("T")
    records = [{"i": 0}, {"i": 1}, {"i": 2}]
    r = httpx.post(table["webhook_url"], json=records)
    [seen] = emu.meters()["tables"].values()
    if arrays == "rejected":
        assert r.status_code == 400 and r.json()["message"] and seen["rows"] == 0
        return
    assert r.status_code == 200
    assert seen["rows"] == {"rows": 3, "one_row": 1}[arrays]
    if arrays == "one_row":
        cells = query(
            emu, {"query": {"tables": [{"id": "T"}], "select": [{"field": ONE_ROW_COLUMN}]}}
        ).json()["data"]
        assert [c[ONE_ROW_COLUMN]["value"] for c in cells] == [records]


@pytest.mark.parametrize("answer", ["refused", "dropped"])
def test_a_full_table_drops_rows_silently_and_the_cap_answers_as_set(
    make_emulator: Any, answer: str
) -> None:
    emu = make_emulator(table_row_limit=2, source_lifetime_cap=4, source_cap_answer=answer)
    table = emu.create_table("T")
    url = table["webhook_url"]
    for i in range(4):  # rows 3 and 4 pass the table's 2 rows: accepted, and dropped
        assert httpx.post(url, json={"i": i}).status_code == 200
    past_cap = httpx.post(url, json={"i": 4})
    if answer == "refused":
        assert past_cap.status_code == 403 and past_cap.json()["message"]
    else:
        assert past_cap.status_code == 200  # nothing says the record was not kept
    seen = emu.meters()["tables"][table["table_id"]]
    assert (seen["rows"], seen["submissions"], seen["dropped"]) == (
        2,
        4,
        2 + (answer == "dropped"),
    )


def test_a_free_plan_table_holds_200_rows(make_emulator: Any) -> None:
    emu = make_emulator(plan="free")
    assert emu._settings.rows_per_table == 200


def test_lifetime_cap_refuses_whole_requests_and_counts_records(make_emulator: Any) -> None:
    emu = make_emulator(source_lifetime_cap=5)
    table = emu.create_table("T")
    url = table["webhook_url"]
    assert httpx.post(url, json=[{"i": i} for i in range(3)]).status_code == 200
    over = httpx.post(url, json=[{"i": i} for i in range(3)])
    assert (
        over.status_code == 403
        and "50,000" not in over.json()["message"]
        and "5" in over.json()["message"]
    )
    assert httpx.post(url, json=[{"i": 3}, {"i": 4}]).status_code == 200
    assert httpx.post(url, json={"i": 5}).status_code == 403
    assert emu.meters()["tables"][table["table_id"]] == {
        "name": "T",
        "rows": 5,
        "submissions": 5,
        "dropped": 0,
        "http_api_calls": 0,
    }


def test_http_api_column_retries_and_records_every_attempt(emulator: Any, recorder: Any) -> None:
    recorder.statuses = [500, 503]
    table = emulator.create_table("T", http_api={"url": recorder.url, "retry_backoff_s": 0.01})
    httpx.post(table["webhook_url"], json={"a": 1})
    assert len(recorder.wait_for(3)) == 3
    attempts = wait_http_deliveries(emulator, 3)
    assert [(d["attempt"], d["status_code"]) for d in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert (
        emulator.meters()["per_routine"]["http-api"]["actions"] == 1
    )  # one call billed, not three


def test_http_api_column_without_retry_tries_once(emulator: Any, recorder: Any) -> None:
    recorder.statuses = [500]
    table = emulator.create_table(
        "T", http_api={"url": recorder.url, "retry": False, "rate_limit_rps": 50}
    )
    httpx.post(table["webhook_url"], json=[{"a": 1}, {"a": 2}])
    assert len(recorder.wait_for(2)) == 2
    time.sleep(0.1)
    assert len(recorder.requests) == 2


def test_create_table_checks_its_settings(emulator: Any) -> None:
    with pytest.raises(ValueError, match="unknown routine"):
        emulator.create_table("T", enrichments=[{"routine": "nope", "inputs": {}}])
    with pytest.raises(ValueError, match="needs input"):
        emulator.create_table("T", enrichments=[{"routine": "enrich-person", "inputs": {"x": "y"}}])
    with pytest.raises(ValueError, match="http"):
        emulator.create_table("T", http_api={"url": "ftp://x"})
    r = httpx.post(
        emulator.url + "/_emulator/tables", json={"name": "Via HTTP", "enrichments": PERSON}
    )
    assert r.status_code == 201 and r.json()["webhook_url"].startswith(emulator.url)
    assert (
        httpx.post(emulator.url + "/_emulator/tables", json={"enrichments": []}).status_code == 400
    )


def test_tables_query_is_403_below_enterprise(emulator: Any) -> None:
    r = query(emulator, {"query": {"tables": [{"id": "t_x"}]}})
    assert r.status_code == 403 and "Enterprise" in r.json()["message"]


@pytest.fixture
def enterprise_table(make_emulator: Any) -> tuple[Any, str]:
    emu = make_emulator(plan="enterprise", source_burst=25)
    table = emu.create_table("Leads", enrichments=PERSON)
    for start in range(0, 25, 10):
        assert (
            httpx.post(table["webhook_url"], json=leads(min(10, 25 - start), start)).status_code
            == 200
        )
    return emu, table["table_id"]


def test_query_selects_fields_and_pages_with_a_cursor(enterprise_table: tuple[Any, str]) -> None:
    emu, table_id = enterprise_table
    seen: list[int] = []
    body: dict[str, Any] = {
        "query": {
            "tables": [{"id": table_id}],
            "select": [{"field": "Lead"}, {"field": "full_name", "as": "name"}],
        },
        "limit": 10,
    }
    while True:
        r = query(emu, body)
        assert r.status_code == 200, r.text
        page = r.json()
        assert (
            set(page["fields"]) == {"Lead", "name"}
            and page["fields"]["name"]["type"] == "enrichment"
        )
        for row in page["data"]:
            seen.append(row["Lead"]["value"])
            assert row["name"]["status"] in ("success", "empty")
        if "cursor" not in page:
            break
        body["cursor"] = page["cursor"]
    assert seen == list(range(25))


def test_query_filters_orders_aggregates_and_field_ids(enterprise_table: tuple[Any, str]) -> None:
    emu, table_id = enterprise_table
    tables = [{"id": "Leads"}]  # by name works too
    r = query(
        emu,
        {
            "query": {
                "tables": tables,
                "filter": {
                    "and": [
                        {"field": "Lead", "op": ">=", "value": 20},
                        {"not": {"field": "Lead", "op": "=", "value": 22}},
                    ]
                },
                "order_by": [{"field": "Lead", "direction": "desc"}],
                "select": [{"field": "Lead"}],
            }
        },
    )
    assert [row["Lead"]["value"] for row in r.json()["data"]] == [24, 23, 21, 20]
    agg = query(
        emu,
        {
            "query": {
                "tables": tables,
                "select": [
                    {"fn": "count", "field": "Lead", "as": "n"},
                    {"fn": "max", "field": "Lead", "as": "top"},
                ],
            }
        },
    ).json()
    assert agg["data"] == [
        {
            "n": {"status": "success", "value": 25, "fields": None},
            "top": {"status": "success", "value": 24, "fields": None},
        }
    ]
    ids = query(
        emu,
        {
            "query": {
                "tables": [{"id": table_id}],
                "field_mode": "ids",
                "select": [{"field": "Email"}],
            },
            "limit": 1,
        },
    ).json()
    [key] = ids["data"][0]
    assert key.startswith("f_") and ids["fields"][key]["name"] == "Email"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"query": {"tables": [{"id": "t_missing"}]}}, 404),
        ({"query": {"tables": [{"id": "Leads"}], "select": [{"field": "Nope"}]}}, 422),
        (
            {
                "query": {
                    "tables": [{"id": "Leads"}],
                    "join": [{"table": "x", "on": {"left": "a", "right": "b"}}],
                }
            },
            422,
        ),
        ({"query": {"tables": [{"id": "Leads"}]}, "limit": 0}, 400),
        ({"query": {"tables": []}}, 400),
        ({"nope": 1}, 400),
        ({"query": {"tables": [{"id": "Leads"}]}, "cursor": "garbage"}, 400),
    ],
)
def test_bad_queries(enterprise_table: tuple[Any, str], body: dict[str, Any], status: int) -> None:
    emu, _ = enterprise_table
    r = query(emu, body)
    assert r.status_code == status and r.json()["message"]


def test_credits_at_zero_leave_rows_unenriched_and_uncharged(
    make_emulator: Any, recorder: Any
) -> None:
    emu = make_emulator(plan="enterprise")
    emu.set_credits(data_credits_left=0)
    table = emu.create_table(
        "T", enrichments=PERSON, http_api={"url": recorder.url, "include_meta": True}
    )
    httpx.post(table["webhook_url"], json=leads(3))
    bodies = [json.loads(g.body) for g in recorder.wait_for(3)]
    statuses = {b["_clay"]["enrichments"][0]["status"] for b in bodies}
    assert statuses <= {"not_run", "no_match"} and "not_run" in statuses
    assert emu.meters()["data_credits_used"] == 0
    cells = query(
        emu, {"query": {"tables": [{"id": "T"}], "select": [{"field": "full_name"}]}}
    ).json()["data"]
    assert {"status": "error", "error": NOT_RUN_MESSAGE} in [c["full_name"] for c in cells]
