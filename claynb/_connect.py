"""``claynb.connect()``: a client for real Clay when told so, else the embedded emulator.

Real Clay costs money, and a notebook run unattended (CI, ``claynb share``, a colleague's
fresh clone) must never spend it by accident just because a key sits in the environment.
So a non-loopback base URL is used only with ``allow_spend=True`` or
``CLAYNB_ALLOW_SPEND=1``; otherwise ``connect()`` warns, says why, and uses a local
emulator. Loopback URLs (a ``claynb emulator`` on this machine) need no permission.
"""

from __future__ import annotations

import atexit
import functools
import ipaddress
import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from claynb._secrets import register_secret
from claynb.wire._client import AsyncClayClient, ClayClient
from claynb.wire._config import DEFAULT_BASE_URL, ENV_ADMIN_URL
from claynb.wire._exceptions import ConfigError

logger = logging.getLogger("claynb")

ENV_KEY = "CLAY_API_KEY"
ENV_BASE_URL = "CLAY_BASE_URL"
ENV_ALLOW_SPEND = "CLAYNB_ALLOW_SPEND"


class SpendGuardWarning(UserWarning):
    """connect() found a real Clay key but was not allowed to spend, so it used the emulator."""


def is_loopback(url: str) -> bool:
    """True for http(s) URLs on this machine (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


LOCAL_CLAY = "a Clay on this machine (the emulator or a stand-in)"


def clay_identity(base_url: str) -> str:
    """Which Clay a base URL reaches, as claynb's state records it (see ``Journal.bind_clay``).

    Every Clay on this machine is one identity: the embedded emulators come and go on new
    ports, and their answers are all made up. Any other host is itself (scheme, host, port).
    """
    if is_loopback(base_url):
        return LOCAL_CLAY
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"


def spend_allowed(allow_spend: bool | None) -> bool:
    """The argument when given, else ``CLAYNB_ALLOW_SPEND`` set to 1/true/yes."""
    if allow_spend is not None:
        return bool(allow_spend)
    return os.environ.get(ENV_ALLOW_SPEND, "").strip().lower() in {"1", "true", "yes"}


def connect(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    allow_spend: bool | None = None,
    asynchronous: bool = False,
    emulator_options: Mapping[str, Any] | None = None,
    **client_options: Any,
) -> ClayClient | AsyncClayClient:
    """A ready client: real Clay when a key is configured and spending is allowed, else
    an embedded emulator (started on first use, stopped when Python exits).

    ``api_key``/``base_url`` default to ``CLAY_API_KEY``/``CLAY_BASE_URL`` (base default
    ``https://api.clay.com/public/v0``). ``emulator_options`` (for instance
    ``{"rate_limit_rps": 20}``) start a dedicated emulator instead of the shared one.
    ``asynchronous=True`` returns an :class:`AsyncClayClient`. Other keyword arguments go
    to the client. The emulator, when used, is on ``client.emulator``, and the client reads
    costs from its meters; so does a client of a ``claynb emulator`` process whose admin
    URL is in ``CLAYNB_EMULATOR_ADMIN_URL`` (it prints it).
    """
    key = api_key or os.environ.get(ENV_KEY) or None
    base = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    register_secret(key)
    cls: type[ClayClient] | type[AsyncClayClient] = AsyncClayClient if asynchronous else ClayClient
    if key and _configured_clay_chosen(key, base, allow_spend):
        if not is_loopback(base):
            logger.info("claynb.connect: using %s (spending allowed)", base)
        client_options.setdefault("emulator_admin_url", os.environ.get(ENV_ADMIN_URL) or None)
        return cls(key, base_url=base, **client_options)
    if key:
        _warn_not_allowed(base)
    emulator = _start_emulator(emulator_options)
    client = cls(
        emulator.api_key,
        base_url=emulator.url,
        emulator_admin_url=emulator.admin_url,
        **client_options,
    )
    client.emulator = emulator
    return client


def _configured_clay_chosen(key: str | None, base: str, allow_spend: bool | None) -> bool:
    """Whether connect() uses the configured Clay (else it starts an emulator)."""
    return bool(key) and (is_loopback(base) or spend_allowed(allow_spend))


def clay_of(client: Any) -> str:
    """The :func:`clay_identity` of ``client``, or of what ``connect()`` would return for
    None (without starting anything: a call answered from the cache needs no client)."""
    if client is not None:
        return clay_identity(client.base_url)
    base = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    chosen = _configured_clay_chosen(os.environ.get(ENV_KEY) or None, base, None)
    return clay_identity(base) if chosen else LOCAL_CLAY


def _warn_not_allowed(base: str) -> None:
    message = (
        f"{ENV_KEY} is set, but {base} is real Clay and spends Actions and Data Credits; "
        f"pass connect(allow_spend=True) or set {ENV_ALLOW_SPEND}=1 to use it. "
        "Using the embedded Clay emulator instead."
    )
    logger.warning("%s", message)
    warnings.warn(message, SpendGuardWarning, stacklevel=3)


def _start_emulator(options: Mapping[str, Any] | None) -> Any:
    if options:
        return _own_emulator(dict(options))
    return _shared_emulator().start()


@functools.lru_cache(maxsize=1)
def _shared_emulator() -> Any:
    """One emulator per process, shared by every connect() without options, so meters
    and runs stay consistent across notebook cells. Cached rather than global so that
    nothing starts until the first connect()."""
    from claynb.emulator import Emulator

    emulator = Emulator()
    atexit.register(emulator.stop)
    return emulator


def _own_emulator(options: dict[str, Any]) -> Any:
    from claynb.emulator import Emulator

    try:
        emulator = Emulator(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"emulator_options: {exc}") from exc
    atexit.register(emulator.stop)
    return emulator.start()
