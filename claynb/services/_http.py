"""claynb's own HTTP servers: an ASGI app served by uvicorn on loopback, in a daemon thread.

The emulator, the direct tier's :class:`claynb.WebhookReceiver`, the event tier's
receiver and the test recorder all run this way, so a notebook or a test uses them like
remote services while keeping them in-process. :meth:`BackgroundServer.start` returns
only once uvicorn says it is serving, and raises :class:`claynb.ConfigError` when it does
not come up (the port is taken, the app's lifespan failed, the thread died, or it took
longer than ``start_timeout_s``): nobody goes on talking to a server that is not there.

The socket is bound here, before the thread starts, so the port is known at once and no
other process can take it in between (asking for a free port and binding later races).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self

from claynb.wire._exceptions import ConfigError

HOST = "127.0.0.1"
#: Seconds to wait for uvicorn to say it serves: a few times what a loaded machine takes.
START_TIMEOUT_S = 15.0

#: Wraps the serving coroutine: set things up on the server's loop, await it, clean up.
Main = Callable[[Coroutine[Any, Any, None]], Awaitable[None]]


class BackgroundServer:
    """``app`` served on ``host:port`` (0: a free port) by uvicorn in a daemon thread.

    ``main``, when given, is awaited on the server's loop with the serving coroutine and
    must await it (the emulator starts its background tasks around it). Other keyword
    arguments go to ``uvicorn.Config`` (``lifespan="on"``, ``http=...``).
    """

    def __init__(
        self,
        app: Any,
        *,
        name: str,
        host: str = HOST,
        port: int = 0,
        main: Main | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        **config: Any,
    ) -> None:
        self.app = app
        self.name = name
        self.host = host
        self.port: int | None = None
        self._requested_port = int(port)
        self._main = main
        self._start_timeout_s = start_timeout_s
        self._config: dict[str, Any] = {
            "log_level": "warning",
            "access_log": False,
            "lifespan": "off",
            "loop": "asyncio",
            **config,
        }
        #: The server's event loop while it runs (for ``run_coroutine_threadsafe``).
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Serve until :meth:`stop`; returns once serving, raises ConfigError otherwise."""
        if self.running:
            return self
        import uvicorn

        sock = self._bind()
        self._server = uvicorn.Server(uvicorn.Config(self.app, **self._config))
        self._error = None
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(sock, ready), name=f"{self.name}-{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(self._start_timeout_s) or not self._server.started:
            why = self._why_not_started()
            self.stop()
            raise ConfigError(f"{self.name} did not start on {self.url}: {why}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to finish and wait for the thread to end; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self.loop = None

    def _bind(self) -> socket.socket:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
        # listening socket says TCP; without it every keep-alive request waits ~40 ms (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as exc:
            sock.close()
            where = f"{self.host}:{self._requested_port}"
            raise ConfigError(f"{self.name} cannot listen on {where}: {exc}") from exc
        self.port = int(sock.getsockname()[1])
        return sock

    def _why_not_started(self) -> str:
        if self._error is not None:
            return f"{type(self._error).__name__}: {self._error}"
        if self._thread is not None and not self._thread.is_alive():
            return "the server ended before it served (see its log above)"
        return f"not serving after {self._start_timeout_s:g}s"

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._run(sock, ready))
        except BaseException as exc:  # reported by start(); the thread must end cleanly
            self._error = exc
        finally:
            ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        watcher = asyncio.get_running_loop().create_task(self._signal_ready(ready))
        try:
            serving = self._server.serve(sockets=[sock])
            await (self._main(serving) if self._main is not None else serving)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            sock.close()

    async def _signal_ready(self, ready: threading.Event) -> None:
        while not self._server.started:
            await asyncio.sleep(0.005)
        ready.set()

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
        return f"BackgroundServer({self.name!r}, {self.url if self.port else 'no port'}, {state})"
