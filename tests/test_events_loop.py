"""The whole event loop (bus -> service -> emulator -> webhook -> receiver -> bus), for real.

Real NATS JetStream and real Redis Streams (both embedded), the emulator over loopback HTTP
with seeded webhook faults. Every check of money is against the emulator's own meters.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from claynb import Faults
from claynb.events._service import ServiceSettings
from claynb.events._tier import EventTier
from claynb.pipeline._budget import Budget
from claynb.wire._config import RetryPolicy


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    from claynb.services.redis import redis_server

    with redis_server() as url:
        yield url


@pytest.fixture(params=["nats", "redis"])
def bus_url(request: pytest.FixtureRequest, nats_url: str) -> str:
    if request.param == "nats":
        return nats_url
    return str(request.getfixturevalue("redis_url"))


def fast_settings(**overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "batch_size": 20,
        "linger_s": 0.05,
        "reconcile_timeout_s": 0.8,
        "reconcile_interval_s": 0.2,
    }
    values.update(overrides)
    return ServiceSettings(**values)


def leads(n: int, unique: int) -> list[tuple[str, dict[str, str]]]:
    return [(f"lead-{i}", {"email": f"person{i % unique}.smith@acme{i % 5}.com"}) for i in range(n)]


def fives(emu: Any) -> int:
    """Requests the emulator answered with a 5xx."""
    answered = emu.meters(charges=False)["requests"]["by_status"]
    return sum(n for code, n in answered.items() if code.startswith("5"))


def wait_landed(tier: EventTier, timeout: float = 30.0) -> None:
    """Until every run is landed: a run's contacts are published before the journal marks
    it landed (and the stats count it), so the last ones trail the contacts a little."""
    import time

    deadline = time.monotonic() + timeout
    while tier.service is not None and tier.service.pending_runs:
        assert time.monotonic() < deadline, "runs not landed"
        time.sleep(0.05)


def charged_keys(emu: Any) -> Counter[str]:
    return Counter(c["inputs_key"] for c in emu.meters()["charges"])


def test_exactly_once_under_dropped_duplicated_and_reordered_webhooks(
    make_emulator: Any, bus_url: str
) -> None:
    emu = make_emulator(
        run_latency_s=0.05,
        webhook_hold_s=0.3,
        faults=Faults(drop_webhook=0.3, duplicate_webhook=0.35, reorder_webhook=0.35),
        seed=7,
    )
    client = emu.client()
    batch = leads(150, unique=70)
    with EventTier(client, bus_url=bus_url, settings=fast_settings(batch_size=6)) as tier:
        ids = tier.publish_leads("enrich-person", batch)
        tier.publish_leads("enrich-person", batch[:30])  # the bus delivers some leads twice
        assert tier.wait(ids, timeout=30)
        wait_landed(tier)
        stats = tier.service.stats
        contacts = dict(tier.collector.contacts)
        assert tier.collector.duplicates == []  # one contact per lead, never two
        receiver_counts = tier.receiver.stats
    assert set(contacts) == set(ids)
    assert stats.duplicate_leads == 30
    # Every unique input was sent once and charged at most once (a miss is not charged).
    charges = charged_keys(emu)
    assert charges and max(charges.values()) == 1
    per_key = {c["item_key"] for c in contacts.values()}
    assert len(per_key) == 70
    assert emu.meters()["per_routine"]["enrich-person"]["items"] == 70
    # The contacts' costs add up to exactly what the emulator charged.
    meters = emu.meters()
    assert sum(c["cost"]["data_credits"] for c in contacts.values()) == meters["data_credits_used"]
    assert sum(c["cost"]["actions"] for c in contacts.values()) == meters["actions_used"]
    # The faults really happened, and both paths completed runs.
    faults = Counter(d.get("fault") for d in meters["deliveries"])
    assert faults["dropped"] > 0 and faults["duplicate"] > 0 and faults["reordered"] > 0
    assert stats.runs_by_reconciler > 0 and stats.runs_by_webhook > 0
    assert stats.runs_by_webhook + stats.runs_by_reconciler == stats.runs_started
    assert receiver_counts.get("duplicate", 0) > 0
    assert {c["status"] for c in contacts.values()} <= {"enriched", "no_match"}


def test_the_breaker_dead_letters_what_the_budget_cannot_pay_and_replay_finishes_it(
    make_emulator: Any, bus_url: str
) -> None:
    emu = make_emulator(run_latency_s=0.05)
    client = emu.client()
    budget = Budget(data_credits=12)
    batch = leads(60, unique=60)
    with EventTier(
        client, budget=budget, bus_url=bus_url, settings=fast_settings(batch_size=5)
    ) as tier:
        ids = tier.publish_leads("enrich-person", batch)
        assert tier.wait(ids, timeout=30)
        assert tier.breaker_state == "open"
        letters = tier.dead_letters()
        assert letters and {letter.event["kind"] for letter in letters} == {"budget"}
        assert all("budget exhausted" in letter.reason for letter in letters)
        # Never past the cap, not by one unit: by the emulator's meters and the budget's.
        assert emu.meters()["data_credits_used"] <= 12 and budget.spent.data_credits <= 12
        enriched_before = len(tier.collector.contacts)
        assert enriched_before + len(letters) == 60

        tier.raise_budget(data_credits=500)
        replayed = tier.replay_dead_letters()
        assert len(replayed) == len(letters)
        assert tier.wait(ids, timeout=30)
        assert tier.breaker_state == "closed"
        assert tier.dead_letters() == []
        assert set(tier.collector.contacts) == set(ids) and tier.collector.duplicates == []
    charges = charged_keys(emu)
    assert max(charges.values()) == 1
    assert emu.meters()["per_routine"]["enrich-person"]["items"] == 60
    assert budget.spent.data_credits == emu.meters()["data_credits_used"]


@pytest.mark.parametrize("start_failure", ["not_started", "started"])
def test_a_send_answered_5xx_is_never_re_sent_and_collected_if_clay_names_the_run(
    make_emulator: Any, nats_url: str, start_failure: str
) -> None:
    """Clay does not say whether a run started behind a 5xx. The send is held for
    ``unknown_wait_s``: if the run started, its webhook names it and its results carry the
    held items' ids, so the leads get their contacts, charged once; if not, nothing names it
    and they go to the dead letters as ``outcome_unknown``. Never sent twice either way."""
    emu = make_emulator(
        run_latency_s=0.05, faults=Faults(server_error=1.0), start_failure=start_failure
    )
    client = emu.client(retry=RetryPolicy.never())
    # The eight leads fill one batch (sent when full, not when a short linger runs out):
    # on a loaded machine a linger could cut them in two, and a second batch sent after
    # the outage ends would be enriched, not held.
    settings = fast_settings(batch_size=8, linger_s=30.0, max_attempts=3, unknown_wait_s=3.0)
    with EventTier(client, bus_url=nats_url, settings=settings) as tier:
        ids = tier.publish_leads("enrich-person", leads(8, unique=8))
        deadline = time.monotonic() + 30
        while not fives(emu) and time.monotonic() < deadline:
            time.sleep(0.02)
        emu.set_faults(Faults())  # the outage is over: the run's results can be read
        assert tier.wait(ids, timeout=60)
        letters = tier.dead_letters()
        stats = tier.service.stats
        contacts = dict(tier.collector.contacts)
    assert 1 <= fives(emu) <= 8  # each lead rode in one POST
    assert stats.send_failures == 0  # an unknown outcome is not a refusal to send again
    assert max(charged_keys(emu).values(), default=0) <= 1
    if start_failure == "started":
        assert not letters and set(contacts) == set(ids) and stats.runs_adopted >= 1
        assert (
            sum(c["cost"]["data_credits"] for c in contacts.values())
            == (emu.meters()["data_credits_used"])
        )
    else:
        assert len(letters) == 8 and emu.meters()["charge_count"] == 0
        assert {letter.event["kind"] for letter in letters} == {"outcome_unknown"}


def test_a_402_from_clay_opens_the_breaker_and_parks_the_leads(
    make_emulator: Any, nats_url: str
) -> None:
    emu = make_emulator(run_latency_s=0)
    emu.set_credits(actions_left=0, data_credits_left=0)
    client = emu.client()
    with EventTier(client, bus_url=nats_url, settings=fast_settings()) as tier:
        ids = tier.publish_leads("enrich-person", leads(5, unique=5))
        assert tier.wait(ids, timeout=30)
        assert tier.breaker_state == "open"
        assert {letter.event["kind"] for letter in tier.dead_letters()} == {"credits_exhausted"}
        emu.top_up(actions=100, data_credits=100)
        tier.replay_dead_letters()
        assert tier.wait(ids, timeout=30)
        assert set(tier.collector.contacts) == set(ids)


def test_invalid_and_unknown_leads_are_answered_without_spending(
    make_emulator: Any, nats_url: str, claynb_home: Any
) -> None:
    emu = make_emulator(run_latency_s=0)
    client = emu.client()
    with EventTier(client, bus_url=nats_url, settings=fast_settings()) as tier:
        tier.publish_leads("enrich-person", [("bad", {"email": "not-an-email"})])
        tier.publish_leads("no-such-routine", [("lost", {"email": "a.b@acme.com"})])
        assert tier.wait(["bad", "lost"], timeout=60)
        assert tier.collector.contacts["bad"]["status"] == "invalid_input"
        assert "unknown routine" in tier.collector.dead["lost"]["reason"]
        assert list((claynb_home / "events").glob(f"{tier.namespace}.sqlite*"))
    assert emu.meters()["requests"]["total"] == 0
    assert not list((claynb_home / "events").glob("*.sqlite*"))  # the tier removed its own claims


def test_without_any_webhook_the_reconciler_alone_finishes_every_run(
    make_emulator: Any, nats_url: str
) -> None:
    """Against real Clay with no registered webhook, polling is the whole story."""
    emu = make_emulator(run_latency_s=0.05)
    client = emu.client()
    with EventTier(client, bus_url=nats_url, webhook={}, settings=fast_settings()) as tier:
        ids = tier.publish_leads(
            "enrich-company", [(f"c{i}", {"domain": f"firm{i}.com"}) for i in range(12)]
        )
        assert tier.wait(ids, timeout=20)
        wait_landed(tier)
        assert tier.service.stats.runs_by_webhook == 0
        assert tier.service.stats.runs_by_reconciler == tier.service.stats.runs_started
    assert max(charged_keys(emu).values()) == 1


def test_no_secret_reaches_a_log_a_repr_or_an_event(
    make_emulator: Any, nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from claynb._secrets import known_secrets

    caplog.set_level(logging.DEBUG)
    emu = make_emulator(run_latency_s=0.02, faults=Faults(duplicate_webhook=0.5))
    client = emu.client()
    with EventTier(client, bus_url=nats_url, settings=fast_settings()) as tier:
        ids = tier.publish_leads("enrich-person", leads(10, unique=10))
        assert tier.wait(ids, timeout=20)
        webhook_secret = tier.webhook["signingSecret"] if tier.webhook else ""
        shown = " ".join(
            [
                repr(tier),
                repr(tier.receiver),
                repr(tier.receiver_settings),
                repr(tier.bus),
                str(tier.collector.contacts),
                str(tier.service.stats),
                caplog.text,
            ]
        )
    secrets = {webhook_secret, tier.callback_secret, emu.api_key}
    assert secrets <= known_secrets()  # registered for redaction everywhere
    assert all(s and s not in shown for s in secrets)


def test_a_run_clay_no_longer_knows_is_parked_as_unknown_not_resent(
    make_emulator: Any, nats_url: str
) -> None:
    """A run adopted from the journal that Clay answers 404 for: its leads may have been
    charged, so they go to the dead letters as outcome_unknown and are never sent again."""
    from types import SimpleNamespace

    from claynb.pipeline._work import item_key

    emu = make_emulator(run_latency_s=0)
    client = emu.client()
    inputs = {"email": "lost.run@acme.com"}
    key = item_key("enrich-person", inputs)
    with EventTier(client, bus_url=nats_url, settings=fast_settings()) as tier:
        tier.adopt_runs(
            "enrich-person", [SimpleNamespace(run_id="run_gone", inputs={key: inputs}, batch=None)]
        )
        tier.publish_leads("enrich-person", [("L-lost", inputs)])
        assert tier.wait(["L-lost"], timeout=60)
        letter = tier.collector.dead["L-lost"]
        assert tier.replay_dead_letters() == []  # outcome_unknown is replayed only on purpose
        assert "L-lost" in tier.collector.dead and len(tier.dead_letters()) == 1
    assert letter["kind"] == "outcome_unknown" and "run_gone" in letter["reason"]
    assert emu.meters()["per_routine"].get("enrich-person", {}).get("items", 0) == 0


def test_leads_of_a_send_that_timed_out_get_their_contacts_when_the_webhook_names_the_run(
    make_emulator: Any, nats_url: str, tmp_path: Any
) -> None:
    """Connections dropped after the POST started its run: those leads are parked
    outcome_unknown, then collected from the run Clay's webhook names; none sent twice."""
    import time

    from claynb.pipeline._journal import Journal

    emu = make_emulator(run_latency_s=0.2, faults=Faults(drop_connection=0.3), seed=3)
    client = emu.client()
    batch = leads(120, unique=120)
    with (
        Journal.open(tmp_path) as journal,
        EventTier(
            client, bus_url=nats_url, settings=fast_settings(batch_size=10), journal=journal
        ) as tier,
    ):
        ids = tier.publish_leads("enrich-person", batch)
        deadline = time.monotonic() + 60
        while not set(ids) <= set(tier.collector.contacts):
            assert time.monotonic() < deadline, sorted(set(ids) - set(tier.collector.contacts))
            time.sleep(0.1)
        # Some sends did time out: held for the webhook and adopted, or parked first.
        explained = tier.service.stats.runs_adopted + tier.service.stats.dead_lettered
        contacts = dict(tier.collector.contacts)
    assert explained > 0
    assert set(contacts) == set(ids)
    charges = charged_keys(emu)
    assert charges and max(charges.values()) == 1
    assert {c["item_key"] for c in contacts.values()} >= set(charges)


