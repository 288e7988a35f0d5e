"""The lifecycle shared by the private servers claynb starts (redis-server, nats-server).

Both are one child process on a free loopback port with a directory of its own (a
temporary one, or a state directory the caller names, which outlives the process so
that a restart finds its data): start it, poll until it answers (or ends, or runs out of
time), and on stop end it politely, then firmly, and remove the directory if temporary. :class:`LocalServer` holds that part;
a subclass says how to run its binary (:meth:`LocalServer._command`), how to tell that it
answers (:meth:`LocalServer._answers`) and what its own output was when it ended early
(:meth:`LocalServer._exit_output`), and words its own errors.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host. A killed child its parent has not waited
    for yet (a zombie) still answers ``kill(pid, 0)``, so Linux's process state is read too."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, as ``boot-id:ticks`` (Linux), else ``None``.

    A pid is reused once its process ends, so "pid 4242 is alive" does not say that the
    process which wrote a record is: the pair (pid, start time) does. The boot id makes
    the start time (clock ticks since boot) unique across reboots too.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            ticks = stat.read().rsplit(")", 1)[1].split()[19]
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot:
            return f"{boot.read().strip()}:{ticks}"
    except (OSError, IndexError):
        return None


def same_process_alive(pid: int, started: str | None) -> bool:
    """Whether the very process that recorded (``pid``, ``started``) still runs on this host:
    alive, and not a newer process that was given the same pid."""
    if not process_alive(pid):
        return False
    return started is None or process_started(pid) in (started, None)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class StartFailure:
    """Why one launch did not come up: it ended by itself (with its output), or never answered."""

    exited: bool
    output: str = ""
    returncode: int | None = None


class LocalServer(ABC):
    """One private server process on loopback with its own temporary directory."""

    #: Prefix of the temporary directory made for each launch.
    _dir_prefix: ClassVar[str]
    #: Seconds between two "does it answer yet?" probes while starting.
    _poll_s: ClassVar[float]
    #: Where the child's stderr goes (``subprocess.PIPE`` when :meth:`_exit_output` reads it).
    _stderr: ClassVar[int]
    #: The child's stdin (``None`` inherits ours).
    _stdin: ClassVar[int | None] = None

    def __init__(
        self, port: int = 0, binary: str | None = None, *, state_dir: str | Path | None = None
    ) -> None:
        self.port = port
        self.binary = binary
        #: Kept across launches and stops; None: a temporary directory per server's life.
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    @abstractmethod
    def url(self) -> str: ...

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (for a signal sent on purpose)."""
        return self._proc.pid if self.running and self._proc is not None else None

    @abstractmethod
    def start(self) -> Self:
        """Start the server and block until it answers, or raise :class:`ConfigError`."""

    @abstractmethod
    def _command(self, binary: str, workdir: str) -> list[str]:
        """The argv that runs ``binary`` on ``self.port`` with ``workdir`` as its directory."""

    @abstractmethod
    def _answers(self, port: int) -> bool:
        """True once the server on ``port`` answers as it should."""

    @abstractmethod
    def _exit_output(self, proc: subprocess.Popen[bytes]) -> str:
        """What the process said before it ended (read before its directory is removed)."""

    def _launch(self, binary: str, timeout_s: float) -> StartFailure | None:
        """Start one process on ``self.port``; ``None`` once it answers, else why it did not.

        A launch that fails is stopped (and a temporary directory removed) before returning.
        A launch after the process died on its own (a crash, a kill) reuses its directory,
        temporary or not, so a server that persists finds its data again.
        """
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._dir = str(self.state_dir)
        elif self._dir is None:
            self._dir = tempfile.mkdtemp(prefix=self._dir_prefix)
        proc = self._proc = subprocess.Popen(
            self._command(binary, self._dir),
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            stdin=self._stdin,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                output = self._exit_output(proc)
                self.stop()
                return StartFailure(exited=True, output=output, returncode=proc.returncode)
            if self._answers(self.port):
                return None
            time.sleep(self._poll_s)
        self.stop()
        return StartFailure(exited=False)

    def stop(self) -> None:
        """Stop the process (politely, then firmly) and remove its temporary directory."""
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
        if self._dir and self.state_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"{type(self).__name__}(url={self.url!r}, {state})"
