"""The dead-letter list: failed rows kept with inputs, error, attempts; re-sent on request."""

from __future__ import annotations

from typing import Any

import pandas as pd

import claynb
from claynb._routines import DEFAULT_ROUTINES, run_item


def emails(n: int) -> list[str]:
    return [f"f{i}.g{i}@fail{i % 3}.com" for i in range(n)]


def matched(n: int) -> list[str]:
    """Addresses the demo routine matches (so each costs something to run)."""
    person = DEFAULT_ROUTINES["enrich-person"]
    hits = [e for e in emails(20 * n) if run_item(person, {"email": e}).status == "matched"]
    return hits[:n]


def test_failed_rows_are_kept_not_cached_and_resent_only_on_request(make_emulator: Any) -> None:
    # The workspace is out of credits and Clay answers each item failed, in words nobody can
    # rely on (credits_out="item_failures"); a client that knows of no meters (real Clay)
    # can only call them failed. (A 5xx would not do: a run may have started behind it.)
    emu = make_emulator(credits_out="item_failures")
    left = emu.meters(charges=False)["data_credits_left"]
    emu.set_credits(data_credits_left=0)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    rows = matched(12)
    df = pd.DataFrame({"Email": rows, "Id": range(12)})

    def enrich(**kw: Any) -> pd.DataFrame:
        return claynb.enrich(
            df,
            "enrich-person",
            {"email": "Email"},
            client=client,
            progress=False,
            max_attempts=2,
            poll_max_interval=0.05,
            **kw,
        )

    out = enrich()
    assert (out["clay_status"] == "failed").all()
    assert out["clay_error"].str.startswith("Clay: ").all()
    assert emu.meters(charges=False)["data_credits_used"] == 0

    dead = claynb.failures("enrich-person")
    assert len(dead) == 12
    assert set(dead["attempts"]) == {1}
    assert sorted(d["email"] for d in dead["inputs"]) == sorted(rows)
    assert len(df.clay.failures("enrich-person", {"email": "Email"})) == 12
    assert len(out.clay.failures()) == 12  # an enriched frame's failed rows

    # Without retry_failed they are answered from the list, not sent again.
    requests = emu.meters(charges=False)["requests"]["total"]
    again = enrich()
    assert (again["clay_status"] == "failed").all()
    assert again["clay_error"].str.contains("retry_failed=True").all()
    assert emu.meters(charges=False)["requests"]["total"] == requests

    # Credits are back: retry_failed re-sends exactly those rows.
    emu.set_credits(data_credits_left=left)
    more = pd.concat(
        [df, pd.DataFrame({"Email": ["new.row@fresh.com"], "Id": [99]})], ignore_index=True
    )
    fixed = claynb.enrich(
        more, "enrich-person", {"email": "Email"}, client=client, progress=False, retry_failed=True
    )
    assert set(fixed["clay_status"]) <= {"enriched", "no_match"}
    per = emu.meters(charges=False)["per_routine"]["enrich-person"]
    assert per["items"] == 12 + 13 and per["not_run"] == 12  # the 12 once more, and the new row
    assert claynb.failures("enrich-person").empty
    assert claynb.failures().empty


def test_a_routine_clay_does_not_know_fails_without_dead_lettering(emulator: Any) -> None:
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    custom = claynb.Routine(
        "function:t_unknown", ("email",), ("x",), (claynb.Provider("p", 0.5, 1.0),)
    )
    out = claynb.enrich(
        pd.DataFrame({"Email": emails(3)}),
        custom,
        {"email": "Email"},
        client=client,
        progress=False,
    )
    assert (out["clay_status"] == "failed").all()
    assert out["clay_error"].str.contains("404").all()
    assert claynb.failures().empty


def test_a_wrong_key_fails_every_row_and_never_shows_the_key(emulator: Any) -> None:
    secret = "clay-key-that-must-never-be-shown-0123456789"
    client = claynb.ClayClient(api_key=secret, base_url=emulator.url)
    out = claynb.enrich(
        pd.DataFrame({"Email": emails(25)}),
        "enrich-person",
        {"email": "Email"},
        client=client,
        progress="text",
        batch_size=5,
    )
    assert (out["clay_status"] == "failed").all()
    assert out["clay_error"].str.contains("401").all()
    assert secret not in out.to_string() and secret not in out.to_html()
    assert claynb.failures().empty  # a refused key is not the rows' fault
    assert emulator.meters(charges=False)["data_credits_used"] == 0
