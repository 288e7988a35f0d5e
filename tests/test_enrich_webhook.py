"""The direct tier's outbound-webhook receiver: results taken when Clay says, polling as fallback."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pandas as pd
import pytest

import claynb
from claynb.direct import WebhookReceiver
from claynb.pipeline._journal import Journal
from claynb.wire._signatures import sign


def emails(n: int) -> list[str]:
    return [f"w{i}.x{i}@hook{i % 4}.com" for i in range(n)]


def statuses(emu: Any) -> dict[str, int]:
    return emu.meters(charges=False)["requests"]["by_status"]


def test_webhooks_wake_the_poller_so_each_run_is_read_once(make_emulator: Any) -> None:
    emu = make_emulator(run_latency_s=(0.1, 0.3))
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    with WebhookReceiver() as rx:
        hook = emu.create_webhook(rx.url)
        rx.configure(hook["id"], hook["signingSecret"])
        df = pd.DataFrame({"Email": emails(60)})
        # Fallback polling every 60 s: only the webhook can make this finish promptly.
        out = claynb.enrich(
            df,
            "enrich-person",
            {"email": "Email"},
            client=client,
            progress=False,
            webhook=rx,
            batch_size=20,
            poll_max_interval=60,
        )
        runs = emu.meters(charges=False)["runs"]["total"]
        assert runs == 3
        assert rx.received == 3 and rx.finished and rx.rejected == 0
    assert set(out["clay_status"]) <= {"enriched", "no_match"}
    by_status = statuses(emu)
    assert by_status.get("200") == runs  # one GET per run, made when the webhook came
    assert hook["signingSecret"] not in repr(rx)


@pytest.mark.parametrize(
    ("fault", "retries"),
    [("drop_webhook", "none"), ("fail_webhook", "none"), ("fail_webhook", "retried")],
)
def test_polling_takes_over_when_deliveries_are_lost(
    make_emulator: Any, fault: str, retries: str
) -> None:
    """Deliveries dropped, or every first attempt lost: with Clay's retries (a setting:
    not published) the second attempt wakes the poller, without them polling finds the
    runs. Either way every row is read, none paid twice."""
    emu = make_emulator(
        run_latency_s=0.05,
        faults=claynb.Faults(**{fault: 1.0}),
        webhook_retries=retries,
        webhook_backoff_s=0.05,
    )
    with WebhookReceiver() as rx:
        hook = emu.create_webhook(rx.url)
        rx.configure(hook["id"], hook["signingSecret"])
        out = claynb.enrich(
            pd.DataFrame({"Email": emails(30)}),
            "enrich-person",
            {"email": "Email"},
            client=emu.client(),
            progress=False,
            webhook=rx,
            batch_size=10,
            poll_max_interval=0.2,
        )
        if retries == "none":
            assert rx.received == 0
    assert set(out["clay_status"]) <= {"enriched", "no_match"}
    charges = [c["inputs_key"] for c in emu.meters(charges=True)["charges"]]
    assert len(charges) == len(set(charges))
    assert out["clay_data_credits"].sum() == emu.meters(charges=False)["data_credits_used"]
    assert set(out["clay_cost_source"]) == {"metered"}


def test_forged_and_test_deliveries(make_emulator: Any) -> None:
    emu = make_emulator()
    with WebhookReceiver() as rx:
        hook = emu.create_webhook(rx.url)
        rx.configure(hook["id"], hook["signingSecret"])
        body = b'{"webhookId":"x","createdAt":"now","data":{"routine_run_id":"run_forged"}}'
        forged = httpx.post(rx.url, content=body, headers={"X-Clay-Signature": sign("wrong", body)})
        assert forged.status_code == 401 and "run_forged" not in rx.finished
        emu.send_test_webhook(hook["id"])  # data: {} -> accepted, no run
        good = httpx.post(
            rx.url, content=body, headers={"X-Clay-Signature": sign(hook["signingSecret"], body)}
        )
        replay = httpx.post(
            rx.url, content=body, headers={"X-Clay-Signature": sign(hook["signingSecret"], body)}
        )
        assert good.status_code == replay.status_code == 200
        assert rx.finished == {"run_forged"} and rx.rejected == 1 and rx.received == 3


def _fresh_reference(make_emulator: Any, df: pd.DataFrame, home: Any) -> pd.DataFrame:
    emu = make_emulator()
    client = claynb.ClayClient(api_key=emu.api_key, base_url=emu.url)
    return claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, home=home
    )


def test_a_webhook_explains_sends_that_timed_out(make_emulator: Any, tmp_path: Any) -> None:
    """Clay has no idempotency key, but its run-finished webhook names runs whose POST
    answer was lost, and their results carry our item ids: no row is left unknown."""
    df = pd.DataFrame({"Email": emails(80)})
    ref = _fresh_reference(make_emulator, df, tmp_path / "ref")
    emu = make_emulator(run_latency_s=0.05, faults=claynb.Faults(timeout=0.3), slow_s=1.0, seed=3)
    client = claynb.ClayClient(
        api_key=emu.api_key,
        base_url=emu.url,
        timeout=claynb.Timeout(0.3, connect=5.0),
        retry=claynb.RetryPolicy(backoff_initial_s=0.01, backoff_max_s=0.05),
    )
    with WebhookReceiver() as rx:
        hook = emu.create_webhook(rx.url)
        rx.configure(hook["id"], hook["signingSecret"])
        out = claynb.enrich(
            df,
            "enrich-person",
            {"email": "Email"},
            client=client,
            progress=False,
            webhook=rx,
            batch_size=10,
            poll_max_interval=0.3,
        )
    charges = [c["inputs_key"] for c in emu.meters(charges=True)["charges"]]
    assert len(charges) == len(set(charges))
    with Journal.open() as journal:  # some sends did time out, and were adopted
        adopted = journal.read(
            lambda c: c.execute("SELECT COUNT(*) FROM deliveries WHERE checked = 1").fetchone()[0]
        )
    assert adopted > 0
    assert not (out["clay_status"] == "unknown").any()
    fields = [c for c in ref.columns if c.startswith("clay_")]
    pd.testing.assert_frame_equal(out[fields], ref[fields])


@pytest.mark.parametrize("backend", ["direct", "queue"])
def test_a_later_call_adopts_what_the_webhook_recorded(
    make_emulator: Any, backend: str, request: pytest.FixtureRequest
) -> None:
    """Every answer to a run's POST is lost (the run started): the rows come back unknown.
    The runs carry the receiver's webhook id (the queue tier's workers send it too), so
    their deliveries are recorded and a later call collects the rows, sending nothing."""
    if backend == "direct":  # the answer comes too late for the client
        faults, options = claynb.Faults(timeout=1.0), {"unknown_wait": 0}
    else:  # the connection drops after the run started; workers cannot shorten a timeout
        redis_url = request.getfixturevalue("redis_url")
        faults = claynb.Faults(drop_connection=1.0)
        options = {"backend": "queue", "redis_url": redis_url, "retries": 0}
    emu = make_emulator(run_latency_s=0.05, faults=faults, slow_s=1.0)
    client = claynb.ClayClient(
        api_key=emu.api_key, base_url=emu.url, timeout=claynb.Timeout(0.3, connect=5.0)
    )
    df = pd.DataFrame({"Email": emails(20)})
    with WebhookReceiver() as rx:
        hook = emu.create_webhook(rx.url)
        rx.configure(hook["id"], hook["signingSecret"])
        out = claynb.enrich(
            df,
            "enrich-person",
            {"email": "Email"},
            client=client,
            progress=False,
            webhook=rx,
            batch_size=10,
            **options,
        )
        assert (out["clay_status"] == "unknown").all()
        emu.set_faults(claynb.Faults())
        runs = emu.meters(charges=False)["runs"]["total"]
        assert runs == 2  # each batch was sent once, and Clay started it
        deadline = time.monotonic() + 60
        while len(rx.finished) < runs:
            assert time.monotonic() < deadline, "the runs' deliveries did not come"
            time.sleep(0.05)
    # The receiver recorded the deliveries under CLAYNB_HOME; this call, without a
    # webhook, finds the runs they name and collects them instead of reporting unknown.
    options.pop("unknown_wait", None)
    again = claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, **options
    )
    assert set(again["clay_status"]) <= {"enriched", "no_match"}
    assert emu.meters(charges=False)["runs"]["total"] == runs  # nothing sent again
    assert again["clay_data_credits"].sum() == emu.meters(charges=False)["data_credits_used"]
