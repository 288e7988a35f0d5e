"""Shared fixtures: every test gets its own CLAYNB_HOME, and no test can reach real Clay."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def claynb_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "claynb-home"
    monkeypatch.setenv("CLAYNB_HOME", str(home))
    # A real key in the developer's environment must never be used by a test.
    monkeypatch.delenv("CLAY_API_KEY", raising=False)
    monkeypatch.delenv("CLAY_BASE_URL", raising=False)
    yield home


# --- the Clay emulator (claynb.emulator) -------------------------------------------------


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Any]]:
    """Build and start emulators (zero latency, no rate limit, Growth plan unless told);
    all stopped after."""
    from claynb import Emulator

    started: list[Any] = []

    def factory(**kwargs: Any) -> Any:
        kwargs.setdefault("run_latency_s", 0)
        kwargs.setdefault("plan", "growth")
        kwargs.setdefault("rate_limit_rps", None)
        emu = Emulator(**kwargs)
        emu.start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Any]) -> Any:
    """A running emulator: zero latency, Growth plan, no rate limit, no faults."""
    return make_emulator()


# --- the event tier's bus (claynb.services.nats) ----------------------------------------


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """A NATS JetStream for the session: NATS_URL, else an embedded nats-server."""
    from claynb.services.nats import nats_service

    with nats_service() as url:
        yield url


# --- the queue tier's Redis (claynb.services.redis) -------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis for the session: REDIS_URL, else a private redis-server claynb starts."""
    from claynb.services.redis import redis_server

    with redis_server() as url:
        yield url


@pytest.fixture
def recorder() -> Iterator[Any]:
    """A loopback HTTP server recording every request (webhook / HTTP API column target)."""
    from claynb.emulator import RecordingServer

    with RecordingServer() as server:
        yield server
