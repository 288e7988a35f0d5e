"""The same Clay answers read the same in every tier.

The direct, queue and event tiers reach Clay three different ways, but each row's
``clay_status`` must not depend on which one sent it. Each tier here enriches the same
frame against its own emulator, seeded and metered alike, so Clay gives every tier the
same item answers: matches on fields the client's catalogue does not list, misses, items
Clay did not run because its credits ran out, items Clay failed, and rows never sent.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb import Provider, Routine

#: The client's idea of a workspace routine: it lists ``industry``; the emulator answers with
#: a field of its own (``value``), as a routine changed in the workspace would.
ACME = Routine("acme-lookup", ("domain",), ("industry",), (Provider("acme-db", 0.6, 1.0),))
#: The same routine id as the workspace has it, needing an input the client does not send:
#: Clay fails every item ("missing input").
ACME_WANTS_MORE = Routine(
    "acme-lookup", ("domain", "linkedin_url"), ("industry",), (Provider("acme-db", 0.6, 1.0),)
)


def leads() -> pd.DataFrame:
    domains = [f"Company{i}.com" for i in range(30)]
    domains += ["company3.com", "https://www.company7.com/about", "not a domain"]
    return pd.DataFrame({"Domain": domains}, index=pd.RangeIndex(500, 500 + len(domains)))


def enrich_everywhere(
    make_emulator: Any,
    tmp_path: Path,
    redis_url: str,
    nats_url: str,
    workspace: Routine,
    data_credits_left: float | None = None,
    **settings: Any,
) -> dict[str, pd.DataFrame]:
    outs: dict[str, pd.DataFrame] = {}
    options: dict[str, dict[str, Any]] = {
        "direct": {"concurrency": 1},
        "queue": {"redis_url": redis_url, "queue": f"agree-{uuid.uuid4().hex[:8]}", "workers": 1},
        # Long enough for every lead to reach the service before its one run starts, even
        # on a loaded machine: split over two runs, the second meets the 402 in its place.
        "events": {"bus_url": nats_url, "linger_s": 15.0, "timeout": 180},
    }
    for backend, extra in options.items():
        emu = make_emulator(seed=5, routines={workspace.id: workspace}, **settings)
        if data_credits_left is not None:
            emu.set_credits(data_credits_left=data_credits_left)
        client = emu.client()  # it knows it talks to an emulator: costs are metered
        outs[backend] = claynb.enrich(
            leads(),
            ACME,
            {"domain": "Domain"},
            client=client,
            backend=backend,
            batch_size=100,  # one run: Clay runs its items in order, so meters agree too
            home=tmp_path / backend,
            progress=False,
            **extra,
        )
        assert outs[backend]["clay_data_credits"].sum() == emu.meters()["data_credits_used"]
    return outs


@pytest.mark.parametrize("credits_out", ["both", "402", "item_failures"])
def test_matches_misses_and_items_clay_did_not_run_read_the_same_everywhere(
    make_emulator: Any, tmp_path: Path, redis_url: str, nats_url: str, credits_out: str
) -> None:
    """However running out of credits shows (items failed with any wording, or left out of
    the results), the meters say which items were not run: ``over_budget`` in every tier."""
    outs = enrich_everywhere(
        make_emulator,
        tmp_path,
        redis_url,
        nats_url,
        ACME,
        data_credits_left=8,
        credits_out=credits_out,
    )
    direct = outs["direct"]["clay_status"]
    assert set(direct) == {"enriched", "no_match", "over_budget", "invalid_input"}
    assert outs["direct"]["clay_data_credits"].sum() == 8  # what Clay had, then it stopped
    sent = outs["direct"][direct != "invalid_input"]
    assert set(sent["clay_cost_source"].dropna()) == {"metered"}
    pd.testing.assert_series_equal(outs["queue"]["clay_status"], direct, obj="queue")
    pd.testing.assert_series_equal(
        outs["queue"]["clay_data_credits"], outs["direct"]["clay_data_credits"], obj="queue"
    )
    # The event tier's run holds the leads in the order they crossed the bus, not the
    # frame's, so which rows Clay ran before its credits ran out may differ: as many of
    # each status, and what Clay charged, still agree.
    events = outs["events"]
    assert sorted(events["clay_status"]) == sorted(direct)
    assert events["clay_data_credits"].sum() == outs["direct"]["clay_data_credits"].sum()
    assert (events["clay_status"] == "invalid_input").equals(direct == "invalid_input")


def test_items_clay_failed_read_the_same_everywhere(
    make_emulator: Any, tmp_path: Path, redis_url: str, nats_url: str
) -> None:
    outs = enrich_everywhere(make_emulator, tmp_path, redis_url, nats_url, ACME_WANTS_MORE)
    for backend, out in outs.items():
        sent = out[out["clay_status"] != "invalid_input"]
        assert (sent["clay_status"] == "failed").all(), backend
        assert sent["clay_error"].str.contains("Clay: missing input 'linkedin_url'").all(), backend
