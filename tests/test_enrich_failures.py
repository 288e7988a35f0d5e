"""The dead-letter list: failed rows kept with inputs, error, attempts; re-sent on request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

import claynb
from claynb._routines import DEFAULT_ROUTINES, run_item
from claynb.pipeline._cache import cache_put
from claynb.pipeline._journal import Journal
from claynb.pipeline._normalise import prepare
from claynb.pipeline._plan import plan_work
from claynb.pipeline._work import item_key


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


def test_planning_finds_the_frames_own_failed_and_unknown_rows(tmp_path: Path) -> None:
    """Planning reads the state file's dead-letter list and unknown outcomes whole and
    finds them among the frame's groups: this frame's rows are answered ``failed`` and
    ``unknown`` (a cached row stays cached), another frame's keys in the same file change
    nothing, and ``retry_failed`` / ``resend_unknown`` send them (forgetting only this
    frame's unknown outcome)."""
    routine = DEFAULT_ROUTINES["enrich-person"]
    df = pd.DataFrame({"Email": ["a@x.co", "b@x.co", "c@x.co", "d@x.co", "not an e-mail"]})
    prepared = prepare(df, routine, {"email": "Email"})
    keys = [k for k in prepared.keys if k is not None]  # groups 0 to 3
    others = [item_key(routine.id, {"email": f"o{i}@else.co"}) for i in range(2)]
    with Journal(tmp_path / "j.sqlite") as journal:
        journal.record_failures(routine.id, [(others[0], {}, "boom", 1), (keys[0], {}, "boom", 2)])
        journal.unknown(journal.intent(routine.id, "queue", {others[1]: {}, keys[1]: {}}), "lost")
        with journal.transaction() as conn:
            cache_put(
                conn, routine.id, [(keys[2], "enriched", {"full_name": "C"})], now=time.time()
            )

        plan = plan_work(prepared, journal)
        status = [None if s is None else str(s) for s in plan.answers.status.tolist()]
        assert status == ["failed", "unknown", "cached", None, "invalid_input"]
        assert "after 2 attempt(s): boom" in plan.answers.error[0]
        assert plan.to_send.groups.tolist() == [3]
        assert plan_work(prepared, journal, retry_failed=True).to_send.groups.tolist() == [0, 3]
        resent = plan_work(prepared, journal, resend_unknown=True)
        assert resent.to_send.groups.tolist() == [1, 3]
        assert list(journal.unknown_keys(routine.id)) == [others[1]]
