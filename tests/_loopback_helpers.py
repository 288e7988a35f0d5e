"""A bare HTTP/1.1 server on loopback whose every connection a test scripts: what Clay's
side of a connection can do to a client (hang, drop, cut a body, answer garbage, trickle)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Seen:
    """What a scripted server saw: each request as (connection number, method, headers)."""

    requests: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    closed_by_client: list[int] = field(default_factory=list)


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int, Seen], Awaitable[None]]


async def read_request(
    reader: asyncio.StreamReader, conn: int, seen: Seen
) -> tuple[str, dict[str, str]] | None:
    """One request off the connection (its body read and dropped); None at EOF."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ")[0]
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if h)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    seen.requests.append((conn, method, headers))
    return method, headers


def answer(body: bytes = b"{}", *, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


async def keep_answering(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int, seen: Seen
) -> None:
    """Answer 200 to every request on the connection, setting a cookie, until it closes."""
    while True:
        try:
            if await read_request(reader, conn, seen) is None:
                break
        except asyncio.IncompleteReadError:
            break
        writer.write(answer(b'{"ok": true}', extra="set-cookie: session=abc; Path=/\r\n"))
        await writer.drain()
    seen.closed_by_client.append(conn)


async def hang(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int, seen: Seen
) -> None:
    """Take the request, then never answer (until the client gives up and closes)."""
    await read_request(reader, conn, seen)
    await reader.read()


async def disconnect(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int, seen: Seen
) -> None:
    """Take the request, then close the connection without a word."""
    await read_request(reader, conn, seen)


async def cut_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int, seen: Seen
) -> None:
    """Answer 200 with a body 20 bytes into a promised 1,000, then close."""
    await read_request(reader, conn, seen)
    writer.write(answer(b"x" * 1000)[:-980])
    await writer.drain()


async def garbage(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int, seen: Seen
) -> None:
    """Answer with something that is not HTTP."""
    await read_request(reader, conn, seen)
    writer.write(b"SMTP ready, not HTTP\r\n\r\n")
    await writer.drain()


async def trickle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int, seen: Seen
) -> None:
    """Answer slowly: the head, then the body in three parts with pauses between."""
    await read_request(reader, conn, seen)
    body = b'{"items": ["a", "b", "c"]}'
    whole = answer(body)
    head = whole[: -len(body)]
    for part in (head, body[:9], body[9:18], body[18:]):
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.05)


async def serve(script: Script) -> tuple[asyncio.Server, str, Seen]:
    """Start ``script`` on a loopback port of the running loop: server, base URL, Seen."""
    seen = Seen()
    numbers = itertools.count()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer, next(numbers), seen)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", seen
