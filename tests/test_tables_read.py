"""claynb.read_table over real HTTP: an emulated Clay table into a DataFrame."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from _client_helpers import statuses

import claynb
from claynb.pipeline._tables_read import table_filter

PERSON = [{"routine": "enrich-person", "inputs": {"email": "Email"}}]


def client_for(emu: Any) -> claynb.ClayClient:
    return claynb.ClayClient(emu.api_key, base_url=emu.url)


def filled_table(emu: Any, rows: int) -> str:
    """A table with ``rows`` leads sent through its webhook source, enrichment finished."""
    table = emu.create_table("Leads", enrichments=PERSON)
    fast = claynb.SourcePolicy(records_per_s=1000, burst=1000)  # the emulator allows it
    with claynb.ClayClient(emu.api_key, base_url=emu.url, source_policy=fast) as c:
        report = c.send_to_source(
            table["webhook_url"],
            [
                {"Email": f"ada.lovelace{i}@acme.com", "Lead": i, "Tier": "ab"[i % 2]}
                for i in range(rows)
            ],
        )
    assert report.sent == rows
    deadline = time.monotonic() + 30
    while emu.meters(charges=False)["runs"]["in_progress"] and time.monotonic() < deadline:
        time.sleep(0.02)
    return str(table["table_id"])


def test_below_enterprise_read_table_says_it_needs_an_enterprise_workspace(
    emulator: Any,
) -> None:
    with client_for(emulator) as c, pytest.raises(claynb.Forbidden) as info:
        claynb.read_table("t_anything", client=c)
    assert info.value.status == 403
    assert str(info.value.message).startswith("read_table needs an Enterprise workspace")
    assert emulator.api_key not in str(info.value)


def test_a_whole_table_comes_back_page_by_page_one_row_per_record(
    make_emulator: Callable[..., Any],
) -> None:
    emu = make_emulator(plan="enterprise", source_rate_per_s=1000, source_burst=1000)
    table_id = filled_table(emu, 230)
    before = statuses(emu).get("200", 0)
    with client_for(emu) as c:
        df = claynb.read_table(table_id, client=c)
    assert len(df) == 230 and df["Lead"].tolist() == list(range(230))
    assert {"Email", "Lead", "Tier", "full_name", "title"} <= set(df.columns)
    assert df["full_name"].notna().any()  # enriched cells show their values
    assert statuses(emu)["200"] - before == 3  # 100 + 100 + 30, every cursor followed


def test_filters_select_and_limit_shape_what_is_read(make_emulator: Callable[..., Any]) -> None:
    emu = make_emulator(plan="enterprise", source_rate_per_s=1000, source_burst=1000)
    table_id = filled_table(emu, 40)
    with client_for(emu) as c:
        tier_a = claynb.read_table(
            table_id, filters={"Tier": "a"}, select=["Lead", "Tier"], client=c
        )
        some = claynb.read_table(table_id, filters={"Lead": [1, 2, 3, 30]}, client=c)
        expression = claynb.read_table(
            table_id, filters={"field": "Lead", "op": ">=", "value": 35}, client=c
        )
        first = claynb.read_table(table_id, limit=7, client=c)
        none = claynb.read_table(table_id, limit=0, client=c)
    assert list(tier_a.columns) == ["Lead", "Tier"] and tier_a["Lead"].tolist() == list(
        range(0, 40, 2)
    )
    assert some["Lead"].tolist() == [1, 2, 3, 30]
    assert expression["Lead"].tolist() == [35, 36, 37, 38, 39]
    assert first["Lead"].tolist() == list(range(7)) and none.empty


def test_unique_by_keeps_one_copy_of_each_row() -> None:
    from claynb.pipeline._tables_read import rows_frame
    from claynb.wire._results import TableRows

    def cell(value: Any) -> dict[str, Any]:
        return {"status": "success", "value": value, "fields": None}

    rows = TableRows(
        records=[
            {"id": cell("r1"), "score": cell(1)},
            {"id": cell("r2"), "score": {"status": "running"}},
            {"id": cell("r1"), "score": cell(5)},  # updated mid-scan, returned again
        ],
        fields={"id": {"id": "f1", "name": "id", "type": "text"}},
    )
    frame = rows_frame(rows, unique_by="id")
    assert frame["id"].tolist() == ["r2", "r1"]  # the fresher copy of r1 is kept
    assert frame["score"].isna().tolist() == [True, False] and frame["score"].iloc[1] == 5
    with pytest.raises(claynb.ConfigError):
        rows_frame(rows, unique_by="nope")


def test_filters_become_clay_filter_expressions() -> None:
    assert table_filter({"Tier": "a"}) == {"field": "Tier", "op": "=", "value": "a"}
    assert table_filter({"Tier": ["a", "b"], "Email": None}) == {
        "and": [
            {"field": "Tier", "op": "in", "value": ["a", "b"]},
            {"field": "Email", "op": "is_empty"},
        ]
    }
    given = {"or": [{"field": "Tier", "op": "=", "value": "a"}]}
    assert table_filter(given) == given
    with pytest.raises(claynb.ConfigError):
        table_filter({})
