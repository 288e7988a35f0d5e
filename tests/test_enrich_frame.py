"""claynb.enrich / df.clay.enrich against the emulator over real HTTP: the frame contract."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest

import claynb
from claynb._routines import DEFAULT_ROUTINES, run_item

PERSON_FIELDS = ["clay_" + f for f in DEFAULT_ROUTINES["enrich-person"].fields]
STATUS = ["clay_status", "clay_error", "clay_actions", "clay_data_credits", "clay_cost_source"]


@pytest.fixture
def client(emulator: Any) -> claynb.ClayClient:
    return claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)


def emails(n: int, start: int = 0) -> list[str]:
    return [f"first{i}.last{i}@company{i % 13}.com" for i in range(start, start + n)]


def charged(emu: Any) -> tuple[float, float]:
    m = emu.meters(charges=False)
    return m["actions_used"], m["data_credits_used"]


def test_new_frame_with_every_column_same_index_and_order(emulator: Any, client: Any) -> None:
    idx = pd.MultiIndex.from_tuples([("b", 2), ("a", 1), ("b", 2), ("c", 0)], names=["k", "n"])
    df = pd.DataFrame({"Email": emails(3) + [emails(1)[0]], "Score": [3, 1, 2, 9]}, index=idx)
    snapshot = df.copy(deep=True)

    out = df.clay.enrich("enrich-person", {"email": "Email"}, client=client, progress=False)

    pd.testing.assert_frame_equal(df, snapshot)  # the input is never mutated
    assert out is not df
    assert out.index.equals(df.index)
    assert list(out.columns) == ["Email", "Score", *PERSON_FIELDS, *STATUS]
    pd.testing.assert_frame_equal(out[["Email", "Score"]], df)


@pytest.mark.parametrize(
    "index",
    [
        pd.Index(["x", "x", "y", "z", "x"]),  # repeated string labels
        pd.date_range("2026-01-01", periods=5, freq="D"),  # dates
        pd.Index([10, 3, 10, 7, 1]),  # repeated ints, unsorted
    ],
)
def test_any_index_comes_back_the_same(emulator: Any, client: Any, index: pd.Index) -> None:
    df = pd.DataFrame({"Email": emails(5)}, index=index)
    out = claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress=False)
    assert out.index.equals(df.index)
    assert list(out["Email"]) == list(df["Email"])


def test_results_match_what_clay_returns_for_each_row(emulator: Any, client: Any) -> None:
    routine = DEFAULT_ROUTINES["enrich-person"]
    df = pd.DataFrame({"Email": emails(60)})
    out = claynb.enrich(df, routine, {"email": "Email"}, client=client, progress=False)
    for email, (_, row) in zip(df["Email"], out.iterrows(), strict=True):
        outcome = run_item(routine, {"email": email})
        if outcome.status == "matched":
            assert row["clay_status"] == "enriched"
            assert row["clay_full_name"] == outcome.result["full_name"]
            assert row["clay_data_credits"] == outcome.cost.data_credits
        else:
            assert row["clay_status"] == "no_match"
            assert pd.isna(row["clay_full_name"]) and row["clay_data_credits"] == 0
    assert set(out["clay_status"]) == {"enriched", "no_match"}


def test_duplicates_sent_once_first_row_carries_the_cost(emulator: Any, client: Any) -> None:
    base = emails(20)
    matched = next(
        e
        for e in base
        if run_item(DEFAULT_ROUTINES["enrich-person"], {"email": e}).status == "matched"
    )
    messy = ["  " + matched.upper() + " ", matched, "MAILTO:" + matched]
    df = pd.DataFrame({"Email": base + messy})

    out = claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress=False)

    meters = emulator.meters(charges=True)
    keys = [c["inputs_key"] for c in meters["charges"]]
    assert meters["per_routine"]["enrich-person"]["items"] == 20  # 23 rows, 20 unique sent
    assert len(keys) == len(set(keys))  # no item charged twice
    dup_rows = out.iloc[20:]
    assert (dup_rows["clay_status"] == "enriched").all()
    assert (dup_rows["clay_data_credits"] == 0).all() and (dup_rows["clay_actions"] == 0).all()
    first = out.iloc[base.index(matched)]
    assert first["clay_data_credits"] == 1 and first["clay_actions"] == 1
    assert dup_rows["clay_full_name"].tolist() == [first["clay_full_name"]] * 3
    # each column sums to what Clay charged
    assert (out["clay_actions"].sum(), out["clay_data_credits"].sum()) == charged(emulator)


def test_invalid_and_missing_inputs_are_never_sent(emulator: Any, client: Any) -> None:
    df = pd.DataFrame(
        {
            "Name": ["Ada Lovelace", "  ", None, "Grace Hopper", "1234", "Alan Turing"],
            "Domain": [
                "https://www.Acme.com/about",
                "acme.com",
                "acme.com",
                "not a domain",
                "x.io",
                np.nan,
            ],
        }
    )
    out = claynb.enrich(
        df,
        "find-work-email",
        {"full_name": "Name", "company_domain": "Domain"},
        client=client,
        progress=False,
    )
    status = out["clay_status"].tolist()
    assert status[0] in ("enriched", "no_match")
    assert status[1:] == ["invalid_input"] * 5
    errors = out["clay_error"].tolist()
    assert "missing input 'full_name'" in errors[1] and "missing input 'full_name'" in errors[2]
    assert "malformed domain" in errors[3]
    assert "no letters" in errors[4]
    assert "missing input 'company_domain'" in errors[5]
    assert out["clay_data_credits"].iloc[1:].sum() == 0
    assert emulator.meters(charges=False)["per_routine"]["find-work-email"]["items"] == 1


def test_empty_frame(emulator: Any, client: Any) -> None:
    df = pd.DataFrame({"Email": pd.Series([], dtype="str")})
    out = claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress=False)
    assert len(out) == 0
    assert list(out.columns) == ["Email", *PERSON_FIELDS, *STATUS]
    assert emulator.meters(charges=False)["requests"]["total"] == 0


def test_bad_arguments_name_what_is_wrong(client: Any) -> None:
    df = pd.DataFrame({"Email": emails(2)})
    with pytest.raises(ValueError, match="'Mail'"):
        claynb.enrich(df, "enrich-person", {"email": "Mail"}, client=client)
    with pytest.raises(ValueError, match="no input 'phone'.*email"):
        claynb.enrich(df, "enrich-person", {"phone": "Email"}, client=client)
    with pytest.raises(
        ValueError,
        match="unknown routine 'enrich-persn': it is in no routine catalogue.*enrich-person",
    ):
        claynb.enrich(df, "enrich-persn", client=client)
    # With its inputs named, any id is a workspace routine: Clay's 404 says it is not one.
    typo = claynb.enrich(df, "enrich-persn", {"email": "Email"}, client=client, progress=False)
    assert (typo["clay_status"] == "failed").all() and "404" in typo["clay_error"].iloc[0]
    with pytest.raises(ValueError, match="needs input 'company_domain'"):
        claynb.enrich(df, "find-work-email", {"full_name": "Email"}, client=client)
    with pytest.raises(claynb.ConfigError, match="unknown backend 'carrier-pigeon'"):
        claynb.enrich(
            df, "enrich-person", {"email": "Email"}, client=client, backend="carrier-pigeon"
        )
    with pytest.raises(TypeError, match="no option 'bogus'"):
        claynb.enrich(
            df, "enrich-person", {"email": "Email"}, client=client, progress=False, bogus=1
        )


def test_inputs_default_to_columns_named_like_the_routine_inputs(
    emulator: Any, client: Any
) -> None:
    df = pd.DataFrame({"domain": ["acme.com", "www.globex.io", "initech.net"]})
    out = df.clay.enrich("enrich-company", client=client, progress=False)
    assert set(out["clay_status"]) <= {"enriched", "no_match"}
    assert out["clay_employee_count"].dtype.name in ("Int64", "object")


def test_enrich_async_from_async_code(emulator: Any) -> None:
    df = pd.DataFrame({"Email": emails(30)})

    async def main() -> pd.DataFrame:
        async with claynb.AsyncClayClient(api_key=emulator.api_key, base_url=emulator.url) as ac:
            return await claynb.enrich_async(
                df, "enrich-person", {"email": "Email"}, client=ac, progress=False
            )

    out = asyncio.run(main())
    assert set(out["clay_status"]) <= {"enriched", "no_match"}
    assert out["clay_data_credits"].sum() == charged(emulator)[1]


def test_sync_enrich_inside_a_running_event_loop(emulator: Any, client: Any) -> None:
    """Jupyter runs cells inside an event loop: the sync call must not deadlock it."""
    df = pd.DataFrame({"Email": emails(25)})

    async def cell() -> pd.DataFrame:
        return claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress=False)

    out = asyncio.run(cell())
    assert len(out) == 25 and set(out["clay_status"]) <= {"enriched", "no_match"}


def test_client_defaults_to_connect(emulator: Any) -> None:
    df = pd.DataFrame({"Email": emails(3)})
    out = df.clay.enrich("enrich-person", {"email": "Email"}, progress=False)
    assert set(out["clay_status"]) <= {"enriched", "no_match"}


def test_plain_text_progress_outside_jupyter(emulator: Any, client: Any, capsys: Any) -> None:
    df = pd.DataFrame({"Email": emails(10)})
    claynb.enrich(df, "enrich-person", {"email": "Email"}, client=client, progress="text")
    err = capsys.readouterr().err
    assert "10/10 rows" in err and "Data Credits" in err
    claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, refresh=True
    )
    assert capsys.readouterr().err == ""


def test_every_status_in_one_frame(make_emulator: Any) -> None:
    """cached, failed (dead-lettered earlier), unknown (an earlier send timed out),
    invalid_input, over_budget, enriched and no_match, side by side."""
    # Items Clay did not run for lack of credits fail (credits_out="item_failures"): with no
    # meters to ask (a client not told of an emulator) that is all claynb can know.
    emu = make_emulator(slow_s=2.0, credits_out="item_failures")
    fast = claynb.ClayClient(
        api_key=emu.api_key,
        base_url=emu.url,
        retry=claynb.RetryPolicy(max_attempts=1),
        timeout=claynb.Timeout(0.3, connect=5.0),
    )
    person = DEFAULT_ROUTINES["enrich-person"]
    hits = [e for e in emails(40, 100) if run_item(person, {"email": e}).status == "matched"]
    cached, failed, unknown, fresh = emails(3), hits[:2], emails(2, 20), emails(40, 30)
    claynb.enrich(
        pd.DataFrame({"Email": cached}),
        "enrich-person",
        {"email": "Email"},
        client=fast,
        progress=False,
    )
    left = emu.meters(charges=False)["data_credits_left"]
    emu.set_credits(data_credits_left=0)
    claynb.enrich(
        pd.DataFrame({"Email": failed}),
        "enrich-person",
        {"email": "Email"},
        client=fast,
        progress=False,
    )
    emu.set_credits(data_credits_left=left)
    emu.set_faults(claynb.Faults(timeout=1.0))
    claynb.enrich(
        pd.DataFrame({"Email": unknown}),
        "enrich-person",
        {"email": "Email"},
        client=fast,
        progress=False,
    )
    emu.set_faults(claynb.Faults())

    df = pd.DataFrame({"Email": cached + failed + unknown + ["nope"] + fresh})
    out = claynb.enrich(
        df,
        "enrich-person",
        {"email": "Email"},
        client=fast,
        progress=False,
        budget=claynb.Budget(data_credits=12),
        concurrency=1,
        batch_size=5,
    )
    assert set(out["clay_status"]) == set(claynb.pipeline._work.STATUSES)
    assert out["clay_status"].iloc[:8].tolist() == (
        ["cached"] * 3 + ["failed"] * 2 + ["unknown"] * 2 + ["invalid_input"]
    )
    assert out["clay_data_credits"].sum() <= 12


def test_sync_enrich_in_a_loop_with_that_loops_async_client(emulator: Any) -> None:
    """An AsyncClayClient already used on the notebook's loop still works from sync enrich."""
    df = pd.DataFrame({"Email": emails(15)})

    async def cell() -> pd.DataFrame:
        async with claynb.AsyncClayClient(api_key=emulator.api_key, base_url=emulator.url) as ac:
            await ac.me()  # opens a connection on this loop
            return claynb.enrich(df, "enrich-person", {"email": "Email"}, client=ac, progress=False)

    out = asyncio.run(cell())
    assert set(out["clay_status"]) <= {"enriched", "no_match"}


def test_a_routine_of_the_emulators_own_catalogue(make_emulator: Any) -> None:
    scoring = claynb.Routine(
        "score-lead", ("email",), ("value",), (claynb.Provider("p", 0.6, 2.0),)
    )
    emu = make_emulator(routines={**DEFAULT_ROUTINES, "score-lead": scoring})
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    client.emulator = emu  # what claynb.connect() sets when it starts one
    out = claynb.enrich(
        pd.DataFrame({"Email": emails(30)}),
        "score-lead",
        {"email": "Email"},
        client=client,
        progress=False,
    )
    hits = out["clay_status"] == "enriched"
    assert hits.any() and (out["clay_status"] != "enriched").any()
    assert (
        out.loc[hits, "clay_value"].notna().all()
        and (out.loc[hits, "clay_data_credits"] == 2).all()
    )
    assert out["clay_data_credits"].sum() == emu.meters(charges=False)["data_credits_used"]
