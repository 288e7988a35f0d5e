"""claynb against a second, minimal Clay server written from the OpenAPI alone.

The emulator is claynb's own; :mod:`minimal_clay` is not, and knows nothing of claynb. What
passes here relies only on Clay's published contract: any routine id, costs that are
estimates (Clay reports none per item), a run-starting POST answered 5xx never sent again,
its rows ``unknown`` and collected when Clay's webhook names the run, and no request ever
sent to an /_emulator path.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from minimal_clay import MinimalClay, ServerError

import claynb
from claynb.direct import WebhookReceiver

ROUTINE = "function:t_0tq9xkz2mUa4"
COST = claynb.Cost(actions=1, data_credits=2)


@pytest.fixture
def clay() -> Iterator[MinimalClay]:
    with MinimalClay() as server:
        yield server


def client_for(clay: MinimalClay) -> claynb.ClayClient:
    return claynb.ClayClient(
        clay.api_key,
        base_url=clay.url,
        retry=claynb.RetryPolicy(backoff_initial_s=0.01, backoff_max_s=0.05),
    )


def leads(n: int) -> pd.DataFrame:
    return pd.DataFrame({"Email": [f"lead{i}@acme.com" for i in range(n)]})


def enrich(clay: MinimalClay, df: pd.DataFrame, **options: Any) -> pd.DataFrame:
    """The workspace routine on ``df`` through ``clay``, its worst case declared."""
    options.setdefault("cost", COST)
    return claynb.enrich(
        df, ROUTINE, {"email": "Email"}, client=client_for(clay), progress=False, **options
    )


def no_emulator_paths(clay: MinimalClay) -> bool:
    return not any("/_emulator" in path for _, path in clay.requests)


def test_any_routine_id_enriches_with_what_comes_back(clay: MinimalClay) -> None:
    df = pd.DataFrame({"Email": ["ada@acme.com", "grace@navy.mil", "ada@acme.com", "bad@x.co"]})
    out = enrich(clay, df, budget=claynb.Budget(data_credits=100))
    # Whatever the routine returned became clay_<field>, with no catalogue entry.
    assert out["clay_echo_email"].tolist()[:3] == ["ada@acme.com", "grace@navy.mil", "ada@acme.com"]
    assert out["clay_length"].tolist()[:3] == [12, 14, 12]
    assert out["clay_status"].tolist() == ["enriched", "enriched", "enriched", "failed"]
    # Clay reports no per-item cost: the figures are the declared worst case, and say so.
    assert out["clay_cost_source"].tolist() == ["estimated"] * 4
    assert out["clay_data_credits"].tolist() == [2.0, 2.0, 0.0, 0.0]  # a duplicate row shows 0
    assert sorted(clay.executed.values()) == [1, 1, 1]  # three distinct leads, each run once
    assert no_emulator_paths(clay)
    ledger = claynb.ledger()
    assert ledger.cost_source == "estimated" and "estimated" in repr(ledger)


def test_a_budget_on_a_routine_with_no_declared_cost_is_refused(clay: MinimalClay) -> None:
    with pytest.raises(claynb.ConfigError, match="no declared cost"):
        enrich(clay, leads(3), cost=None, budget=claynb.Budget(data_credits=10))
    assert clay.run_posts() == 0
    # Without a budget it runs, and says its cost is unknown rather than zero.
    out = enrich(clay, leads(3), cost=None)
    assert set(out["clay_cost_source"]) == {"unpriced"} and out["clay_data_credits"].isna().all()


@pytest.mark.parametrize("started", [False, True], ids=["not_started", "started"])
@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_to_a_run_post_is_never_re_sent_on_its_own(
    clay: MinimalClay, started: bool, status: int
) -> None:
    clay.fail_run_posts = [ServerError(status, started=started)]
    df = leads(5)
    out = enrich(clay, df)
    assert (out["clay_status"] == "unknown").all()
    assert clay.run_posts() == 1
    # A later call does not send them again either: it waits for Clay to name the run.
    again = enrich(clay, df)
    assert (again["clay_status"] == "unknown").all() and clay.run_posts() == 1
    assert max(clay.executed.values(), default=0) <= 1
    # Re-sending is an explicit choice.
    chosen = enrich(clay, df, resend_unknown=True)
    assert (chosen["clay_status"] == "enriched").all() and clay.run_posts() == 2


def test_unknown_rows_are_collected_when_the_webhook_names_the_run(clay: MinimalClay) -> None:
    """The run started behind a 502: Clay's webhook names it, its results carry our item
    ids, and the rows are collected, each lead run (and charged) once."""
    clay.fail_run_posts = [ServerError(502, started=True)]
    df = leads(20)
    with WebhookReceiver() as rx:
        hook = clay.create_webhook(rx.url)  # what `clay webhooks create URL` does
        rx.configure(hook["id"], hook["signingSecret"])
        out = enrich(clay, df, webhook=rx, batch_size=10, poll_max_interval=0.3)
    assert (out["clay_status"] == "enriched").all()
    assert out["clay_echo_email"].tolist() == df["Email"].tolist()
    assert clay.run_posts() == 2  # one per batch: the failed one was never re-sent
    assert sorted(clay.executed.values()) == [1] * 20
    assert no_emulator_paths(clay)


def test_the_event_tier_takes_its_webhook_from_the_environment(
    clay: MinimalClay, nats_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hook = clay.create_webhook("http://127.0.0.1:9/unreachable")  # made with Clay's CLI
    monkeypatch.setenv("CLAYNB_WEBHOOK_ID", hook["id"])
    monkeypatch.setenv("CLAYNB_WEBHOOK_SECRET", hook["signingSecret"])
    out = _events(clay, nats_url, tmp_path)
    assert (out["clay_status"] == "enriched").all()
    assert no_emulator_paths(clay)  # never asked a real host for an emulator's webhook
    assert set(out["clay_cost_source"]) == {"estimated"}


def test_the_event_tier_without_a_webhook_says_how_to_make_one(
    clay: MinimalClay, nats_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CLAYNB_WEBHOOK_ID", raising=False)
    monkeypatch.delenv("CLAYNB_WEBHOOK_SECRET", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _events(clay, nats_url, tmp_path)
    said = [str(w.message) for w in caught if "clay webhooks create" in str(w.message)]
    assert said and "CLAYNB_WEBHOOK_ID" in said[0]
    assert (out["clay_status"] == "enriched").all()  # found by polling
    assert no_emulator_paths(clay)


def _events(clay: MinimalClay, nats_url: str, tmp_path: Path) -> Any:
    return enrich(
        clay,
        leads(6),
        backend="events",
        home=tmp_path / "events",
        bus_url=nats_url,
        batch_size=3,
        reconcile_timeout_s=0.3,
        reconcile_interval_s=0.1,
        timeout=60,
    )
