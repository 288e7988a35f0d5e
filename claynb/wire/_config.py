"""Client settings: small value objects and the documented defaults behind them.

Every number a client uses to decide how long to wait, how often to retry or how fast to
send lives here, with the reason it has that value. Clay publishes the *signals* (429 with
Retry-After, the X-RateLimit-* trio "when available") but no numeric rate limit, so the
defaults are deliberately modest and every one can be overridden per client.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from claynb._secrets import mask
from claynb.wire._exceptions import ClayError, ConfigError, RateLimited

#: Clay's Public API v0 (documented). The client only talks elsewhere when told to.
DEFAULT_BASE_URL = "https://api.clay.com/public/v0"
#: Where a ``claynb emulator`` process's admin URL is given to clients and workers.
ENV_ADMIN_URL = "CLAYNB_EMULATOR_ADMIN_URL"
#: An outbound webhook made with Clay's CLI (``clay webhooks create URL``): its id, and
#: the signing secret it printed once.
ENV_WEBHOOK_ID = "CLAYNB_WEBHOOK_ID"
ENV_WEBHOOK_SECRET = "CLAYNB_WEBHOOK_SECRET"

#: Seconds to establish a TCP/TLS connection. Short: a refused connection is retried.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Seconds to wait for an answer. Long enough for a slow page of results, short enough
#: that a hung POST is reported (as an unknown outcome) rather than stalling a notebook.
DEFAULT_READ_TIMEOUT_S = 30.0

#: Attempts per request, the first included. Bounded so an outage surfaces as an error.
#: Also, unless told otherwise, the POSTs one item may ride in across every layer.
DEFAULT_MAX_ATTEMPTS = 6
#: First backoff after a 5xx or a connection failure, doubled each time up to the cap.
DEFAULT_BACKOFF_INITIAL_S = 0.5
DEFAULT_BACKOFF_MAX_S = 20.0
#: Fraction of each backoff drawn at random, so many clients do not retry in lock-step.
DEFAULT_JITTER = 0.5
#: A 429 asking for a longer wait than this is raised (RateLimited) instead of slept through:
#: a notebook that silently sleeps for an hour looks hung.
DEFAULT_MAX_RETRY_AFTER_S = 300.0

#: The pacer sends at this fraction of the known limit: a little headroom absorbs the
#: jitter between when the client schedules a request and when the server counts it.
DEFAULT_PACING_FRACTION = 0.95

#: Polling a run's results: Clay asks for "a modest interval rather than as fast as
#: possible", so the interval starts at a second and grows by half each poll up to ten.
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_POLL_BACKOFF = 1.5
DEFAULT_POLL_MAX_INTERVAL_S = 10.0
#: Give up waiting for a run after ten minutes (the run keeps going on Clay's side).
DEFAULT_WAIT_TIMEOUT_S = 600.0

#: Page size for cursor pagination: the largest the Public API accepts, fewest requests.
DEFAULT_PAGE_LIMIT = 100
#: Items per POST /routines/{id}/run (documented range 1-100): the size of every batch a
#: tier sends as one run, in every tier.
MAX_RUN_ITEMS = 100


@dataclass(frozen=True, init=False)
class Timeout:
    """Seconds to wait in each phase of a request, like ``httpx.Timeout``.

    ``Timeout(5.0)`` sets every phase; ``Timeout(30.0, connect=5.0)`` overrides one.
    """

    connect: float
    read: float
    write: float
    pool: float

    def __init__(
        self,
        timeout: float | None = None,
        *,
        connect: float | None = None,
        read: float | None = None,
        write: float | None = None,
        pool: float | None = None,
    ) -> None:
        default_read = DEFAULT_READ_TIMEOUT_S if timeout is None else timeout
        default_connect = DEFAULT_CONNECT_TIMEOUT_S if timeout is None else timeout
        object.__setattr__(self, "connect", _positive("connect", connect, default_connect))
        object.__setattr__(self, "read", _positive("read", read, default_read))
        object.__setattr__(self, "write", _positive("write", write, default_read))
        object.__setattr__(self, "pool", _positive("pool", pool, default_read))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried, and how often an item is sent.

    ``max_attempts`` bounds every kind of retry of one request (429, 5xx, connection
    failures). ``max_sends_per_item`` bounds the sends of one item that Clay fails, across
    every layer together: the client's own retries, a tier sending a refused batch again,
    an RQ retry of a queue job (default: ``max_attempts``, so a tier re-sends only what the
    client's retries left unspent). A lasting 5xx therefore costs a row at most that many
    POSTs. A 429 is Clay asking to wait, not failing: the client waits as told, within
    ``max_attempts`` per request, and a request that still ends rate-limited counts once
    (:meth:`counted`). Tiers count what each item spent and ask :meth:`sends_left`; none
    keeps an attempt count of its own that would multiply with the client's.

    Backoff for 5xx and connection failures, and between a tier's re-sends, is
    ``backoff_initial_s * 2**n`` capped at ``backoff_max_s``, with ``jitter`` of it drawn
    at random (:meth:`backoff`). A 429 waits what the server asked for
    (X-RateLimit-Reset when given, it is more precise, else Retry-After), never more than
    ``max_retry_after_s``.

    Nothing here makes a POST that may have started a run be sent twice: Clay has no
    idempotency key, so such a request is reported as :class:`claynb.OutcomeUnknown`.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_initial_s: float = DEFAULT_BACKOFF_INITIAL_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    jitter: float = DEFAULT_JITTER
    max_retry_after_s: float = DEFAULT_MAX_RETRY_AFTER_S
    max_sends_per_item: int | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.max_sends_per_item is not None and self.max_sends_per_item < 1:
            raise ConfigError(
                f"max_sends_per_item must be at least 1, not {self.max_sends_per_item}"
            )
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter must be between 0 and 1, not {self.jitter}")
        if self.backoff_initial_s < 0 or self.backoff_max_s < 0 or self.max_retry_after_s < 0:
            raise ConfigError("backoff and retry-after limits must not be negative")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retries: for tests and callers with their own retry loop."""
        return cls(max_attempts=1)

    @property
    def item_cap(self) -> int:
        """POSTs one item may ride in, across every layer."""
        return self.max_sends_per_item or self.max_attempts

    def sends_left(self, sent: int, cap: int | None = None) -> int:
        """How many more failed sends an item that spent ``sent`` may risk (0: none).

        ``cap`` overrides :attr:`item_cap` for one call (a tier's ``max_attempts``).
        """
        return max(0, (cap or self.item_cap) - sent)

    @staticmethod
    def counted(exc: ClayError) -> int:
        """What a failed request spends of its items' cap: every send Clay failed, and one
        for a request that ended still rate-limited (however many 429s it waited through)."""
        ended_waiting = 1 if isinstance(exc, RateLimited) else 0
        return exc.attempts - exc.rate_limited + ended_waiting

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Capped exponential backoff with jitter after the ``attempt``-th failure."""
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** max(0, attempt - 1))
        return delay * (1.0 - self.jitter * rng.random())

    def delays(self, retries: int) -> tuple[int, ...]:
        """The same backoff, without jitter, as whole seconds: RQ's retry intervals."""
        return tuple(
            max(1, math.ceil(min(self.backoff_max_s, self.backoff_initial_s * 2.0**n)))
            for n in range(retries)
        )