def test_healthz_says_unhealthy_while_the_reconciler_cannot_land_runs(
    make_emulator: Any, nats_url: str, tmp_path: Any
) -> None:
    """The journal closed under the service (a real fault: every landing fails): the
    reconciler keeps going, logging and backing off, and /healthz answers 503 saying why."""
    import time

    import httpx

    from claynb.pipeline._journal import Journal

    emu = make_emulator(run_latency_s=0.2, faults=Faults(drop_webhook=1.0))
    client = emu.client()
    journal = Journal.open(tmp_path)
    settings = fast_settings(reconcile_interval_s=0.05, unhealthy_after=2)
    with EventTier(client, bus_url=nats_url, settings=settings, journal=journal) as tier:
        assert tier.receiver is not None and tier.service is not None
        health = f"{tier.receiver.url}/healthz"
        assert httpx.get(health, timeout=10).status_code == 200
        tier.publish_leads("enrich-person", leads(5, unique=5))
        deadline = time.monotonic() + 30
        while tier.service.stats.runs_started < 1:
            assert time.monotonic() < deadline, "no run started"
            time.sleep(0.05)
        journal.close()
        while (answer := httpx.get(health, timeout=10)).status_code != 503:
            assert time.monotonic() < deadline, "healthz never said unhealthy"
            time.sleep(0.1)
        assert "reconciler failed" in answer.json()["problems"][0]
        assert tier.service.stats.reconcile_errors >= 2
        assert not tier.service._reconcile_task.done()  # it survives, and will try again
