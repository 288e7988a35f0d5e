"""claynb's one webhook receiver, hardened, as both tiers serve it (over real HTTP).

Every test runs against the direct tier's ``claynb.WebhookReceiver`` and the event tier's
receiver (publishing to a real NATS JetStream): a body over the cap answered 413 before it
is read, an unsigned delivery 401 before it is read, the signature checked before the body
is parsed (only ``sha256=<hex>``), malformed run ids 400 (never 500), senders too slow
with their headers or their body cut off while an honest one is answered, and the memory
of a receiver process flat under 40 concurrent 10 MB posts. Deadlines here are a second or
two, several times what the honest senders take; no test measures a duration.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from _events_helpers import namespace, webhook_body
from _receiver_helpers import (
    SERVE_SCRIPTS,
    RawSender,
    chunk,
    peak_rss,
    post,
    receiver_process,
)

from claynb.direct import WebhookReceiver
from claynb.events._dedupe import SqliteDedupeStore
from claynb.events._receiver import ReceiverSettings
from claynb.events._server import ReceiverServer
from claynb.services._webhooks import DEFAULT_MAX_BODY_BYTES, ReceiverLimits
from claynb.wire._signatures import sign

SECRET = "whsec_hardening_test_secret_0123456789"
WELL_FORMED = "sha256=" + "0" * 64  # the right shape, the wrong digest


@dataclass
class Served:
    """A running receiver of either tier, as the tests see it."""

    url: str
    counts: Callable[[], dict[str, int]]

    def deliver(self, body: bytes, signature: str | None = None) -> httpx.Response:
        headers = {} if signature is None else {"X-Clay-Signature": signature}
        return httpx.post(self.url, content=body, headers=headers, timeout=30)


Serve = Callable[..., Served]


@pytest.fixture(params=["direct", "events"])
def serve(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Serve]:
    """Start a receiver of the parametrised tier with the limits given; stopped after."""
    stops: list[Callable[[], None]] = []

    def start(**limits: Any) -> Served:
        if request.param == "direct":
            rx = WebhookReceiver(signing_secret=SECRET, **limits).start()
            stops.append(rx.stop)
            return Served(rx.url, lambda: dict(rx.stats.counts))
        settings = ReceiverSettings(signing_secrets={"wh_test": SECRET}, **limits)
        store = SqliteDedupeStore(tmp_path / f"dedupe-{len(stops)}.sqlite")
        nats_url = request.getfixturevalue("nats_url")
        server = ReceiverServer(settings, nats_url, namespace(), store=store).start()
        stops.append(server.stop)
        return Served(server.webhook_url, lambda: server.stats)

    yield start
    for stop in stops:
        stop()


def signed(body: bytes) -> dict[str, str]:
    return {"X-Clay-Signature": sign(SECRET, body)}


# --- the cap ----------------------------------------------------------------------------


def test_a_declared_length_over_the_cap_is_413_before_the_body_is_sent(serve: Serve) -> None:
    served = serve()
    with RawSender(served.url) as sender:
        sender.send(sender.head({"Content-Length": "10000000", **signed(b"anything")}))
        answer = sender.answer()  # no byte of the body has left this side
        assert (answer.status, answer.headers.get("connection")) == (413, "close")
        assert sender.closed_by_receiver()
    assert served.counts().get("too_large") == 1


def test_a_sender_expecting_100_continue_is_refused_without_it(serve: Serve) -> None:
    served = serve()
    with RawSender(served.url) as sender:
        head = {"Content-Length": "10000000", "Expect": "100-continue", "X-Clay-Signature": ""}
        sender.send(sender.head(head))
        assert sender.answer().status == 413  # the first answer, not "100 Continue"


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_cap(serve: Serve) -> None:
    """No Content-Length: the body is counted as it comes, and the sender is answered
    without the receiver waiting for the rest of it (which never comes here)."""
    served = serve()
    piece = b"x" * 16384
    with RawSender(served.url) as sender:
        sender.send(sender.head({"X-Clay-Signature": WELL_FORMED}, chunked=True))
        for _ in range(DEFAULT_MAX_BODY_BYTES // len(piece) + 1):
            sender.send(chunk(piece))
        answer = sender.answer()
    assert answer.status == 413 and json.loads(answer.body)["status"] == "too_large"


def test_a_body_at_the_cap_is_read(serve: Serve) -> None:
    served = serve(max_body_bytes=4096)
    start = webhook_body("run_at_cap")[:-1] + b', "pad": "'
    body = start + b"x" * (4096 - len(start) - 2) + b'"}'
    assert len(body) == 4096
    assert served.deliver(body, sign(SECRET, body)).json()["status"] == "accepted"
    over = body[:-2] + b'x"}'
    assert served.deliver(over, sign(SECRET, over)).status_code == 413


# --- the signature, before anything else ------------------------------------------------


def test_an_unsigned_delivery_is_401_before_its_body_is_read(serve: Serve) -> None:
    served = serve()
    for header in ({}, {"X-Clay-Signature": "md5=abc"}):
        with RawSender(served.url) as sender:
            sender.send(sender.head({"Content-Length": "5000", **header}))
            answer = sender.answer()  # the 5,000 bytes were never sent
            assert (answer.status, answer.headers.get("connection")) == (401, "close")
    assert served.counts() == {"unsigned": 1, "forged": 1}


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": {"routine_run_id": ' + b"[" * 100_000,
        b"not json at all",
        b'{"data": {"routine_run_id": ["run_1"]}}',
    ],
    ids=["deep", "not-json", "list-id"],
)
def test_the_signature_is_checked_before_the_body_is_parsed(serve: Serve, body: bytes) -> None:
    """Refused for its signature (401), whatever the body would have parsed as."""
    served = serve()
    bare = sign(SECRET, body).removeprefix("sha256=")  # the right digest, without sha256=
    for signature in (sign("whsec_not_the_secret_at_all", body), bare, "sha256=" + bare[:-1]):
        assert served.deliver(body, signature).status_code == 401
    assert "malformed" not in served.counts()


def test_only_sha256_hex_of_the_exact_body_is_accepted(serve: Serve) -> None:
    served = serve()
    body = webhook_body("run_exact")
    upper = "SHA256=" + sign(SECRET, body).removeprefix("sha256=").upper()
    assert served.deliver(body, upper).json()["status"] == "accepted"
    assert served.deliver(body + b" ", sign(SECRET, body)).status_code == 401


# --- malformed ids: 400, never 500 ------------------------------------------------------

MALFORMED_IDS: list[Any] = [
    ["run_1"],
    {"id": "run_1"},
    12345,
    1.5,
    True,
    None,
    "",
    "r" * 201,
    "run\n1",
]


def nested(depth: int) -> bytes:
    return b'{"data": {"routine_run_id": ' + b"[" * depth + b"]" * depth + b"}}"


def test_malformed_run_ids_are_400_and_the_receiver_goes_on(serve: Serve) -> None:
    served = serve(max_body_bytes=1_000_000)  # room for 100,000 levels of nesting
    bodies = [json.dumps({"data": {"routine_run_id": rid}}).encode() for rid in MALFORMED_IDS]
    bodies += [nested(100_000), b'{"data": {"routine_run_id": ' + b"{" * 100_000]
    bodies += [b'{"data": {"other": "x"}}', b'{"data": "run_1"}', b"[]", b"\xff\xfe"]
    for body in bodies:
        answer = served.deliver(body, sign(SECRET, body))
        assert (answer.status_code, answer.json()["status"]) == (400, "malformed"), body[:60]
    good = webhook_body("run_after_all_that")
    assert served.deliver(good, sign(SECRET, good)).json()["status"] == "accepted"
    assert served.counts() == {"malformed": len(bodies), "accepted": 1}


def test_deep_nesting_under_the_default_cap_is_400(serve: Serve) -> None:
    served = serve()
    body = b'{"data": {"routine_run_id": ' + b"[" * (DEFAULT_MAX_BODY_BYTES - 100)
    assert served.deliver(body, sign(SECRET, body)).status_code == 400


# --- slow senders -----------------------------------------------------------------------


def test_a_sender_trickling_its_headers_is_cut_off(serve: Serve) -> None:
    served = serve(head_timeout_s=1.0)
    with RawSender(served.url) as sender:
        sender.send(b"POST / HTTP/1.1\r\n")
        endless = b"X-Slow: " + b"z" * 5000  # 5,000 bytes, one every 0.1 s: 500 s
        assert not sender.trickle(endless, every_s=0.1), "the slow sender was never cut off"
        assert sender.closed_by_receiver()


def test_a_sender_trickling_its_body_is_answered_408(serve: Serve) -> None:
    served = serve(body_timeout_s=1.0)
    with RawSender(served.url) as sender:
        sender.send(sender.head({"Content-Length": "5000", "X-Clay-Signature": WELL_FORMED}))
        assert not sender.trickle(b"x" * 5000, every_s=0.1), "the slow body was never cut off"
        answer = sender.answer()
        assert (answer.status, answer.headers.get("connection")) == (408, "close")
        assert sender.closed_by_receiver()
    assert served.counts() == {"too_slow": 1}


def test_an_honest_sender_pausing_within_the_deadlines_is_answered(serve: Serve) -> None:
    """Head and body each in three pieces, 0.1 s apart: well inside 2 s deadlines."""
    served = serve(head_timeout_s=2.0, body_timeout_s=2.0)
    body = webhook_body("run_honest")
    with RawSender(served.url) as sender:
        head = sender.head({"Content-Length": str(len(body)), **signed(body)})
        for piece in (head[:10], head[10:40], head[40:]):
            sender.trickle(piece[:-1], every_s=0.1 / max(len(piece), 1))
            sender.send(piece[-1:])
        sender.send(body[:20])
        assert sender.trickle(body[20:23], every_s=0.05)
        sender.send(body[23:])
        answer = sender.answer()
    assert (answer.status, json.loads(answer.body)["status"]) == (200, "accepted")


def test_a_kept_alive_connection_is_timed_again_for_its_next_request(serve: Serve) -> None:
    served = serve(head_timeout_s=1.0)
    body = webhook_body("run_kept_alive")
    with RawSender(served.url) as sender:
        sender.send(sender.head({"Content-Length": str(len(body)), **signed(body)}) + body)
        assert sender.answer().status == 200
        assert not sender.trickle(b"POST / HTTP/1.1\r\nX-Slow: " + b"z" * 5000, every_s=0.1)


def test_limits_must_be_positive() -> None:
    for bad in ({"max_body_bytes": 0}, {"head_timeout_s": 0}, {"body_timeout_s": -1}):
        with pytest.raises(ValueError):
            ReceiverLimits(**bad)
        with pytest.raises(ValueError):
            WebhookReceiver(**bad)
        with pytest.raises(ValueError):
            ReceiverSettings(**bad)


# --- memory, in a process of its own ----------------------------------------------------

TEN_MB = b"x" * 10_000_000
#: What 40 concurrent 10 MB posts may add to a receiver process (a reader of whole bodies
#: adds hundreds of MB; ours holds at most the cap per request).
RSS_GROWTH_LIMIT = 24 * 2**20


def ten_mb_in_pieces() -> Iterator[bytes]:
    piece = b"x" * 65536
    for _ in range(len(TEN_MB) // len(piece)):
        yield piece


@pytest.mark.parametrize("kind", ["direct", "events"])
def test_memory_stays_flat_under_40_concurrent_10mb_unsigned_posts(
    kind: str, request: pytest.FixtureRequest
) -> None:
    bus = [request.getfixturevalue("nats_url")] if kind == "events" else []
    with receiver_process(SERVE_SCRIPTS[kind], SECRET, *bus) as receiver:
        process = psutil.Process(receiver.pid)
        for _ in range(3):  # the first requests load what every later one uses
            post(receiver.url, b"{}", {})
        before = process.memory_info().rss
        with ThreadPoolExecutor(40) as pool:
            declared = list(pool.map(lambda _: post(receiver.url, TEN_MB, {}), range(40)))
            streamed = list(
                pool.map(lambda _: post(receiver.url, ten_mb_in_pieces(), {}), range(40))
            )
            shaped = {"X-Clay-Signature": WELL_FORMED}  # read up to the cap, then refused
            capped = list(
                pool.map(lambda _: post(receiver.url, ten_mb_in_pieces(), shaped), range(40))
            )
        after = process.memory_info().rss
        peak = peak_rss(receiver.pid)
    assert set(declared) == {413} and set(streamed) == {401} and set(capped) == {413}
    assert after - before < RSS_GROWTH_LIMIT, f"grew {(after - before) / 2**20:.1f} MB"
    if peak is not None:  # flat all along, not only once it was over
        assert peak - before < RSS_GROWTH_LIMIT, f"peaked {(peak - before) / 2**20:.1f} MB up"
