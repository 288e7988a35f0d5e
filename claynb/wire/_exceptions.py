"""One exception tree for everything claynb raises.

    ClayError                      root: every claynb failure
    ├── ConfigError                bad settings, before anything is sent
    ├── TransportError             the request never got a usable answer
    │   └── OutcomeUnknown         a POST that may have reached Clay: not re-sent blindly
    ├── HTTPStatusError            Clay answered with an error status
    │   ├── AuthenticationError    401
    │   ├── CreditsExhausted       402: retrying will not help
    │   ├── Forbidden              403 (for instance tables on a non-Enterprise plan)
    │   ├── NotFound               404
    │   ├── PayloadTooLarge        413
    │   ├── RateLimited            429 after the retries ran out
    │   └── ServerError            5xx after the retries ran out
    ├── SignatureError             an outbound webhook whose signature does not verify
    └── BudgetExceeded             a claynb.Budget cannot pay for the work

Messages never include an API key or a signing secret: every error's text goes
through :func:`claynb._secrets.redact` before it is stored.
"""

from __future__ import annotations

from typing import Any

from claynb._secrets import redact


class ClayError(Exception):
    """Root of every error claynb raises.

    ``method`` and ``url`` describe the request that failed, when there was one,
    ``attempts`` how many times it was sent and ``rate_limited`` how many of those sends
    were answered 429.
    """

    #: What an operation got done before it failed, for operations that report progress
    #: (``send_to_source`` attaches its SourceReport: sent, unknown and unsent records).
    report: Any = None

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        attempts: int = 0,
        rate_limited: int = 0,
    ) -> None:
        self.message = redact(message)
        self.method = method
        self.url = redact(url) if url else None
        #: How many times the request was sent before this error (0: never, or not a request).
        self.attempts = attempts
        #: Of those sends, how many Clay answered 429 (asked to wait).
        self.rate_limited = rate_limited
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigError(ClayError, ValueError):
    """Settings that cannot work, caught before any request is sent."""


class TransportError(ClayError):
    """No usable answer: connection refused or dropped, or a timeout."""


class OutcomeUnknown(TransportError):
    """A POST that may have reached Clay and been charged.

    Clay has no idempotency key, so claynb never re-sends such a request on its own:
    ``item_ids`` are the items whose fate is unknown, for the caller to resume or re-send.
    """

    def __init__(self, message: str, *, item_ids: list[str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.item_ids = list(item_ids or [])


class HTTPStatusError(ClayError):
    """Clay answered with an error status; ``status`` is the category (no stable codes)."""

    def __init__(
        self, message: str, *, status: int, retry_after: float | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        return f"{self.status}: {self.message}{where}"


class AuthenticationError(HTTPStatusError):
    """401: a missing or wrong ``clay-api-key`` header."""


class CreditsExhausted(HTTPStatusError):
    """402: Actions or Data Credits are spent. Retrying will not help."""


class Forbidden(HTTPStatusError):
    """403: the key is valid but the plan or user lacks the feature."""


class NotFound(HTTPStatusError):
    """404: an unknown routine, run, table or webhook source."""


class PayloadTooLarge(HTTPStatusError):
    """413: the body is over the size Clay accepts."""


class RateLimited(HTTPStatusError):
    """429 still answered after every retry allowed was spent."""


class ServerError(HTTPStatusError):
    """5xx still answered after every retry allowed was spent."""


class SignatureError(ClayError):
    """An outbound webhook delivery whose ``X-Clay-Signature`` does not verify."""


class BudgetExceeded(ClayError):
    """A :class:`claynb.Budget` cannot pay for the work asked of it."""


_BY_STATUS: dict[int, type[HTTPStatusError]] = {
    401: AuthenticationError,
    402: CreditsExhausted,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    429: RateLimited,
}


def error_for_status(status: int) -> type[HTTPStatusError]:
    """The exception class that stands for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, HTTPStatusError)