#: Table webhook sources (observed, not documented): ~10 records/s per workspace with a
#: burst of 20, 413 above 100 KB, 50,000 submissions per source for its lifetime.
SOURCE_RECORDS_PER_S = 10.0
SOURCE_BURST = 20
SOURCE_PAYLOAD_LIMIT_BYTES = 100_000
#: Records per request: one. Whether Clay turns a JSON array into several rows is not
#: published (one row holding the array, or a refusal, are as plausible), so arrays are an
#: opt-in (``max_chunk_records=10``, as public clients batch) for a workspace seen to split
#: them. Chunks stay well under the 100 KB cap (headers, encoding slack).
SOURCE_CHUNK_BYTES = 90_000
SOURCE_CHUNK_RECORDS = 1
SOURCE_LIFETIME_CAP = 50_000
#: Rows a table holds on paid plans (Free: 200). A full table drops rows without a word.
TABLE_ROW_LIMIT = 50_000
#: Records are paced at this share of records_per_s: the budget is per workspace and only
#: observed (no X-RateLimit headers on sources to learn from), so keep a margin.
SOURCE_PACING_FRACTION = 0.9
#: Warn once a source has used this share of its lifetime cap: time to plan a new one.
SOURCE_WARN_FRACTION = 0.8


@dataclass(frozen=True)
class SourcePolicy:
    """How records are sent to a Clay table's webhook source.

    The defaults are what Clay is observed to allow; lower them if a workspace is shared
    with other senders (the records/s budget is per workspace, not per client).
    ``max_chunk_records`` is 1 (a JSON object per request) unless the workspace is known to
    split a JSON array into rows. ``row_limit`` is the rows the table holds (Free 200,
    paid plans 50,000): a send that would pass it, or the source's ``lifetime_cap``, is
    stopped before its first record goes out, since Clay drops such rows silently.
    """

    records_per_s: float = SOURCE_RECORDS_PER_S
    burst: int = SOURCE_BURST
    max_chunk_bytes: int = SOURCE_CHUNK_BYTES
    max_chunk_records: int = SOURCE_CHUNK_RECORDS
    payload_limit_bytes: int = SOURCE_PAYLOAD_LIMIT_BYTES
    lifetime_cap: int = SOURCE_LIFETIME_CAP
    row_limit: int = TABLE_ROW_LIMIT
    warn_fraction: float = SOURCE_WARN_FRACTION

    def __post_init__(self) -> None:
        if self.records_per_s <= 0 or self.burst < 1:
            raise ConfigError("records_per_s must be positive and burst at least 1")
        if not 1 <= self.max_chunk_records <= self.burst:
            raise ConfigError(
                f"max_chunk_records must be between 1 and the burst ({self.burst}): "
                "a bigger chunk could never be sent without a 429"
            )
        if not 0 < self.max_chunk_bytes <= self.payload_limit_bytes:
            raise ConfigError("max_chunk_bytes must be positive and within payload_limit_bytes")
        if self.lifetime_cap < 1 or self.row_limit < 1 or not 0.0 < self.warn_fraction <= 1.0:
            raise ConfigError(
                "lifetime_cap and row_limit must be positive and warn_fraction in (0, 1]"
            )

    @property
    def limit(self) -> int:
        """Records this machine may send to one source: the table's rows or the source's
        lifetime submissions, whichever is smaller (both count every record sent)."""
        return min(self.lifetime_cap, self.row_limit)


