"""``claynb receiver`` as a real process, and ``claynb dlq`` list / replay on a real bus."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from _events_helpers import drain, namespace, webhook_body

from claynb.cli import main
from claynb.events._bus import DEAD_LETTERS, LEADS, Bus
from claynb.events._cli import add_arguments, settings_from
from claynb.services._webhooks import ReceiverLimits
from claynb.services.nats import free_port
from claynb.wire._signatures import sign

SECRET = "whsec_cli_receiver_secret_98765"


def test_the_receiver_command_serves_signed_webhooks(nats_url: str, tmp_path: Path) -> None:
    port, ns = free_port(), namespace()
    env = {
        **os.environ,
        "CLAYNB_WEBHOOK_SECRET": SECRET,
        "CLAYNB_WEBHOOK_ID": "wh_cli",
        "CLAYNB_HOME": str(tmp_path),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claynb",
            "receiver",
            "--port",
            str(port),
            "--bus-url",
            nats_url,
            "--namespace",
            ns,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.1)
        body = webhook_body("run_cli", "wh_cli")
        good = httpx.post(
            url + "/webhooks/clay",
            content=body,
            headers={"X-Clay-Signature": sign(SECRET, body)},
            timeout=30,
        )
        forged = httpx.post(
            url + "/webhooks/clay",
            content=body,
            headers={"X-Clay-Signature": sign("nope-nope", body)},
            timeout=30,
        )
        assert (good.status_code, forged.status_code) == (200, 401)
        assert [e["routine_run_id"] for e in drain(nats_url, ns, "runs.finished", expect=1)] == [
            "run_cli"
        ]
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=60)
    assert "claynb receiver on" in output
    assert SECRET not in output


def test_the_receiver_command_refuses_to_start_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CLAYNB_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("CLAYNB_CALLBACK_SECRET", raising=False)
    assert main(["receiver"]) == 2
    err = capsys.readouterr().err
    assert "CLAYNB_WEBHOOK_SECRET" in err
    # Real Clay has no API for webhooks: it says how to make one with Clay's CLI.
    assert "clay webhooks create" in err and "CLAYNB_WEBHOOK_ID" in err


def test_the_receiver_command_takes_its_limits_from_flags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAYNB_WEBHOOK_SECRET", SECRET)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = ["--max-body-bytes", "4096", "--head-timeout-s", "2", "--body-timeout-s", "3"]
    assert settings_from(parser.parse_args(flags)).limits() == ReceiverLimits(4096, 2.0, 3.0)
    assert settings_from(parser.parse_args([])).limits() == ReceiverLimits()
    assert main(["receiver", "--body-timeout-s", "0"]) == 2  # refused before anything starts
    err = capsys.readouterr().err
    assert "body_timeout_s must be positive" in err and SECRET not in err


def _park(url: str, ns: str, letters: list[dict[str, Any]]) -> None:
    async def go() -> None:
        async with Bus(url, ns) as bus:
            for letter in letters:
                await bus.publish(DEAD_LETTERS, letter)

    asyncio.run(go())


def test_dlq_lists_and_replays_on_the_bus(
    nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = namespace()
    lead = {"lead_id": "L1", "routine": "enrich-person", "inputs": {"email": "a.b@c.com"}}
    _park(
        nats_url,
        ns,
        [
            {"lead": lead, "kind": "budget", "reason": "budget exhausted", "at": 1.0},
            {
                "lead": {**lead, "lead_id": "L2"},
                "kind": "outcome_unknown",
                "reason": "may be charged",
                "at": 2.0,
            },
        ],
    )
    assert main(["dlq", "list", "--bus-url", nats_url, "--namespace", ns, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["lead_id"], r["kind"]) for r in rows] == [
        ("L1", "budget"),
        ("L2", "outcome_unknown"),
    ]

    assert main(["dlq", "replay", "--bus-url", nats_url, "--namespace", ns]) == 0
    assert "replayed 1 lead(s)" in capsys.readouterr().out
    replayed = drain(nats_url, ns, LEADS, expect=1)
    assert [(e["lead_id"], e["replay"]) for e in replayed] == [("L1", 1)]

    assert main(["dlq", "list", "--bus-url", nats_url, "--namespace", ns]) == 0
    table = capsys.readouterr().out
    assert "L2" in table and "L1" not in table and "1 dead letter(s)" in table


def test_replaying_unknown_outcomes_warns_and_needs_a_yes(
    nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = namespace()
    lead = {"lead_id": "U1", "routine": "enrich-person", "inputs": {"email": "u.v@w.com"}}
    _park(nats_url, ns, [{"lead": lead, "kind": "outcome_unknown", "reason": "?", "at": 1.0}])
    replay = ["dlq", "replay", "--bus-url", nats_url, "--namespace", ns, "--include-unknown"]
    assert main(replay) == 1  # no terminal to ask (pytest's stdin) and no --yes: refused
    err = capsys.readouterr().err
    assert "may charge them twice" in err and "--yes" in err
    assert main(["dlq", "list", "--bus-url", nats_url, "--namespace", ns]) == 0
    assert "U1" in capsys.readouterr().out  # still parked

    assert main([*replay, "--yes"]) == 0
    captured = capsys.readouterr()
    assert "may charge them twice" in captured.err and "replayed 1 lead(s)" in captured.out
    assert [e["lead_id"] for e in drain(nats_url, ns, LEADS, expect=1)] == ["U1"]


def test_dlq_needs_a_bus(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["dlq", "list"]) == 2
    assert "--bus-url" in capsys.readouterr().err
