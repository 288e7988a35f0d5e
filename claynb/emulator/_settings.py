"""The emulator's settings, checked once when it is built.

Real Clay publishes no numbers for its API rate limit, run latency, webhook retries or
HTTP API column timeouts; every one of those is a setting here, with the defaults the
reference notes suggest. Where Clay leaves a *behaviour* unpublished, the setting is an
enum with every plausible variant (:data:`VARIANTS`), so a test can run claynb under each
and a user can make the emulator behave as their workspace is seen to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from claynb._plans import Plan, get_plan
from claynb._routines import DEFAULT_ROUTINES, Cost, Routine
from claynb.emulator._faults import Faults

DEFAULT_SLOW_S = 30.0
#: The Public API's requests per second unless told (None: no limit). Clay enforces a
#: per-workspace limit and publishes no number; one is on by default so that a first run
#: meets pacing as it would on Clay.
DEFAULT_RATE_LIMIT_RPS = 20.0
#: What X-RateLimit-Limit counts (Clay sends the X-RateLimit-* trio "when available" and
#: never says over what window): "per_second", "per_minute" (the same limit announced as
#: a count per minute), or "absent" (no X-RateLimit-* headers; a 429 still has Retry-After).
RATE_LIMIT_HEADERS = ("per_second", "per_minute", "absent")
SOURCE_RATE_PER_S = 10.0
SOURCE_BURST = 20
SOURCE_LIFETIME_CAP = 50_000
SOURCE_MAX_BYTES = 100 * 1024
BATCH_MAX_ROWS = 50_000
WEBHOOK_HOLD_S = 1.0

#: Search (none of these numbers is published; each is a setting).
#: Records a search page may hold: the OpenAPI's maximum, and 50 on Free, the per-request
#: cap Clay's own agent plugin mentions for free plans.
SEARCH_PAGE_MAX = 500
SEARCH_PAGE_CAPS = {"free": 50}
#: A workspace's search quota per period (a calendar month) when no number is given: the
#: plan's monthly Actions, so a bigger plan finds more (Clay publishes no figure).
SEARCH_QUOTA_FALLBACK = 200_000
#: What counts against the quota: "requested" (the page size asked for, as Clay's quota
#: messages word it) or "returned" (the records actually served).
SEARCH_QUOTA_COUNTS = ("requested", "returned")
#: A filters-mode page larger than this is answered 413 (declared there, size unpublished).
SEARCH_MAX_PAGE_BYTES = 1024 * 1024
#: Outbound webhook retries, under ``webhook_retries="retried"``: attempts and first backoff.
WEBHOOK_ATTEMPTS = 3
WEBHOOK_BACKOFF_S = 0.5


class ArrayPosts(StrEnum):
    """What a JSON array posted to a table's webhook source becomes (not published)."""

    ROWS = "rows"  #: one row per record, as public clients that batch arrays assume
    ONE_ROW = "one_row"  #: a single row holding the whole array in one cell (``body``)
    REJECTED = "rejected"  #: answered 400: a source takes one JSON object


class StartFailure(StrEnum):
    """What a 5xx answered to a run-starting POST (run, batch start) means (not published)."""

    NOT_STARTED = "not_started"  #: nothing was started or charged
    STARTED = "started"  #: the run started behind the error and will charge


class CreditsOut(StrEnum):
    """How running out of Actions or Data Credits shows (only a 402 on Search is published).

    At zero Clay stops processing: items not run are not charged, finished ones are kept.
    """

    BOTH = "both"  #: 402 on new work, and items not run come back failed (wording varies)
    PAYMENT_REQUIRED = "402"  #: 402 on new work; items not run are left out of the results
    ITEM_FAILURES = "item_failures"  #: never 402: items not run fail, the wording varies


class WebhookRetries(StrEnum):
    """Whether an outbound webhook delivery that fails is sent again (not published)."""

    NONE = "none"  #: one attempt: a failed delivery is lost (polling must find the run)
    RETRIED = "retried"  #: up to ``webhook_attempts`` attempts, backing off


class SourceCapAnswer(StrEnum):
    """What a webhook source answers past its 50,000-submission lifetime cap (not published)."""

    REFUSED = "refused"  #: 403 with a message; none of that request's records kept
    DROPPED = "dropped"  #: answered like any accepted post; the records silently dropped


#: Every undocumented behaviour, by setting name: its variants, the default first.
VARIANTS: dict[str, type[StrEnum]] = {
    "array_posts": ArrayPosts,
    "start_failure": StartFailure,
    "credits_out": CreditsOut,
    "webhook_retries": WebhookRetries,
    "source_cap_answer": SourceCapAnswer,
}