@dataclass(frozen=True)
class Credentials:
    """An API key and the Clay it opens: what another client or a worker process needs.

    Handed over by :meth:`claynb.ClayClient.credentials` so that a layer above the client
    (the queue tier starting workers) never reads the key from a private attribute. The
    key shows in no repr; :meth:`environ` is the one way it leaves, into a child process's
    environment (never a command line, where ``ps`` would show it).
    """

    api_key: str = field(repr=False)
    base_url: str
    #: The emulator's admin URL when the client was told it talks to one (else None).
    emulator_admin_url: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(base_url={self.base_url!r}, api_key={mask(self.api_key)})"

    def environ(self) -> dict[str, str]:
        """``CLAY_API_KEY`` and ``CLAY_BASE_URL`` (and the emulator's admin URL, when there
        is one), for a worker process's environment."""
        env = {"CLAY_API_KEY": self.api_key, "CLAY_BASE_URL": self.base_url}
        if self.emulator_admin_url:
            env[ENV_ADMIN_URL] = self.emulator_admin_url
        return env


def checked_admin_url(admin_url: str | None, base_url: str) -> str | None:
    """``admin_url`` without a trailing slash, when it is on the same server as
    ``base_url`` (the emulator serves both); a ConfigError otherwise."""
    if not admin_url:
        return None
    admin, base = urlsplit(admin_url), urlsplit(base_url)
    if (admin.scheme, admin.netloc) != (base.scheme, base.netloc):
        raise ConfigError(
            "emulator_admin_url must be on the same server as base_url (an emulator serves "
            f"both); got {admin.scheme}://{admin.netloc} for {base.scheme}://{base.netloc}"
        )
    return admin_url.rstrip("/")


def checked_batch_size(size: int) -> int:
    """``size`` when it is a batch Clay accepts as one run (1 to :data:`MAX_RUN_ITEMS`)."""
    if isinstance(size, bool) or not 1 <= int(size) <= MAX_RUN_ITEMS:
        raise ConfigError(
            f"batch_size must be between 1 and {MAX_RUN_ITEMS} (items per Clay run), not {size!r}"
        )
    return int(size)


def _positive(name: str, value: float | None, default: float) -> float:
    chosen = default if value is None else float(value)
    if chosen <= 0:
        raise ConfigError(f"timeout {name} must be positive, not {chosen}")
    return chosen
