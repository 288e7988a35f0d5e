"""The emulator's Search operations over real HTTP: validation, records, paging, quota, 402, 413."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from claynb import Cost

PEOPLE = {"job_title_keywords": ["revenue operations"], "location_cities_include": ["Berlin"]}


def api(emu: Any) -> httpx.Client:
    return httpx.Client(base_url=emu.url + "/public/v0", headers={"clay-api-key": emu.api_key})


def create(c: httpx.Client, source: str = "people", filters: Any = None) -> str:
    answer = c.post(
        "/search/filters-mode", json={"source_type": source, "filters": filters or PEOPLE}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["search_id"])


def run(
    c: httpx.Client, search_id: str, limit: int | None = None, mode: str = "filters-mode"
) -> httpx.Response:
    body = None if limit is None else {"limit": limit}
    return c.post(f"/search/{mode}/{search_id}/run", json=body)


def quota_used(emu: Any) -> int:
    return int(emu.meters(charges=False)["search"]["period_quota"]["used"])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"source_type": "jobs", "filters": {}}, "source_type"),
        ({"source_type": "people"}, "filters"),
        ({"source_type": "people", "filters": {}, "extra": 1}, "extra"),
        ({"source_type": "people", "filters": {"job_titles": ["x"]}}, "job_title_keywords"),
        ({"source_type": "people", "filters": {"seniority_levels": ["boss"]}}, "allowed"),
        ({"source_type": "people", "filters": {"job_title_keywords": "vp"}}, "array"),
        ({"source_type": "companies", "filters": {"min_funding_usd": -1}}, "number"),
    ],
)
def test_a_create_that_breaks_the_schema_is_a_400_that_says_why(
    emulator: Any, body: dict[str, Any], says: str
) -> None:
    answer = api(emulator).post("/search/filters-mode", json=body)
    assert answer.status_code == 400 and says in answer.json()["message"]
    assert emulator.meters(charges=False)["search"]["searches"] == 0


def test_fields_and_reference_describe_what_a_search_accepts(emulator: Any) -> None:
    c = api(emulator)
    people = c.get("/search/filters-mode/fields", params={"source_type": "people"}).json()
    names = [f["name"] for f in people["fields"]]
    assert people["source_type"] == "people" and "job_title_keywords" in names
    assert people["guidance"]["behavior"] and people["guidance"]["field_guidance"]
    for example in people["guidance"]["create_examples"]:  # every example is a valid create
        assert c.post("/search/filters-mode", json=example["request"]).status_code == 200
    assert c.get("/search/filters-mode/fields", params={"source_type": "x"}).status_code == 400
    reference = c.get("/search/query-mode/reference").json()["reference"]
    assert "people where" in reference and "| title |" in reference


def test_records_show_the_filters_and_the_same_search_gives_the_same_records(
    emulator: Any,
) -> None:
    c = api(emulator)
    first = run(c, create(c), 50).json()["data"]
    reordered = {  # keys in another order, a value twice: the same search
        "location_cities_include": ["Berlin", "Berlin"],
        "job_title_keywords": ["revenue operations"],
    }
    again = run(c, create(c, filters=reordered), 50).json()["data"]
    assert len(first) == 50 and first == again
    for person in first:
        assert person["location"]["city"] == "Berlin"
        assert "Revenue Operations" in person["matched_experiences"][0]["title"]
    companies = run(
        c,
        create(
            c, "companies", {"industries": ["Software"], "location_countries_include": ["France"]}
        ),
        30,
    ).json()["data"]
    assert {(x["industry"], x["country"]) for x in companies} == {("Software", "France")}
    assert len({x["domain"] for x in companies}) == 30  # no company twice in a search


def test_pages_are_disjoint_steps_of_one_iterator_and_each_counts_on_the_quota(
    emulator: Any,
) -> None:
    c = api(emulator)
    search_id = create(c)
    pages = [run(c, search_id, 7).json() for _ in range(3)]
    default = run(c, search_id).json()  # no body: Clay's default page of 20
    ids = [r["clay_profile_id"] for p in [*pages, default] for r in p["data"]]
    assert len(ids) == len(set(ids)) == 41
    assert [p["period_quota"]["used"] for p in pages] == [7, 14, 21]
    assert default["period_quota"]["used"] == quota_used(emulator) == 41
    quota = default["period_quota"]
    assert quota["remaining"] == quota["limit"] - 41 and quota["resets_at"].endswith(
        "T00:00:00.000Z"
    )
    straight = run(c, create(c), 41).json()["data"]  # the same search in one page
    assert [r["clay_profile_id"] for r in straight] == ids


@pytest.mark.parametrize(("counts", "expected"), [("requested", 100), ("returned", 3)])
def test_a_short_last_page_counts_as_the_quota_setting_says(
    make_emulator: Callable[..., Any], counts: str, expected: int
) -> None:
    emu = make_emulator(search_quota_counts=counts)
    c = api(emu)
    search_id = create(c, "companies", {"domains": ["acme.com", "globex.io", "initech.co"]})
    page = run(c, search_id, 100).json()
    assert [r["name"] for r in page["data"]] == ["Acme", "Globex", "Initech"]
    assert page["has_more"] is False and quota_used(emu) == expected
    assert run(c, search_id, 100).json()["data"] == [] and quota_used(emu) == expected


@pytest.mark.parametrize("counts", ["requested", "returned"])
def test_past_the_period_quota_a_page_is_a_402_that_changes_nothing(
    make_emulator: Callable[..., Any], counts: str
) -> None:
    emu = make_emulator(search_period_quota=30, search_quota_counts=counts)
    c = api(emu)
    search_id = create(c)
    assert len(run(c, search_id, 25).json()["data"]) == 25
    refused = run(c, search_id, 10)
    assert refused.status_code == 402 and "25 of 30" in refused.json()["message"]
    last = run(c, search_id, 5).json()
    assert last["period_quota"] == {**last["period_quota"], "used": 30, "remaining": 0}
    assert (
        c.post("/search/filters-mode", json={"source_type": "people", "filters": {}}).status_code
        == 402
    )
    emu.reset_meters()  # a new period
    assert run(c, search_id, 5).status_code == 200 and quota_used(emu) == 5


def test_pages_over_the_plan_cap_and_exhausted_credits_are_402(
    make_emulator: Callable[..., Any],
) -> None:
    free = make_emulator(plan="free")
    c = api(free)
    search_id = create(c)
    assert run(c, search_id, 51).status_code == 402  # 50 a request on Free
    assert len(run(c, search_id, 50).json()["data"]) == 50
    free.set_credits(data_credits_left=0)
    assert run(c, search_id, 1).status_code == 402
    assert c.post("/search/query-mode", json={"query": "people"}).status_code == 402
    assert quota_used(free) == 50 and free.meters(charges=False)["search"]["refused"] == 3


def test_a_per_record_cost_is_charged_per_record_in_the_admin_meters_only(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(search_cost_per_record=Cost(actions=1, data_credits=0.5))
    emu.set_credits(actions_left=30)
    c = api(emu)
    search_id = create(c)
    page = run(c, search_id, 20).json()
    assert set(page) == {"data", "has_more", "period_quota"}  # nothing about cost in the answer
    assert run(c, search_id, 11).status_code == 402  # 10 Actions left cannot pay for 11
    meters = emu.meters()
    charges = [x for x in meters["charges"] if x["routine"] == "search:people"]
    assert [x["item_id"] for x in charges] == [str(r["clay_profile_id"]) for r in page["data"]]
    assert meters["actions_used"] == 20 and meters["data_credits_used"] == 10
    assert meters["search"]["actions"] == 20 and meters["actions_left"] == 10


def test_a_filters_mode_page_over_the_size_limit_is_a_413_and_nothing_moves(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(search_max_page_bytes=8_000)
    c = api(emu)
    search_id = create(c)
    assert run(c, search_id, 100).status_code == 413
    smaller = run(c, search_id, 10).json()["data"]
    first_ten = run(c, create(c), 10).json()["data"]
    assert smaller == first_ten and quota_used(emu) == 20


def test_query_mode_detects_the_source_type_and_matches_the_filters_it_stands_for(
    emulator: Any,
) -> None:
    c = api(emulator)
    created = c.post(
        "/search/query-mode",
        json={"query": "people where title contains 'revenue operations' and city = \"Berlin\""},
    ).json()
    assert created["source_type"] == "people"
    page = run(c, created["search_id"], 50, mode="query-mode").json()
    assert page["source_type"] == "people"
    assert page["data"] == run(c, create(c), 50).json()["data"]  # same search, same records
    assert run(c, created["search_id"], 50).status_code == 404  # not a filters-mode search


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("count people", "count-mode"),
        ("jobs where title contains 'x'", "jobs"),
        ("people where title contains 'a' or city = 'b'", "'or'"),
        ("people where salary >= 3", "expected a field"),
        ("companies where industry = 'Shipping'", "allowed"),
        ("places", "people"),
    ],
)
def test_unsupported_queries_are_a_400_that_says_why(emulator: Any, query: str, says: str) -> None:
    answer = api(emulator).post("/search/query-mode", json={"query": query})
    assert answer.status_code == 400 and says in answer.json()["message"]


@pytest.mark.parametrize(("cap", "reason"), [(12, "query_limit"), (None, "no_more_results")])
def test_the_last_query_mode_page_says_why_it_is_the_last(
    make_emulator: Callable[..., Any], cap: int | None, reason: str
) -> None:
    emu = make_emulator(search_per_search_cap=cap)
    c = api(emu)
    query = (
        "companies where domain in ('a-one.com', 'b-two.com', 'c-three.com', "
        + ", ".join(f"'x{i}.io'" for i in range(20))
        + ")"
    )
    search_id = c.post("/search/query-mode", json={"query": query}).json()["search_id"]
    pages = [run(c, search_id, 10, mode="query-mode").json() for _ in range(3)]
    served = sum(len(p["data"]) for p in pages)
    assert served == (12 if cap else 23)
    last = next(p for p in pages if not p["has_more"])
    assert last["exhaustion_reason"] == reason
    assert all("exhaustion_reason" not in p for p in pages if p["has_more"])


@pytest.mark.parametrize(
    "setting",
    [
        {"search_quota_counts": "pages"},
        {"search_period_quota": -1},
        {"search_page_cap": 2.5},
        {"search_cost_per_record": 1},
    ],
)
def test_search_settings_are_checked_when_the_emulator_is_built(setting: dict[str, Any]) -> None:
    from claynb import Emulator

    with pytest.raises(ValueError):
        Emulator(**setting)
