"""X-Clay-Signature: signing, constant-time verification, and a real delivery from the emulator."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import claynb
from claynb.wire._signatures import require_signature, sign

SECRET = "whsec_test_signing_secret_0123"
BODY = (
    b'{"webhookId":"wh_1","createdAt":"2026-06-16T17:50:00.000Z","data":{"routine_run_id":"run_1"}}'
)


def test_a_signature_verifies_against_the_exact_body() -> None:
    header = sign(SECRET, BODY)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert claynb.verify_signature(SECRET, BODY, header)
    assert claynb.verify_signature(["whsec_another_secret_999", SECRET], BODY, header)
    assert claynb.verify_signature(SECRET, BODY, " SHA256=" + header[7:].upper() + " ")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha256=00",
        "md5=abc",
        "sha256=" + "0" * 64,
        "sha256=é" * 3,
        sign(SECRET, BODY).removeprefix("sha256="),  # a bare digest: Clay always says sha256=
    ],
)
def test_anything_else_is_refused(header: str | None) -> None:
    assert not claynb.verify_signature(SECRET, BODY, header)


def test_a_changed_body_or_another_secret_does_not_verify() -> None:
    header = sign(SECRET, BODY)
    reserialised = json.dumps(json.loads(BODY)).encode()  # same JSON, other bytes
    assert not claynb.verify_signature(SECRET, reserialised, header)
    assert not claynb.verify_signature("whsec_another_secret_999", BODY, header)
    assert not claynb.verify_signature("", BODY, header)
    assert not claynb.verify_signature([], BODY, header)


def test_require_signature_raises_without_the_secret_in_the_text() -> None:
    with pytest.raises(claynb.SignatureError) as info:
        require_signature(SECRET, BODY, "sha256=" + "1" * 64)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    require_signature(SECRET, BODY, sign(SECRET, BODY))  # no error


class Receiver:
    """A tiny webhook endpoint on loopback keeping each delivery's raw body and header."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, str | None]] = []
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append((body, self.headers.get("X-Clay-Signature")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/clay"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def test_a_real_delivery_from_the_emulator_verifies(
    make_emulator: Callable[..., Any], receiver: Receiver
) -> None:
    emu = make_emulator(webhook_hold_s=0)
    hook = emu.create_webhook(receiver.url)
    with claynb.ClayClient(emu.api_key, base_url=emu.url) as c:
        run_id = c.run_routine(
            "enrich-person", [{"id": "a", "inputs": {"email": "a@acme.com"}}], webhook_id=hook["id"]
        )
        c.wait_for_run(run_id, poll_interval=0.01)
    for _ in range(100):
        if receiver.deliveries:
            break
        time.sleep(0.05)
    body, header = receiver.deliveries[0]
    assert claynb.verify_signature(hook["signingSecret"], body, header)
    assert json.loads(body)["data"]["routine_run_id"] == run_id
    assert not claynb.verify_signature(hook["signingSecret"], body + b" ", header)
