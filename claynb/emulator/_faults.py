"""Faults the emulator can inject, each a probability drawn from a seeded generator.

Clay's network is not perfect and claynb's retry and resume logic must be exercised
against the failures that matter for money: an answer that never comes (was the run
charged?), a server error (nothing was done), a dropped connection, and webhook
deliveries that are lost, repeated or out of order (Clay does not guarantee delivery).
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields

# What a /public/v0 request can suffer, decided by one draw per request.
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
DROP_CONNECTION = "drop_connection"

# What an outbound webhook delivery can suffer, each drawn on its own.
DROP_WEBHOOK = "dropped"
DUPLICATE_WEBHOOK = "duplicate"
REORDER_WEBHOOK = "reordered"
FAIL_WEBHOOK = "failed_attempt"

SERVER_ERROR_STATUSES = (500, 502, 503)


@dataclass(frozen=True)
class Faults:
    """Probabilities (0 to 1) of each fault.

    ``server_error``: a 500, 502 or 503 answered without doing the work.
    ``timeout``: the work is done (a run is started and will be charged) but the answer
    is held back for the emulator's ``slow_s`` so a client times out.
    ``drop_connection``: the TCP connection is closed with no answer; a POST that starts
    work has started it first, a GET does nothing.
    ``drop_webhook`` / ``duplicate_webhook`` / ``reorder_webhook``: an outbound webhook
    delivery is not sent, sent twice, or held back so a later one arrives first.
    ``fail_webhook``: a delivery's first attempt is lost on the way (the receiver never
    sees it); whether Clay tries again is the ``webhook_retries`` setting.
    """

    server_error: float = 0.0
    timeout: float = 0.0
    drop_connection: float = 0.0
    drop_webhook: float = 0.0
    duplicate_webhook: float = 0.0
    reorder_webhook: float = 0.0
    fail_webhook: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(
                    f"Faults.{f.name} must be a probability between 0 and 1, got {value!r}"
                )
        if self.server_error + self.timeout + self.drop_connection > 1.0 + 1e-9:
            raise ValueError("server_error + timeout + drop_connection must not exceed 1")

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{k: float(v) for k, v in data.items()})


class FaultDice:
    """Draws faults from a seeded generator, so a failing test replays the same way."""

    def __init__(self, faults: Faults, seed: int) -> None:
        self.faults = faults
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()

    def request_fault(self) -> str | None:
        """The fault for one /public/v0 request, or None."""
        f = self.faults
        if not (f.server_error or f.timeout or f.drop_connection):
            return None
        with self._lock:
            u = self._rng.random()
        if u < f.server_error:
            return SERVER_ERROR
        if u < f.server_error + f.timeout:
            return TIMEOUT
        if u < f.server_error + f.timeout + f.drop_connection:
            return DROP_CONNECTION
        return None

    def server_error_status(self) -> int:
        with self._lock:
            return self._rng.choice(SERVER_ERROR_STATUSES)

    def webhook_faults(self) -> DeliveryFaults:
        """What one outbound delivery suffers."""
        f = self.faults
        with self._lock:
            return DeliveryFaults(
                self._rng.random() < f.drop_webhook,
                self._rng.random() < f.duplicate_webhook,
                self._rng.random() < f.reorder_webhook,
                self._rng.random() < f.fail_webhook,
            )


@dataclass(frozen=True)
class DeliveryFaults:
    """The faults drawn for one outbound delivery (see :class:`Faults`)."""

    drop: bool = False
    duplicate: bool = False
    reorder: bool = False
    fail_first: bool = False
