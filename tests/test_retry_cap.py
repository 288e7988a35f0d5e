"""A run-starting POST answered 5xx is sent once, in every tier, under both meanings.

Clay does not say whether a run started behind a server error (``start_failure``: nothing
started, or the run started and will charge). With no idempotency key, a re-send could pay
twice, so no layer re-sends it on its own (not the client's retries, not a tier's re-sends,
not an RQ retry of a queue job): the rows are ``unknown``. It used to be re-sent up to six
times. Every test counts the POSTs the emulator answered, and its meters prove no lead is
charged twice. (The one per-row cap on sends, ``RetryPolicy.max_sends_per_item``, now
applies to what Clay refuses with 429: see test_client_core.)
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb import Faults, RetryPolicy

FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.02}
VARIANTS = pytest.mark.parametrize("start_failure", ["not_started", "started"])


def run_posts(emu: Any) -> int:
    """Run-starting POSTs the emulator answered (every answer a 5xx: all are POSTs)."""
    return int(emu.meters(charges=False)["requests"]["total"])


def assert_charged_at_most_once(emu: Any, start_failure: str) -> None:
    meters = emu.meters(charges=True)
    keys = [c["inputs_key"] for c in meters["charges"]]
    assert len(keys) == len(set(keys))
    assert (meters["runs"]["total"] > 0) == (start_failure == "started")


def frame(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame({"Email": [f"cap.person{i}@capped{i}.com" for i in range(n)]})


@VARIANTS
def test_direct_never_re_sends_after_a_5xx(
    make_emulator: Any, tmp_path: Path, start_failure: str
) -> None:
    emu = make_emulator(faults=Faults(server_error=1.0), start_failure=start_failure)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url, retry=RetryPolicy(**FAST))
    out = claynb.enrich(
        frame(), "enrich-person", {"email": "Email"}, client=client, home=tmp_path, progress=False
    )
    assert (out["clay_status"] == "unknown").all()
    assert run_posts(emu) == 1  # one batch, one POST (it used to be six)
    assert out["clay_error"].str.contains("resend_unknown=True").all()
    assert_charged_at_most_once(emu, start_failure)


@VARIANTS
def test_the_event_tier_never_re_sends_after_a_5xx(
    make_emulator: Any, nats_url: str, start_failure: str
) -> None:
    from claynb.events import EventTier, ServiceSettings

    emu = make_emulator(faults=Faults(server_error=1.0), start_failure=start_failure)
    policy = RetryPolicy(max_attempts=2, max_sends_per_item=3, **FAST)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url, retry=policy)
    settings = ServiceSettings(linger_s=0.05, reconcile_timeout_s=0.5)
    with (
        pytest.warns(UserWarning, match="clay webhooks create"),  # no webhook: poll only
        EventTier(client, bus_url=nats_url, settings=settings) as tier,
    ):
        ids = tier.publish_leads(
            "enrich-person", [(f"l{i}", {"email": f"e{i}@x{i}.com"}) for i in range(4)]
        )
        assert tier.wait(ids, timeout=60)
        letters = tier.dead_letters()
    assert len(letters) == 4
    assert {letter.event.get("kind") for letter in letters} == {"outcome_unknown"}
    assert 1 <= run_posts(emu) <= 4  # each lead rode in one POST (four leads, one batch or more)
    assert_charged_at_most_once(emu, start_failure)


@VARIANTS
def test_the_queue_tier_never_re_sends_after_a_5xx_across_rq_retries(
    make_emulator: Any, redis_url: str, tmp_path: Path, start_failure: str
) -> None:
    """RQ may retry the job five times, but the batch rode in one POST whose fate is
    unknown: enrich reports the rows unknown (not failed, not hung)."""
    emu = make_emulator(faults=Faults(server_error=1.0), start_failure=start_failure)
    policy = RetryPolicy(max_attempts=2, max_sends_per_item=3, **FAST)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url, retry=policy)
    out = claynb.enrich(
        frame(),
        "enrich-person",
        {"email": "Email"},
        client=client,
        backend="queue",
        redis_url=redis_url,
        queue=f"cap-{uuid.uuid4().hex[:8]}",
        workers=1,
        retries=5,
        poll_interval=0.05,
        home=tmp_path,
        progress=False,
        timeout=60,
    )
    assert run_posts(emu) == 1
    assert (out["clay_status"] == "unknown").all()
    assert_charged_at_most_once(emu, start_failure)
