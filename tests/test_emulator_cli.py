"""``claynb emulator``: flags, and a real server process that serves until interrupted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from claynb.cli import build_parser
from claynb.emulator._cli import build

ROOT = Path(__file__).resolve().parents[1]


def test_flags_build_the_emulator_they_describe() -> None:
    args = build_parser().parse_args(
        [
            "emulator",
            "--port",
            "0",
            "--plan",
            "launch",
            "--run-latency-s",
            "0.5,1.5",
            "--rate-limit-rps",
            "4",
            "--server-error",
            "0.1",
            "--reorder-webhook",
            "0.2",
            "--search-period-quota",
            "300",
        ]
    )
    emu = build(args)
    assert emu.plan.name == "launch" and emu._settings.run_latency_s == (0.5, 1.5)
    assert (
        emu._settings.rate_limit_rps == 4
        and emu.faults.server_error == 0.1
        and emu.faults.reorder_webhook == 0.2
    )
    assert emu._settings.search_quota == 300
    single = build(build_parser().parse_args(["emulator", "--run-latency-s", "1.5"]))
    assert single._settings.run_latency_s == (1.5, 1.5)
    assert single._settings.search_quota == 40_000  # Growth's monthly Actions


@pytest.mark.parametrize(
    "flags", [["--server-error", "1.5"], ["--run-latency-s", "3,1"], ["--plan", "gold"]]
)
def test_bad_flags_are_refused(flags: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", *flags])


def test_serves_until_interrupted_and_prints_url_and_key() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claynb",
            "emulator",
            "--port",
            "0",
            "--run-latency-s",
            "0",
            "--api-key",
            "clay_test_from_the_cli_42",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        assert url is not None and "clay_test_from_the_cli_42" in lines[1]
        me = httpx.get(
            url.group(0) + "/public/v0/me", headers={"clay-api-key": "clay_test_from_the_cli_42"}
        )
        assert me.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == 0
