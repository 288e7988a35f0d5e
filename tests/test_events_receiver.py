"""The webhook receiver over real HTTP, publishing to a real NATS JetStream (and Redis).

Forged, unsigned, replayed, oversized and malformed deliveries; HTTP API column callbacks;
a property-based fuzz that no input makes it answer 5xx; secrets never in a repr or a log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _events_helpers import drain, namespace, webhook_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claynb.events._bus import RUNS_FINISHED, TABLE_ROWS
from claynb.events._dedupe import RedisDedupeStore, SqliteDedupeStore
from claynb.events._receiver import ReceiverSettings
from claynb.events._server import ReceiverServer
from claynb.services.nats import NatsServer
from claynb.wire._signatures import sign

SECRET = "whsec_receiver_test_secret_0123456789"
CALLBACK = "cb_shared_secret_abcdef0123456789"


@pytest.fixture
def receiver(nats_url: str, tmp_path: Path) -> Iterator[ReceiverServer]:
    settings = ReceiverSettings(
        signing_secrets={"wh_test": SECRET}, callback_secret=CALLBACK, max_body_bytes=4096
    )
    store = SqliteDedupeStore(tmp_path / "dedupe.sqlite")
    with ReceiverServer(settings, nats_url, namespace(), store=store) as server:
        yield server


def post_webhook(server: ReceiverServer, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["X-Clay-Signature"] = signature
    return httpx.post(server.webhook_url, content=body, headers=headers)


def test_a_signed_delivery_is_accepted_and_published(
    receiver: ReceiverServer, nats_url: str
) -> None:
    body = webhook_body("run_abc123")
    answer = post_webhook(receiver, body, sign(SECRET, body))
    assert answer.status_code == 200 and answer.json()["status"] == "accepted"
    events = drain(nats_url, receiver.namespace, RUNS_FINISHED, expect=1)
    assert [e["routine_run_id"] for e in events] == ["run_abc123"]
    assert events[0]["webhook_id"] == "wh_test"


def test_a_replay_is_acknowledged_and_ignored(receiver: ReceiverServer, nats_url: str) -> None:
    body = webhook_body("run_replayed")
    first = post_webhook(receiver, body, sign(SECRET, body))
    again = [post_webhook(receiver, body, sign(SECRET, body)) for _ in range(3)]
    assert first.json()["status"] == "accepted"
    assert {(a.status_code, a.json()["status"]) for a in again} == {(200, "duplicate")}
    assert len(drain(nats_url, receiver.namespace, RUNS_FINISHED, expect=1)) == 1


def test_replays_stay_ignored_after_a_receiver_restart(nats_url: str, tmp_path: Path) -> None:
    """De-duplication is durable: a new receiver process on the same store still refuses."""
    settings = ReceiverSettings(signing_secrets=SECRET)
    body = webhook_body("run_durable")
    ns = namespace()
    for expected in ("accepted", "duplicate"):
        store = SqliteDedupeStore(tmp_path / "dedupe.sqlite")
        with ReceiverServer(settings, nats_url, ns, store=store) as server:
            assert post_webhook(server, body, sign(SECRET, body)).json()["status"] == expected
        store.close()


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=",
        "sha256=" + "0" * 64,
        "md5=abc",
        "sha256=zz" + "0" * 62,
        "garbage",
    ],
)
def test_forged_and_unsigned_deliveries_are_401(
    receiver: ReceiverServer, signature: str | None
) -> None:
    body = webhook_body("run_forged")
    assert post_webhook(receiver, body, signature).status_code == 401
    assert "accepted" not in receiver.stats


def test_a_body_signed_with_another_secret_or_altered_is_401(receiver: ReceiverServer) -> None:
    body = webhook_body("run_x")
    assert (
        post_webhook(receiver, body, sign("whsec_someone_else_entirely", body)).status_code == 401
    )
    altered = body.replace(b"run_x", b"run_y")
    assert post_webhook(receiver, altered, sign(SECRET, body)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"data": []}',
        b'{"webhookId": "x"}',
        b'{"data": {"routine_run_id": ""}}',
        b'{"data": {"routine_run_id": {"a": 1}}}',
        b'{"data": {"routine_run_id": true}}',
        b"\xff\xfe",
    ],
)
def test_signed_but_malformed_deliveries_are_400(receiver: ReceiverServer, body: bytes) -> None:
    assert post_webhook(receiver, body, sign(SECRET, body)).status_code == 400


def test_a_delivery_the_bus_cannot_take_is_503_and_not_claimed(tmp_path: Path) -> None:
    """The bus goes down under a running receiver: Clay is told to retry (503), and the
    claim is released, so the retry is not taken for a replay (another 503, not 200)."""
    store = SqliteDedupeStore(tmp_path / "dedupe.sqlite")
    settings = ReceiverSettings(signing_secrets={"wh_test": SECRET})
    with NatsServer() as bus, ReceiverServer(settings, bus.url, namespace(), store=store) as rx:
        before = webhook_body("run_before_the_outage")
        assert post_webhook(rx, before, sign(SECRET, before)).json()["status"] == "accepted"
        bus.stop()
        body = webhook_body("run_during_the_outage")
        for _ in range(2):
            answer = httpx.post(
                rx.webhook_url,
                content=body,
                headers={"X-Clay-Signature": sign(SECRET, body)},
                timeout=60,  # the publish waits for JetStream's acknowledgement before failing
            )
            assert (answer.status_code, answer.json()["status"]) == (503, "unavailable")
        assert rx.stats == {"accepted": 1, "unavailable": 2}


def test_a_test_event_is_acknowledged_and_not_published(receiver: ReceiverServer) -> None:
    body = webhook_body(None)
    answer = post_webhook(receiver, body, sign(SECRET, body))
    assert (answer.status_code, answer.json()["status"]) == (200, "test_event")
    assert "accepted" not in receiver.stats


def test_an_oversized_body_is_413_before_it_is_checked(receiver: ReceiverServer) -> None:
    body = webhook_body("run_big")[:-1] + b', "pad": "' + b"x" * 5000 + b'"}'
    assert post_webhook(receiver, body, sign(SECRET, body)).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield b"x" * 1000

    answer = httpx.post(
        receiver.webhook_url, content=chunks(), headers={"X-Clay-Signature": "sha256=" + "0" * 64}
    )
    assert answer.status_code == 413


def test_table_callbacks_need_the_shared_secret_and_a_row_id(
    receiver: ReceiverServer, nats_url: str
) -> None:
    row = {"claynb_row_id": "send1:0", "Email": "ada@acme.com", "title": "CTO"}
    url = receiver.callback_url
    assert httpx.post(url, json=row).status_code == 401
    assert httpx.post(url, json=row, headers={"x-claynb-secret": "wrong"}).status_code == 401
    good = {"x-claynb-secret": CALLBACK}
    assert httpx.post(url, json={"Email": "no id"}, headers=good).status_code == 400
    assert httpx.post(url, content=b"{", headers=good).status_code == 400
    assert httpx.post(url, json=row, headers=good).json()["status"] == "accepted"
    assert httpx.post(url, json=row, headers=good).json()["status"] == "duplicate"
    events = drain(nats_url, receiver.namespace, TABLE_ROWS, expect=1)
    assert [e["row_id"] for e in events] == ["send1:0"]
    assert events[0]["row"]["title"] == "CTO"
    stored = receiver.store.payloads(["row:send1:0"])
    assert json.loads(stored["row:send1:0"])["row"]["Email"] == "ada@acme.com"


def test_without_a_callback_secret_every_callback_is_refused(nats_url: str, tmp_path: Path) -> None:
    settings = ReceiverSettings(signing_secrets=SECRET)
    with ReceiverServer(
        settings, nats_url, namespace(), store=SqliteDedupeStore(tmp_path / "d.sqlite")
    ) as s:
        assert (
            httpx.post(
                s.callback_url, json={"claynb_row_id": "1"}, headers={"x-claynb-secret": ""}
            ).status_code
            == 401
        )


def test_unknown_paths_and_methods_are_4xx(receiver: ReceiverServer) -> None:
    assert httpx.get(receiver.webhook_url).status_code == 405
    assert httpx.post(receiver.url + "/nope", content=b"{}").status_code == 404
    assert httpx.get(receiver.url + "/healthz").json()["ok"] is True


headers_st = st.dictionaries(
    st.sampled_from(
        [
            "X-Clay-Signature",
            "x-claynb-secret",
            "content-type",
            "content-length",
            "x-other",
            "transfer-encoding",
        ]
    ),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
    max_size=4,
)
body_st = st.one_of(
    st.binary(max_size=6000),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
    st.builds(lambda rid: webhook_body(rid), st.text(max_size=300)),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/webhooks/clay", "/callbacks/table"]),
    headers=headers_st,
    body=body_st,
    signed=st.booleans(),
)
def test_no_input_makes_the_receiver_answer_5xx(
    receiver: ReceiverServer, path: str, headers: dict[str, str], body: bytes, signed: bool
) -> None:
    headers = {
        k: v for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding")
    }
    if signed:
        headers["X-Clay-Signature"] = sign(SECRET, body)
        headers["x-claynb-secret"] = CALLBACK
    try:
        answer = httpx.post(receiver.url + path, content=body, headers=headers, timeout=10)
    except httpx.LocalProtocolError:
        return  # httpx refused to send the header itself; nothing reached the receiver
    assert answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.status_code in (200, 400, 401, 413)


def test_secrets_never_reach_a_repr_or_a_log(
    receiver: ReceiverServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = webhook_body("run_secret_check")
    post_webhook(receiver, body, sign(SECRET, body))
    httpx.post(
        receiver.callback_url, json={"claynb_row_id": 1}, headers={"x-claynb-secret": CALLBACK}
    )
    shown = repr(receiver) + repr(receiver.settings) + caplog.text + str(receiver.stats)
    assert SECRET not in shown and CALLBACK not in shown


@pytest.fixture
def redis_url() -> Iterator[str]:
    from claynb.services.redis import redis_server

    with redis_server() as url:
        yield url


def test_redis_dedupe_store_is_shared_by_receivers(redis_url: str, nats_url: str) -> None:
    """Two receivers (as on two machines) share one Redis store: a replay to either is ignored."""
    settings = ReceiverSettings(signing_secrets=SECRET)
    ns = namespace()
    body = webhook_body("run_shared")
    with (
        ReceiverServer(settings, nats_url, ns, store=RedisDedupeStore(redis_url)) as a,
        ReceiverServer(settings, nats_url, ns, store=RedisDedupeStore(redis_url)) as b,
    ):
        outcomes: list[Any] = [
            post_webhook(s, body, sign(SECRET, body)).json()["status"] for s in (a, b, a)
        ]
    assert outcomes == ["accepted", "duplicate", "duplicate"]
    assert "redis" in repr(RedisDedupeStore(redis_url)).lower()


def test_the_receiver_publishes_to_redis_streams_too(redis_url: str, tmp_path: Path) -> None:
    settings = ReceiverSettings(signing_secrets=SECRET)
    ns = namespace()
    body = webhook_body("run_on_redis")
    with ReceiverServer(
        settings, redis_url, ns, store=SqliteDedupeStore(tmp_path / "r.sqlite")
    ) as server:
        answers = [
            post_webhook(server, body, sign(SECRET, body)).json()["status"] for _ in range(2)
        ]
        forged = post_webhook(server, body, sign("another-secret-entirely", body)).status_code
    assert answers == ["accepted", "duplicate"] and forged == 401
    assert [e["routine_run_id"] for e in drain(redis_url, ns, RUNS_FINISHED, expect=1)] == [
        "run_on_redis"
    ]
