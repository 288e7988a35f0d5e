"""Webhook receivers under abuse: memory under a flood of large posts, and slow senders.

    python benchmarks/receiver_hardening.py [--posts 40] [--mb 10] [--window 40]

Three receivers, each in a Python process of its own, measured side by side in one run:

- **naive**: what a receiver looks like when written the obvious way (read the whole body,
  then verify the signature), served by uvicorn with its default settings;
- **direct**: ``claynb.WebhookReceiver``, the direct tier's;
- **events**: the event tier's receiver (publishing to an embedded NATS JetStream).

Memory: the receiver process's RSS before and after ``--posts`` concurrent posts of
``--mb`` MB (unsigned with a declared Content-Length, unsigned and streamed, streamed with a
false signature), and its peak RSS (Linux's VmHWM) over all of them. Slow senders: how long each receiver keeps a connection
open for a sender trickling one byte every 0.5 s, in its headers and then in its body,
watched for ``--window`` seconds (claynb's deadlines are 10 s for headers, 15 s for a body).
An honest signed delivery is sent to each as well, to show it is still answered.
The tests and this script drive the receivers with the same senders (tests/_receiver_helpers).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _events_helpers import webhook_body  # noqa: E402
from _receiver_helpers import (  # noqa: E402
    SERVE_SCRIPTS,
    RawSender,
    peak_rss,
    post,
    receiver_process,
)

from claynb.services.nats import nats_service  # noqa: E402
from claynb.wire._signatures import sign  # noqa: E402

SECRET = "whsec_benchmark_signing_secret_0123456789"
TRICKLE_EVERY_S = 0.5

NAIVE = (
    "import os\n"
    "import uvicorn\n"
    "from starlette.applications import Starlette\n"
    "from starlette.responses import Response\n"
    "from starlette.routing import Route\n"
    "from claynb.services.nats import free_port\n"
    "from claynb.wire._signatures import verify_signature\n"
    "secret = os.environ['CLAYNB_WEBHOOK_SECRET']\n"
    "async def hook(request):\n"
    "    body = await request.body()\n"
    "    ok = verify_signature(secret, body, request.headers.get('X-Clay-Signature'))\n"
    "    return Response(status_code=200 if ok else 401)\n"
    "port = free_port()\n"
    "print(f'http://127.0.0.1:{port}/hook', flush=True)\n"
    "uvicorn.run(Starlette(routes=[Route('/hook', hook, methods=['POST'])]),\n"
    "            host='127.0.0.1', port=port, log_level='critical')\n"
)


def pieces(total: int) -> Iterator[bytes]:
    piece = b"x" * 65536
    for _ in range(total // len(piece)):
        yield piece


def flood(url: str, posts: int, size: int) -> dict[str, Any]:
    """The answers to ``posts`` concurrent posts of ``size`` bytes, three times over:
    unsigned with a declared length, unsigned streamed, and streamed with a signature of
    the right shape but a false digest (which a receiver must read before refusing)."""
    big = b"x" * size
    shaped = {"X-Clay-Signature": "sha256=" + "0" * 64}
    answers: dict[str, list[int]] = {}
    with ThreadPoolExecutor(posts) as pool:
        for name, body, headers in (
            ("declared", lambda: big, {}),
            ("streamed", lambda: pieces(size), {}),
            ("false signature", lambda: pieces(size), shaped),
        ):
            got = pool.map(lambda _: post(url, body(), headers), range(posts))  # noqa: B023
            answers[name] = sorted(set(got))
    return answers


def held_open(url: str, head_only: bool, window_s: float) -> float | None:
    """Seconds until the receiver cut off a sender trickling its headers (or its body);
    None when it was still listening after ``window_s``."""
    with RawSender(url) as sender:
        n = int(window_s / TRICKLE_EVERY_S)
        if head_only:
            sender.send(b"POST / HTTP/1.1\r\n")
            data = b"X-Slow: " + b"z" * n
        else:
            head = {"Content-Length": str(n + 1), "X-Clay-Signature": "sha256=" + "0" * 64}
            sender.send(sender.head(head))
            data = b"x" * n
        started = time.monotonic()
        cut = not sender.trickle(data, TRICKLE_EVERY_S)
        return time.monotonic() - started if cut else None


def honest(url: str) -> int:
    body = webhook_body("run_1")
    return post(url, body, {"X-Clay-Signature": sign(SECRET, body)})


def measure(name: str, script: str, args: list[str], opts: argparse.Namespace) -> dict[str, Any]:
    with receiver_process(script, SECRET, *args) as receiver:
        process = psutil.Process(receiver.pid)
        for _ in range(3):
            post(receiver.url, b"{}", {})
        before = process.memory_info().rss
        answers = flood(receiver.url, opts.posts, opts.mb * 1_000_000)
        after = process.memory_info().rss
        peak = peak_rss(receiver.pid)
        with ThreadPoolExecutor(2) as pool:  # both slow senders at once: one window
            cut = pool.map(lambda head: held_open(receiver.url, head, opts.window), (True, False))
            slow = dict(zip(("headers", "body"), cut, strict=True))
        status = honest(receiver.url)
    return {
        "name": name,
        "before": before,
        "after": after,
        "peak": peak,
        "answers": answers,
        "slow": slow,
        "honest": status,
    }


def mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MB"


def seconds(value: float | None, window: float) -> str:
    return f"still open after {window:g} s" if value is None else f"cut off at {value:.1f} s"


def report(rows: list[dict[str, Any]], opts: argparse.Namespace) -> None:
    print(f"{opts.posts} concurrent posts of {opts.mb} MB, three rounds:")
    for r in rows:
        growth = r["after"] - r["before"]
        print(
            f"  {r['name']:7} RSS {mb(r['before'])} -> {mb(r['after'])} "
            f"(+{mb(growth)}), peak {mb(r['peak'])}; answers {r['answers']}"
        )
    naive = rows[0]
    for r in rows[1:]:
        for label, key in (("RSS growth", "after"), ("peak above start", "peak")):
            if naive[key] is None or r[key] is None:
                continue
            ratio = (naive[key] - naive["before"]) / max(r[key] - r["before"], 2**20)
            print(f"  naive / {r['name']} {label}: {ratio:.0f}x (floor of 1 MB)")
    print(f"slow senders, one byte every {TRICKLE_EVERY_S} s:")
    for r in rows:
        print(
            f"  {r['name']:7} headers {seconds(r['slow']['headers'], opts.window)}, "
            f"body {seconds(r['slow']['body'], opts.window)}; honest delivery answered "
            f"{r['honest']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=40)
    parser.add_argument("--mb", type=int, default=10)
    parser.add_argument("--window", type=float, default=40.0)
    opts = parser.parse_args()
    os.environ["CLAYNB_HOME"] = tempfile.mkdtemp(prefix="claynb-bench-")
    with nats_service() as nats_url:
        rows = [
            measure("naive", NAIVE, [], opts),
            measure("direct", SERVE_SCRIPTS["direct"], [], opts),
            measure("events", SERVE_SCRIPTS["events"], [nats_url], opts),
        ]
    report(rows, opts)


if __name__ == "__main__":
    main()
