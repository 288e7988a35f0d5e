"""One cap on the POSTs a row rides in, whatever layer retries: the client, the tier, RQ.

A lasting 5xx used to multiply: the client retried a send six times and the direct tier
sent the refused batch three times, so one row could cost 18 POSTs. Now the client's
retries and a tier's re-sends count against one number, ``RetryPolicy.max_sends_per_item``
(default: ``max_attempts``). Every test counts the POSTs the emulator answered: with every
answer a 5xx, nothing is ever started, so each request it saw is one send of the batch.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pandas as pd

import claynb
from claynb import Faults, RetryPolicy

FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.02}


def requests(emu: Any) -> int:
    return int(emu.meters(charges=False)["requests"]["total"])


def frame(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame({"Email": [f"cap.person{i}@capped{i}.com" for i in range(n)]})


def test_direct_sends_a_row_at_most_the_policys_cap(make_emulator: Any, tmp_path: Path) -> None:
    emu = make_emulator(faults=Faults(server_error=1.0))
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url, retry=RetryPolicy(**FAST))
    out = claynb.enrich(frame(), "enrich-person", {"email": "Email"}, client=client, home=tmp_path)
    assert (out["clay_status"] == "failed").all()
    assert requests(emu) == 6  # one batch, max_attempts POSTs in all (it used to be 18)
    assert out["clay_error"].str.contains("after 6 attempt").all()


def test_the_tier_resends_only_what_the_clients_retries_left(
    make_emulator: Any, tmp_path: Path
) -> None:
    emu = make_emulator(faults=Faults(server_error=1.0))
    policy = RetryPolicy(max_attempts=2, max_sends_per_item=5, **FAST)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url, retry=policy)
    out = claynb.enrich(frame(), "enrich-person", {"email": "Email"}, client=client, home=tmp_path)
    assert requests(emu) == 5  # 2 + 2 + 1: the last re-send only gets what is left
    assert (claynb.failures(home=tmp_path)["attempts"] == 5).all()
    assert out["clay_error"].str.contains("after 5 attempt").all()


def test_the_event_tier_holds_to_the_same_cap(make_emulator: Any, nats_url: str) -> None:
    from claynb.events import EventTier, ServiceSettings

    emu = make_emulator(faults=Faults(server_error=1.0))
    policy = RetryPolicy(max_attempts=2, max_sends_per_item=3, **FAST)
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url, retry=policy)
    settings = ServiceSettings(linger_s=0.05, reconcile_timeout_s=0.5)
    with EventTier(client, bus_url=nats_url, settings=settings) as tier:
        ids = tier.publish_leads(
            "enrich-person", [(f"l{i}", {"email": f"e{i}@x{i}.com"}) for i in range(4)]
        )
        assert tier.wait(ids, timeout=60)
        letters = tier.dead_letters()
    assert requests(emu) == 3
    assert len(letters) == 4 and all("failed 3 times" in letter.reason for letter in letters)


def test_the_queue_tier_holds_to_the_same_cap_across_rq_retries(
    make_emulator: Any, redis_url: str, tmp_path: Path
) -> None:
    """RQ may retry the job five times, but the batch's rows ride in three POSTs, then the
    job goes to the dead letters and enrich reports the rows failed (not hung, not unknown)."""
    emu = make_emulator(faults=Faults(server_error=1.0))
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
    )
    assert requests(emu) == 3
    assert (out["clay_status"] == "failed").all()
    assert out["clay_error"].str.contains("after 3 attempt").all()
    assert len(claynb.failures(home=tmp_path)) == len(out)
