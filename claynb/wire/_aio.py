"""How :class:`claynb.AsyncClayClient` puts a request on the wire: aiohttp.

Why not httpx, which the sync client uses: the direct tier's first run of 200,000 rows
is 2,000 runs of 100 items, each a ``POST /routines/{id}/run`` and a ``GET`` of its
results, and sending them through httpx was the largest part of the enriching process's
CPU. Side by side on loopback against an instant emulator, that pair cost about 4.4 ms of
CPU through the client on ``httpx.AsyncClient``, 2.2 ms through it on this module, and
1.2 to 1.7 ms on bare aiohttp (C parsers, a lighter connection pool); the first run's
figures are in ``benchmarks/enrich_overhead.py``.

Only the sending changes. The core (:mod:`claynb.wire._core`) still builds each request
as an ``httpx.Request`` and reads each answer as an ``httpx.Response``, so every decision
is made in one place for both clients. Kept from the httpx client, on purpose:

- A request that spends goes over a connector that never reuses a connection
  (``force_close``), so a run is never written to a socket the server was closing; reads
  keep their connections alive. Redirects are not followed (httpx's default), and
  aiohttp's own re-send of a dropped GET, PUT or DELETE is off: the core decides.
- Failures are translated into httpx's exception classes, so the core's categories
  (``NOT_SENT_ERRORS``, ``FATAL_ERRORS``) decide as before: only a failure to connect
  (refused, DNS, a connect or pool timeout) is known not to have sent anything; every
  other failure (a read timeout, a disconnect, a cut body) may have reached Clay and is
  an unknown outcome for a spending call, never a retry.
- Timeouts map onto aiohttp's: ``connect`` to ``sock_connect``, ``pool + connect`` to
  ``connect`` (aiohttp counts the wait for a pooled connection in it), ``read`` to
  ``sock_read``. aiohttp has no write timeout: its read timer starts when the request
  does, so a write that stalls for ``read`` seconds fails as a read timeout (after the
  request may have gone out: an unknown outcome, as a write timeout is with httpx).
- Proxies from the environment (as httpx's ``trust_env``; when one is set, aiohttp also
  reads ``.netrc`` for it, which httpx no longer does), TLS verified with the same
  context httpx builds (certifi's bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), no
  cookie jar, and only the headers the core built (aiohttp adds no Accept-Encoding or
  Content-Type of its own).

Sessions are opened on the first request, inside the running loop that will use them,
and closed by :meth:`AioSender.aclose`.
"""

from __future__ import annotations

import ssl
import urllib.request

import aiohttp
import httpx
from yarl import URL

from claynb.wire._config import Timeout

#: Connections per session, as httpx's default pool allows.
MAX_CONNECTIONS = 100

# Headers aiohttp would otherwise add: httpx sends neither unless the core set it.
_NO_AUTO_HEADERS = frozenset({"Accept-Encoding", "Content-Type"})
# Headers aiohttp writes itself from the URL and the body.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})

# aiohttp's failures in the words of the core's categories (see claynb.wire._core). Order
# matters: the first class an error is an instance of names it.
_TRANSLATION: tuple[tuple[type[BaseException], type[httpx.RequestError]], ...] = (
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # connecting, or a pool slot
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.TooManyRedirects, httpx.TooManyRedirects),
    (TimeoutError, httpx.ReadTimeout),  # SocketTimeoutError and any other timeout
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # an answer that did not parse
)


class AioSender:
    """Sends the core's ``httpx.Request``s through two aiohttp sessions: one whose
    connections are never reused (for requests that spend) and one that keeps them alive.
    """

    def __init__(self, timeout: Timeout) -> None:
        self._timeout = client_timeout(timeout)
        self._keep: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(open={self._keep is not None or self._fresh is not None})"

    async def send(self, request: httpx.Request, *, spends: bool) -> httpx.Response:
        """Send ``request`` and read its whole answer; spending ones on a fresh connection.

        Raises an ``httpx.RequestError`` subclass for a failure without an answer (see
        :func:`translated`); an error status is an answer, returned like any other.
        """
        session = self._session(spends)
        headers = [(k, v) for k, v in request.headers.multi_items() if k not in _OWN_HEADERS]
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                skip_auto_headers=_NO_AUTO_HEADERS,
            ) as answer:
                body = await answer.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = translated(exc, request)
        else:
            return answer_of(answer, body, request)
        # Raised outside the handler, so the aiohttp error is not chained: some (a
        # ClientResponseError) print the request's headers, the API key among them.
        raise failure

    def _session(self, spends: bool) -> aiohttp.ClientSession:
        if spends:
            if self._fresh is None:
                self._fresh = self._open(force_close=True)
            return self._fresh
        if self._keep is None:
            self._keep = self._open(force_close=False)
        return self._keep

    def _open(self, *, force_close: bool) -> aiohttp.ClientSession:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=True)
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, force_close=force_close, ssl=self._ssl
        )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            trust_env=env_names_a_proxy(),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # the httpx.Response decodes, as the httpx client's did
        )
        # aiohttp sends a GET, PUT or DELETE a second time, unasked, when the connection
        # drops; the core decides every re-send (and a PUT may spend), so it never does.
        # No public setting exists; tests/test_client_aio.py counts the sends.
        session._retry_connection = False
        return session

    async def aclose(self) -> None:
        """Close both sessions (and their connections); the sender may be used again."""
        sessions = [s for s in (self._keep, self._fresh) if s is not None]
        self._keep = self._fresh = None
        for session in sessions:
            await session.close()


def answer_of(
    answer: aiohttp.ClientResponse, body: bytes, request: httpx.Request
) -> httpx.Response:
    """The answer as the core reads it (the body still encoded as sent: httpx decodes it)."""
    return httpx.Response(
        answer.status,
        headers=list(answer.raw_headers),
        content=body,
        request=request,
        extensions={"reason_phrase": (answer.reason or "").encode("latin-1", "replace")},
    )


def env_names_a_proxy() -> bool:
    """Whether the environment names an HTTP(S) proxy (``HTTP_PROXY``, ``HTTPS_PROXY``,
    ``ALL_PROXY``), read once as httpx reads it when a client is made.

    Only then does a session read the environment (``trust_env``): aiohttp does it on every
    request, in two trips to a worker thread (the proxy, ``.netrc``) that cost more CPU
    than the request itself, for nothing when no proxy is set.
    """
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def client_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    """``timeout`` in aiohttp's terms (see the module docstring: no write phase)."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.pool + timeout.connect,
        sock_connect=timeout.connect,
        sock_read=timeout.read,
    )


def translated(exc: BaseException, request: httpx.Request) -> httpx.RequestError:
    """The httpx error the core knows for aiohttp's ``exc``: anything not known to have
    failed before sending reads as "may have reached Clay" (a RemoteProtocolError)."""
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for aio_class, httpx_class in _TRANSLATION:
        if isinstance(exc, aio_class):
            return httpx_class(what, request=request)
    return httpx.RemoteProtocolError(what, request=request)
