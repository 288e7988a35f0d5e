"""claynb.search / search_async / search_fields and the clients' search, over real HTTP
against the emulator, checked against its meters and the ledger."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from _client_helpers import statuses

import claynb
from claynb import Cost, Faults, SearchStop

PEOPLE = {"job_title_keywords": ["growth"], "location_countries_include": ["Germany"]}


def client_for(emu: Any, **kw: Any) -> claynb.ClayClient:
    return claynb.ClayClient(emu.api_key, base_url=emu.url, **kw)


def search_meters(emu: Any) -> dict[str, Any]:
    return dict(emu.meters(charges=False)["search"])


def test_a_search_is_a_flat_frame_one_row_per_record_stopping_at_the_limit(
    emulator: Any,
) -> None:
    with client_for(emulator) as c:
        df = claynb.search("people", filters=PEOPLE, limit=250, client=c, progress=False)
    assert len(df) == 250 and df["clay_profile_id"].is_unique
    assert list(df.columns) == [
        "clay_profile_id",
        "name",
        "first_name",
        "last_name",
        "location_name",
        "location_city",
        "location_state_or_province",
        "matched_experiences",
    ]
    assert isinstance(df["matched_experiences"].iloc[0], list)  # lists stay lists
    assert df["location_name"].str.endswith("Germany").all()
    info = df.attrs["search"]
    assert info["stop"] == "limit" and info["pages"] == 3 and info["requested"] == 250
    assert search_meters(emulator)["records"] == 250
    assert info["period_quota"]["used"] == search_meters(emulator)["period_quota"]["used"] == 250


def test_the_same_search_in_other_page_sizes_and_as_a_query_gives_the_same_frame(
    emulator: Any,
) -> None:
    with client_for(emulator) as c:
        big = claynb.search("people", filters=PEOPLE, limit=120, client=c, progress=False)
        small = claynb.search(
            "people", filters=PEOPLE, limit=120, page_size=7, client=c, progress=False
        )
        query = claynb.search(
            query="people where title contains 'growth' and country = 'Germany'",
            limit=120,
            client=c,
            progress=False,
        )
    pd.testing.assert_frame_equal(big, small)
    pd.testing.assert_frame_equal(big, query)
    assert small.attrs["search"]["pages"] == 18 and query.attrs["search"]["mode"] == "query-mode"


@pytest.mark.parametrize("counts", ["requested", "returned"])
def test_the_period_quota_is_counted_per_page_exactly_and_stops_the_search(
    make_emulator: Callable[..., Any], counts: str
) -> None:
    emu = make_emulator(search_period_quota=230, search_quota_counts=counts)
    with client_for(emu) as c:
        df = claynb.search("people", filters=PEOPLE, limit=None, client=c, progress=False)
    assert len(df) == 230 and df.attrs["search"]["stop"] == "period_quota"
    assert df.attrs["search"]["period_quota"]["remaining"] == 0
    seen = claynb.ledger().search_quota
    assert seen["quota_used"].tolist() == [100, 200, 230]  # the last page asked for what was left
    assert seen["records"].tolist() == [100, 100, 30] and seen["requested"].sum() == 230
    meters = search_meters(emu)
    assert meters["period_quota"]["used"] == 230 and meters["refused"] == 0  # no page refused


def test_a_budget_is_met_and_never_passed(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(search_cost_per_record=Cost(actions=1, data_credits=0.5))
    budget = claynb.Budget(data_credits=118.5)
    with client_for(emu) as c:
        df = claynb.search(
            "companies",
            filters={"industries": ["Software"]},
            limit=None,
            cost=Cost(actions=1, data_credits=0.5),
            budget=budget,
            client=c,
            progress=False,
        )
    assert len(df) == 237 and df.attrs["search"]["stop"] == "budget"
    assert budget.spent == Cost(237, 118.5) and budget.reserved == Cost()
    meters = emu.meters()
    charged = [x for x in meters["charges"] if x["routine"] == "search:companies"]
    assert len(charged) == 237 and len({x["item_id"] for x in charged}) == 237  # each once
    assert meters["actions_used"] == 237 and meters["data_credits_used"] == 118.5
    ledger = claynb.ledger().by_routine.loc["search:companies"]
    assert ledger["rows"] == 237 and ledger["data_credits"] == 118.5
    with client_for(emu) as c:  # the budget is spent: a second search asks for nothing
        again = claynb.search(
            "companies",
            filters={},
            cost=Cost(actions=1, data_credits=0.5),
            budget=budget,
            client=c,
            progress=False,
        )
    assert again.empty and again.attrs["search"]["stop"] == "budget"
    assert emu.meters(charges=False)["actions_used"] == 237


def test_a_402_mid_search_keeps_what_was_fetched(
    make_emulator: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    emu = make_emulator(search_cost_per_record=Cost(actions=1))
    emu.set_credits(actions_left=150)
    with client_for(emu) as c, caplog.at_level(logging.WARNING, "claynb"):
        df = claynb.search("people", filters=PEOPLE, limit=1000, client=c, progress=False)
    # 100 served; 100 refused and 50 served; then every page refused, halving down to one.
    assert len(df) == 150 and df["clay_profile_id"].is_unique
    assert df.attrs["search"]["stop"] == "payment_required"
    assert "credits exhausted" in df.attrs["search"]["message"]
    assert emu.meters(charges=False)["actions_used"] == 150
    assert statuses(emu)["402"] == search_meters(emu)["refused"] == 7  # 100, 50, 25, 12, 6, 3, 1
    assert "payment_required after 150 record(s)" in caplog.text
    assert emu.api_key not in caplog.text


def test_credits_spent_by_someone_else_mid_search_end_it_with_the_records_kept(
    emulator: Any,
) -> None:
    def spend_all(result: claynb.SearchResult, page: Any) -> None:
        if result.pages == 2:
            emulator.set_credits(actions_left=0)

    with client_for(emulator) as c:
        result = c.search("people", filters=PEOPLE, limit=500, page_size=40, on_page=spend_all)
    assert len(result.records) == 80 and result.stop is SearchStop.PAYMENT_REQUIRED
    assert result.quota is not None and result.quota.used == 80


def test_the_free_plans_smaller_pages_are_found_by_halving(
    make_emulator: Callable[..., Any],
) -> None:
    free = make_emulator(plan="free")
    with client_for(free) as c:
        df = claynb.search("people", filters=PEOPLE, limit=180, client=c, progress=False)
    assert len(df) == 180 and df.attrs["search"]["pages"] == 4  # 50 + 50 + 50 + 30
    assert statuses(free)["402"] == 1  # only the first page of 100 was refused


def test_a_413_page_is_asked_again_smaller_and_no_record_is_skipped(
    make_emulator: Callable[..., Any], emulator: Any
) -> None:
    tight = make_emulator(search_max_page_bytes=12_000)
    with client_for(tight) as c:
        df = claynb.search("people", filters=PEOPLE, limit=150, client=c, progress=False)
    with client_for(emulator) as c:
        reference = claynb.search("people", filters=PEOPLE, limit=150, client=c, progress=False)
    pd.testing.assert_frame_equal(df, reference)
    assert statuses(tight)["413"] == 2  # 100 and 50 refused, then pages of 25


def test_a_page_lost_on_the_wire_is_not_asked_again_and_what_came_before_is_kept(
    emulator: Any,
) -> None:
    def drop_next(result: claynb.SearchResult, page: Any) -> None:
        emulator.set_faults(Faults(drop_connection=1.0))

    with client_for(emulator) as c, pytest.raises(claynb.OutcomeUnknown) as info:
        c.search("people", filters=PEOPLE, limit=300, on_page=drop_next)
    report = info.value.report
    assert isinstance(report, claynb.SearchResult) and len(report.records) == 100
    emulator.set_faults(Faults())
    # The lost page was served (and counted) by Clay; it was not sent a second time.
    assert search_meters(emulator)["pages"] == 2 and search_meters(emulator)["records"] == 200


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"kind": "people", "filters": {}, "query": "people"}, claynb.ConfigError, "not both"),
        ({"kind": "people"}, claynb.ConfigError, "filters"),
        ({"kind": "jobs", "filters": {}}, claynb.ConfigError, "'people' or 'companies'"),
        ({"filters": {}}, claynb.ConfigError, "what to search"),
        (
            {"kind": "people", "filters": {"job_titles": ["vp"]}},
            claynb.ConfigError,
            "did you mean 'job_title_keywords'",
        ),
        (
            {"kind": "companies", "query": "people where city = 'Berlin'"},
            claynb.ConfigError,
            "searches people, not companies",
        ),
        ({"kind": "people", "filters": {}, "cost": 2}, claynb.ConfigError, "claynb.Cost"),
    ],
)
def test_bad_input_is_a_clear_error_before_any_record_is_fetched(
    emulator: Any, kwargs: dict[str, Any], error: type[Exception], says: str
) -> None:
    kind = kwargs.pop("kind", None)
    with client_for(emulator) as c, pytest.raises(error, match=says):
        claynb.search(kind, client=c, progress=False, **kwargs)
    assert search_meters(emulator)["records"] == 0


def test_a_filter_the_server_refuses_is_its_400_when_fields_are_not_checked(
    emulator: Any,
) -> None:
    with client_for(emulator) as c, pytest.raises(claynb.HTTPStatusError) as info:
        c.search("people", filters={"seniority_levels": ["boss"]})
    assert info.value.status == 400 and "allowed" in info.value.message


def test_search_fields_is_a_frame_of_fields_with_their_guidance(emulator: Any) -> None:
    with client_for(emulator) as c:
        fields = claynb.search_fields("people", client=c)
    assert list(fields.columns) == ["name", "type", "description", "allowed_values", "guidance"]
    row = fields.set_index("name").loc["seniority_levels"]
    assert "vp" in row["allowed_values"] and row["guidance"]
    assert fields.attrs["behavior"] and fields.attrs["create_examples"]
    with pytest.raises(claynb.ConfigError):
        claynb.search_fields("jobs", client=c)


def test_async_search_gives_the_sync_frame_and_each_wants_its_own_client(emulator: Any) -> None:
    async def main() -> pd.DataFrame:
        async with claynb.AsyncClayClient(emulator.api_key, base_url=emulator.url) as c:
            return await claynb.search_async(
                "people", filters=PEOPLE, limit=130, client=c, progress=False
            )

    frame = asyncio.run(main())
    with client_for(emulator) as c:
        pd.testing.assert_frame_equal(
            frame, claynb.search("people", filters=PEOPLE, limit=130, client=c, progress=False)
        )
        with pytest.raises(TypeError, match="AsyncClayClient"):
            asyncio.run(claynb.search_async("people", filters=PEOPLE, client=c))
    with pytest.raises(TypeError, match="search_async"):
        claynb.search("people", filters=PEOPLE, client=claynb.AsyncClayClient("k"))


def test_a_search_with_no_records_still_has_its_columns(emulator: Any) -> None:
    with client_for(emulator) as c:
        df = claynb.search(
            "people",
            filters={"job_title_keywords": ["growth"], "job_title_exclude_keywords": ["growth"]},
            client=c,
            progress=False,
        )
    assert df.empty and "location_city" in df.columns
    assert df.attrs["search"]["stop"] == "no_more_results"


def test_the_key_never_reaches_an_error_or_the_frame(emulator: Any) -> None:
    with client_for(emulator) as c:
        df = claynb.search("people", filters=PEOPLE, limit=5, client=c, progress=False)
    assert emulator.api_key not in repr(df.attrs) and emulator.api_key not in df.to_csv()
    with (
        claynb.ClayClient(emulator.api_key + "x", base_url=emulator.url) as wrong,
        pytest.raises(claynb.AuthenticationError) as info,
    ):
        claynb.search("people", filters=PEOPLE, client=wrong, progress=False)
    for text in (str(info.value), repr(info.value)):
        assert emulator.api_key not in text


def test_progress_counts_records_even_without_a_limit(
    make_emulator: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    emu = make_emulator(search_period_quota=120)
    with client_for(emu) as c:
        claynb.search("people", filters=PEOPLE, limit=None, client=c, progress="text")
    assert "searching: 120 rows, 0 Actions, 0 Data Credits" in capsys.readouterr().err


def test_the_query_reference_is_served_to_both_clients(emulator: Any) -> None:
    async def main() -> str:
        async with claynb.AsyncClayClient(emulator.api_key, base_url=emulator.url) as c:
            return await c.search_query_reference()

    with client_for(emulator) as c:
        text = c.search_query_reference()
    assert text == asyncio.run(main()) and "companies where" in text
