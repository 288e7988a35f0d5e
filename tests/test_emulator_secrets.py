"""The emulator keeps API keys, signing secrets and source tokens out of reprs, meters and logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from claynb import Faults
from claynb._secrets import known_secrets, redact


def test_api_key_is_generated_registered_and_never_shown(emulator: Any) -> None:
    key = emulator.api_key
    assert key.startswith("clay_test_") and len(key) > 20
    assert key in known_secrets() and key not in redact(f"key={key}")
    assert key not in repr(emulator) and key not in str(emulator) and "***" in repr(emulator)
    assert key not in json.dumps(emulator.meters())


def test_secrets_stay_out_of_meters_deliveries_and_logs(
    make_emulator: Any, recorder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu = make_emulator(
        api_key="clay_test_given_key_0123456789", faults=Faults(drop_connection=0.5), seed=3
    )
    hook = emu.create_webhook(recorder.url + "/h?token=tok_in_url_987654")
    table = emu.create_table(
        "T",
        auth_token="source-token-abcdef",
        http_api={"url": recorder.url, "headers": {"x-shared": "column-secret-12345"}},
    )
    headers = {"clay-api-key": emu.api_key}
    for _ in range(6):
        try:
            httpx.post(
                emu.url + "/public/v0/routines/enrich-company/run",
                headers=headers,
                json={
                    "items": [{"id": "1", "inputs": {"domain": "acme.com"}}],
                    "webhook_id": hook["id"],
                },
            )
            httpx.get(
                emu.url + "/public/v0/me", headers={"clay-api-key": "clay_test_wrong_key_xyz"}
            )
            httpx.post(
                table["webhook_url"],
                json={"a": 1},
                headers={"x-clay-webhook-auth": "source-token-abcdef"},
            )
        except httpx.TransportError:
            pass  # half of the requests are dropped on purpose
    recorder.wait_for(2)
    secrets = [
        emu.api_key,
        hook["signingSecret"],
        "tok_in_url_987654",
        "source-token-abcdef",
        "column-secret-12345",
    ]
    assert all(s in known_secrets() for s in secrets if s != "tok_in_url_987654")
    dumped = json.dumps(emu.meters())
    logged = caplog.text
    for secret in secrets:
        assert secret not in dumped, secret
        assert secret not in logged, secret
    assert hook["signingSecret"].startswith("whsec_")
