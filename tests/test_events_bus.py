"""The FastStream bus on a real NATS JetStream and a real Redis Streams; Kafka as configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from _events_helpers import namespace

from claynb import ConfigError
from claynb.events._bus import ACK_WAIT_S, CONTACTS, DEAD_LETTERS, LEADS, Bus, bus_kind


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    from claynb.services.redis import redis_server

    with redis_server() as url:
        yield url


@pytest.fixture(params=["nats", "redis"])
def url(request: pytest.FixtureRequest, nats_url: str) -> str:
    return nats_url if request.param == "nats" else str(request.getfixturevalue("redis_url"))


async def _until(pred: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)


def test_events_published_before_a_consumer_starts_are_delivered_once(url: str) -> None:
    async def go() -> tuple[list[Any], list[Any]]:
        ns = namespace()
        async with Bus(url, ns) as producer:
            for i in range(5):
                await producer.publish(LEADS, {"i": i})
        first: list[Any] = []
        second: list[Any] = []

        async def on_first(e: dict[str, Any]) -> None:
            first.append(e["i"])

        async def on_second(e: dict[str, Any]) -> None:
            second.append(e["i"])

        consumer = Bus(url, ns)
        await consumer.subscribe(LEADS, on_first, "group-a")
        await consumer.start()
        await consumer.subscribe(LEADS, on_second, "group-b")  # after start, too
        async with Bus(url, ns) as producer:
            await producer.publish(LEADS, {"i": 5})
        await _until(lambda: len(first) >= 6 and len(second) >= 6)
        await asyncio.sleep(0.2)
        await consumer.stop()
        return first, second

    first, second = asyncio.run(go())
    assert sorted(first) == list(range(6)) and sorted(second) == list(range(6))


def test_namespaces_do_not_see_each_other(url: str) -> None:
    async def go() -> list[Any]:
        got: list[Any] = []
        mine, other = namespace(), namespace()

        async def on(e: dict[str, Any]) -> None:
            got.append(e)

        async with Bus(url, other) as bus:
            await bus.publish(CONTACTS, {"from": "other"})
        bus = Bus(url, mine)
        await bus.subscribe(CONTACTS, on, "g")
        await bus.start()
        await bus.publish(CONTACTS, {"from": "mine"})
        await _until(lambda: len(got) >= 1)
        await asyncio.sleep(0.2)
        await bus.stop()
        return got

    assert asyncio.run(go()) == [{"from": "mine"}]


def test_dead_letters_are_listed_in_order_and_removed_one_by_one(url: str) -> None:
    async def go() -> tuple[list[str], list[str]]:
        async with Bus(url, namespace()) as bus:
            for reason in ("a", "b", "c"):
                await bus.publish(DEAD_LETTERS, {"reason": reason, "lead": {"lead_id": reason}})
            letters = await bus.dead_letters()
            await bus.remove_dead_letter(letters[1].id)
            after = await bus.dead_letters()
        return [x.reason for x in letters], [x.reason for x in after]

    assert asyncio.run(go()) == (["a", "b", "c"], ["a", "c"])


def test_the_scheme_chooses_the_broker() -> None:
    assert bus_kind("nats://127.0.0.1:4222") == "nats"
    assert bus_kind("redis://localhost:6379/0") == "redis"
    assert bus_kind("kafka://broker:9092") == "kafka"
    with pytest.raises(ConfigError, match="nats://, redis:// or kafka://"):
        bus_kind("amqp://x")


def test_kafka_is_configuration_only() -> None:
    """No Kafka can run on these machines: it is configured, never started here."""
    try:
        bus = Bus("kafka://broker:9092", "ns")
    except ConfigError as exc:  # faststream[kafka] (aiokafka) not installed
        assert "untested" in str(exc)
        return
    assert bus.subject(LEADS) == "claynb.ns.leads"
    with pytest.raises(ConfigError, match="untested"):
        asyncio.run(bus.start())


def test_the_url_is_redacted_in_repr() -> None:
    bus = Bus("redis://:hunter2-secret@127.0.0.1:1/0?token=abcdef123456", "ns")
    assert "abcdef123456" not in repr(bus) and "hunter2" not in repr(bus)


def test_a_handler_at_work_past_the_nats_ack_wait_is_not_given_its_event_again(
    nats_url: str,
) -> None:
    """JetStream delivers an unacknowledged event again after :data:`ACK_WAIT_S`; a handler
    still working reports progress, so its event is not delivered again meanwhile."""

    async def go() -> list[Any]:
        got: list[Any] = []

        async def slow(e: dict[str, Any]) -> None:
            got.append(e["i"])
            await asyncio.sleep(2.5 * ACK_WAIT_S)

        bus = Bus(nats_url, namespace())
        await bus.subscribe(LEADS, slow, "slow", concurrency=4)
        await bus.start()
        await bus.publish(LEADS, {"i": 1})
        await _until(lambda: bool(got))
        await asyncio.sleep(3 * ACK_WAIT_S)  # the handler returned, and an ack wait passed
        await bus.stop()
        return got

    assert asyncio.run(go()) == [1]