@dataclass(frozen=True)
class Settings:
    """Everything that shapes the emulator's behaviour; see :class:`claynb.Emulator`."""

    plan: Plan
    run_latency_s: tuple[float, float] = (1.0, 3.0)
    rate_limit_rps: float | None = DEFAULT_RATE_LIMIT_RPS
    rate_limit_burst: float | None = None
    rate_limit_header: str = RATE_LIMIT_HEADERS[0]
    faults: Faults = Faults()
    seed: int = 0
    outcome_seed: int = 0
    slow_s: float = DEFAULT_SLOW_S
    routines: Mapping[str, Routine] = field(default_factory=lambda: dict(DEFAULT_ROUTINES))
    source_rate_per_s: float = SOURCE_RATE_PER_S
    source_burst: float = SOURCE_BURST
    source_lifetime_cap: int = SOURCE_LIFETIME_CAP
    source_max_bytes: int = SOURCE_MAX_BYTES
    batch_max_rows: int = BATCH_MAX_ROWS
    webhook_hold_s: float = WEBHOOK_HOLD_S
    search_period_quota: int | None = None
    search_page_cap: int | None = None
    search_per_search_cap: int | None = None
    search_quota_counts: str = SEARCH_QUOTA_COUNTS[0]
    search_cost_per_record: Cost = Cost()
    search_max_page_bytes: int = SEARCH_MAX_PAGE_BYTES
    array_posts: ArrayPosts = ArrayPosts.ROWS
    start_failure: StartFailure = StartFailure.NOT_STARTED
    credits_out: CreditsOut = CreditsOut.BOTH
    webhook_retries: WebhookRetries = WebhookRetries.NONE
    webhook_attempts: int = WEBHOOK_ATTEMPTS
    webhook_backoff_s: float = WEBHOOK_BACKOFF_S
    source_cap_answer: SourceCapAnswer = SourceCapAnswer.REFUSED
    table_row_limit: int | None = None

    def __post_init__(self) -> None:
        for name, kind in VARIANTS.items():
            object.__setattr__(self, name, variant(name, kind, getattr(self, name)))
        if self.table_row_limit is not None and self.table_row_limit < 1:
            raise ValueError("table_row_limit must be a positive whole number, or None")
        if self.webhook_attempts < 1 or self.webhook_backoff_s < 0:
            raise ValueError("webhook_attempts must be at least 1 and webhook_backoff_s >= 0")
        if self.rate_limit_header not in RATE_LIMIT_HEADERS:
            raise ValueError(
                f"rate_limit_header must be one of {RATE_LIMIT_HEADERS}, "
                f"not {self.rate_limit_header!r}"
            )
        if self.search_quota_counts not in SEARCH_QUOTA_COUNTS:
            raise ValueError(
                f"search_quota_counts must be one of {SEARCH_QUOTA_COUNTS}, "
                f"not {self.search_quota_counts!r}"
            )
        for name in ("search_period_quota", "search_page_cap", "search_per_search_cap"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a whole number of 0 or more, or None")
        if not isinstance(self.search_cost_per_record, Cost):
            raise ValueError("search_cost_per_record must be a claynb.Cost")

    @property
    def search_quota(self) -> int:
        """Search records allowed per period: the setting, else the plan's monthly Actions."""
        if self.search_period_quota is not None:
            return self.search_period_quota
        return int(self.plan.actions) if self.plan.actions is not None else SEARCH_QUOTA_FALLBACK

    @property
    def search_page_limit(self) -> int:
        """Most records one search page may ask for on this plan."""
        if self.search_page_cap is not None:
            return self.search_page_cap
        return SEARCH_PAGE_CAPS.get(self.plan.name, SEARCH_PAGE_MAX)

    @property
    def rows_per_table(self) -> int:
        """Rows a table holds: the setting, else the plan's (Free 200, paid 50,000)."""
        if self.table_row_limit is not None:
            return self.table_row_limit
        return self.plan.rows_per_table

    @property
    def burst(self) -> float:
        """Public API burst: the setting, else one second's worth (at least 1)."""
        if self.rate_limit_burst is not None:
            return max(1.0, float(self.rate_limit_burst))
        return max(1.0, float(self.rate_limit_rps or 1.0))


def variant(name: str, kind: type[StrEnum], value: object) -> StrEnum:
    """``value`` as one of ``kind``'s variants; a ValueError listing them when it is none."""
    try:
        return kind(str(value))  # a member is its own value as text
    except ValueError:
        allowed = ", ".join(repr(v.value) for v in kind)
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}") from None


def parse_latency(
    value: float | int | str | tuple[float, float] | list[float],
) -> tuple[float, float]:
    """A latency as (low, high): a number, a (low, high) pair, or "LOW,HIGH" text."""
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
        if len(parts) not in (1, 2):
            raise ValueError(f"run latency {value!r}: give SECONDS or LOW,HIGH")
        value = (float(parts[0]), float(parts[-1]))
    if isinstance(value, int | float):
        low = high = float(value)
    else:
        low, high = (float(v) for v in value)
    if low < 0 or high < low:
        raise ValueError(f"run latency must be >= 0 with low <= high, got {value!r}")
    return low, high


def build_settings(
    *,
    plan: str | Plan,
    run_latency_s: float | tuple[float, float],
    rate_limit_rps: float | None,
    faults: Faults | None,
    seed: int,
    **extra: object,
) -> Settings:
    """Check and combine the constructor's arguments into :class:`Settings`."""
    if rate_limit_rps is not None and rate_limit_rps <= 0:
        raise ValueError(f"rate_limit_rps must be positive or None, got {rate_limit_rps!r}")
    known = set(Settings.__dataclass_fields__) - {
        "plan",
        "run_latency_s",
        "rate_limit_rps",
        "faults",
        "seed",
    }
    unknown = set(extra) - known
    if unknown:
        raise TypeError(f"unknown emulator setting(s) {sorted(unknown)}; known: {sorted(known)}")
    if "routines" in extra and extra["routines"] is not None:
        extra["routines"] = dict(extra["routines"])  # type: ignore[call-overload]
    else:
        extra.pop("routines", None)
    return Settings(
        plan=get_plan(plan),
        run_latency_s=parse_latency(run_latency_s),
        rate_limit_rps=rate_limit_rps,
        faults=faults or Faults(),
        seed=seed,
        **extra,  # type: ignore[arg-type]
    )
