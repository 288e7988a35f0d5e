"""Helpers for the webhook receiver tests (not a test module): raw senders and a receiver
in a process of its own.

The hardening can only be seen below httpx: a sender that stops half-way through its
headers, a body that is never finished, an answer that comes before the body was sent.
:class:`RawSender` writes the bytes itself over a plain socket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

#: How long a test waits for an answer: far beyond any deadline the tests set.
ANSWER_WAIT_S = 30.0


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


class RawSender:
    """One connection to ``url``'s host, written to byte by byte when needed."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_WAIT_S)

    def __enter__(self) -> RawSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def head(self, headers: dict[str, str], *, chunked: bool = False) -> bytes:
        """The request line and headers of a POST (``Transfer-Encoding: chunked`` when told)."""
        lines = [f"POST {self.path} HTTP/1.1", "Host: receiver"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def trickle(self, data: bytes, every_s: float) -> bool:
        """Send ``data`` one byte at a time; False as soon as the receiver has hung up or
        answered (it cut the sender off), True if every byte went."""
        self.sock.settimeout(every_s)
        try:
            for i in range(len(data)):
                self.sock.sendall(data[i : i + 1])
                try:
                    self.sock.recv(1, socket.MSG_PEEK)
                except TimeoutError:
                    continue  # nothing yet: the receiver is still listening
                return False  # an answer, or the end of the connection
        except OSError:  # reset by the receiver
            return False
        finally:
            self.sock.settimeout(ANSWER_WAIT_S)
        return True

    def answer(self) -> RawAnswer:
        """The receiver's answer (read to its Content-Length)."""
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        while len(body) < int(headers.get("content-length", 0)):
            body += self._recv()
        return RawAnswer(int(status_line.split()[1]), headers, body)

    def closed_by_receiver(self) -> bool:
        """True when the receiver has ended the connection (end of file, or a reset)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the receiver closed the connection without an answer")
        return chunk


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# --- a receiver in a process of its own ------------------------------------------------

#: Scripts serving each tier's receiver; each prints its webhook URL, serves until stdin
#: closes, and takes the signing secret from the environment (never the command line).
SERVE_SCRIPTS = {
    "direct": (
        "import os, sys\n"
        "from claynb.direct import WebhookReceiver\n"
        "rx = WebhookReceiver(signing_secret=os.environ['CLAYNB_WEBHOOK_SECRET']).start()\n"
        "print(rx.url, flush=True)\n"
        "sys.stdin.read()\n"
        "rx.stop()\n"
    ),
    "events": (
        "import os, sys\n"
        "from claynb.events import ReceiverServer, ReceiverSettings\n"
        "settings = ReceiverSettings(signing_secrets=os.environ['CLAYNB_WEBHOOK_SECRET'])\n"
        "server = ReceiverServer(settings, sys.argv[1]).start()\n"
        "print(server.webhook_url, flush=True)\n"
        "sys.stdin.read()\n"
        "server.stop()\n"
    ),
}


@dataclass
class ReceiverProcess:
    url: str
    pid: int


@contextmanager
def receiver_process(script: str, secret: str, *args: str) -> Iterator[ReceiverProcess]:
    """A receiver served by ``script`` (one of :data:`SERVE_SCRIPTS`, given ``args``) in a
    Python process of its own, until the block ends."""
    env = {**os.environ, "CLAYNB_WEBHOOK_SECRET": secret}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://"), "the receiver did not start"
        yield ReceiverProcess(url, proc.pid)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def peak_rss(pid: int) -> int | None:
    """The process's peak resident set in bytes (Linux's VmHWM), where the system says."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def post(url: str, content: bytes | Iterator[bytes], headers: dict[str, str]) -> int:
    """One POST's answer status (httpx reads the answer even when the receiver hung up
    before taking the whole body)."""
    return httpx.post(url, content=content, headers=headers, timeout=ANSWER_WAIT_S).status_code
