"""Sending rows into a Clay table through its webhook source.

A webhook source (``.../v3/sources/webhook/pull-in-data-from-a-webhook-<uuid>``) takes a
JSON object: one row. Whether a JSON array becomes several rows is not published (one row
holding the array, or a refusal, are as plausible), so records go one per request unless
:class:`claynb.SourcePolicy` says the workspace splits arrays (``max_chunk_records``).
What Clay is observed to allow, and what this module keeps to:

* about 10 records/s per workspace with a burst of 20, 429 beyond: records are paced by a
  token bucket counted in records, not requests;
* at most 100 KB a request, 413 above: a record that could never fit is refused before
  anything is sent; with arrays on, records are packed into arrays of at most
  ``max_chunk_records`` and 90 KB, and a chunk answered 413 anyway is split in two and
  re-sent (413 means not accepted);
* 50,000 submissions per source for its whole life, deletions don't give any back, and a
  table holds 200 rows on Free, 50,000 on paid plans, a full one dropping rows without a
  word: the records sent are counted per source URL in SQLite under ``CLAYNB_HOME`` (so
  the count survives kernel restarts), a warning is raised as the nearer limit nears, and
  a send that would pass it is stopped, with a warning, before its first record goes out.

Rows sent to a source run through the table's enrichment columns, which spend credits,
so a chunk that may have reached Clay (a timeout, a dropped connection) is never re-sent:
it raises :class:`claynb.OutcomeUnknown` whose ``item_ids`` are the record positions, and
whose ``report`` says what was sent, unknown and never sent.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import warnings
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claynb._secrets import redact, register_secret
from claynb.wire._config import SourcePolicy
from claynb.wire._exceptions import (
    ClayError,
    ConfigError,
    Forbidden,
    OutcomeUnknown,
    PayloadTooLarge,
)

if TYPE_CHECKING:
    from claynb.wire._core import BaseClient, Flow

logger = logging.getLogger("claynb")

SOURCES_DB = "sources.sqlite3"
AUTH_HEADER = "x-clay-webhook-auth"


class SourceCapWarning(UserWarning):
    """A webhook source nears (or a send would pass) its table's rows or its lifetime cap."""


@dataclass
class SourceReport:
    """What one ``send_to_source`` did. Indices are positions in the records given."""

    url: str
    records: int = 0
    sent: int = 0
    chunks: int = 0
    requests: int = 0
    rate_limited: int = 0
    cap_used: int = 0
    cap_left: int = 0
    unknown: list[int] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.sent} of {self.records} record(s) sent in {self.chunks} chunk(s), "
            f"{len(self.unknown)} unknown, {len(self.unsent)} not sent, "
            f"{self.rate_limited} answer(s) 429, {self.cap_left} left of the lifetime cap"
        )


class SourceTracker:
    """Submissions made to each webhook source, kept in SQLite so the count outlives the
    process. It counts what this machine sent (other senders are invisible to it), so the
    server's 403 at the cap is still handled; the tracker just warns early."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS source_usage ("
                "url TEXT PRIMARY KEY, used INTEGER NOT NULL, updated REAL NOT NULL)"
            )
            yield conn
        finally:
            conn.close()

    def used(self, url: str) -> int:
        """Submissions counted against ``url`` so far."""
        with self._db() as conn:
            row = conn.execute(
                "SELECT used FROM source_usage WHERE url = ?", (_key(url),)
            ).fetchone()
        return int(row[0]) if row else 0

    def add(self, url: str, count: int) -> int:
        """Count ``count`` more submissions (one atomic statement: safe across processes)."""
        with self._db() as conn:
            conn.execute(
                "INSERT INTO source_usage(url, used, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(url) DO UPDATE SET used = used + excluded.used, updated = excluded.updated",
                (_key(url), count, time.time()),
            )
        return self.used(url)

    def mark_full(self, url: str, cap: int) -> None:
        """The server said the cap is reached: believe it over our own count."""
        with self._db() as conn:
            conn.execute(
                "INSERT INTO source_usage(url, used, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(url) DO UPDATE SET used = MAX(used, excluded.used), updated = excluded.updated",
                (_key(url), cap, time.time()),
            )


def tracker_for(home: str | Path) -> SourceTracker:
    return SourceTracker(Path(home) / SOURCES_DB)


def encode_records(records: Sequence[Mapping[str, Any]], policy: SourcePolicy) -> list[bytes]:
    """Each record as compact JSON, refusing (before anything is sent) any that can't fit."""
    if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Sequence):
        raise ConfigError("records must be a list of JSON objects (dicts)")
    encoded = []
    for n, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ConfigError(f"record {n} must be a dict, not {type(record).__name__}")
        try:
            blob = json.dumps(record, separators=(",", ":"), default=str).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"record {n} cannot be sent as JSON: {exc}") from exc
        if len(blob) > policy.payload_limit_bytes:
            raise ConfigError(
                f"record {n} is {len(blob):,} bytes; a webhook source takes at most "
                f"{policy.payload_limit_bytes:,} a request. Nothing was sent."
            )
        encoded.append(blob)
    return encoded


def plan_chunks(sizes: Sequence[int], policy: SourcePolicy) -> list[list[int]]:
    """Group record positions into arrays of at most ``max_chunk_records`` records and
    ``max_chunk_bytes`` bytes (brackets and commas counted), keeping their order."""
    chunks: list[list[int]] = []
    current: list[int] = []
    current_bytes = 2  # "[" and "]"
    for index, size in enumerate(sizes):
        added = size + (1 if current else 0)
        if current and (
            len(current) >= policy.max_chunk_records
            or current_bytes + added > policy.max_chunk_bytes
        ):
            chunks.append(current)
            current, current_bytes, added = [], 2, size
        current.append(index)
        current_bytes += added
    if current:
        chunks.append(current)
    return chunks


def chunk_body(encoded: Sequence[bytes], chunk: Sequence[int]) -> bytes:
    """One record goes as an object (one row everywhere); several as an array."""
    if len(chunk) == 1:
        return encoded[chunk[0]]
    return b"[" + b",".join(encoded[i] for i in chunk) + b"]"


def source_flow(
    core: BaseClient,
    tracker: SourceTracker,
    url: str,
    records: Sequence[Mapping[str, Any]],
    auth_token: str | None,
) -> Flow[SourceReport]:
    """Send ``records`` to the source at ``url``: paced, chunked, capped. See the module doc."""
    policy = core.source_policy
    if not url.startswith(("http://", "https://")):
        raise ConfigError("webhook_url must be the source's full http(s) URL")
    register_secret(auth_token)
    encoded = encode_records(records, policy)
    used = tracker.used(url)
    report = SourceReport(
        url=url,
        records=len(encoded),
        cap_used=used,
        cap_left=max(0, policy.limit - used),
        unsent=list(range(len(encoded))),
    )
    _check_cap(report, policy)
    headers = {"content-type": "application/json"}
    if auth_token:
        headers[AUTH_HEADER] = auth_token
    queue = deque(plan_chunks([len(blob) for blob in encoded], policy))
    while queue:
        chunk = queue.popleft()
        call = core.build_call(
            "POST",
            url,
            content=chunk_body(encoded, chunk),
            headers=headers,
            spends=True,
            item_ids=[str(i) for i in chunk],
        )
        call.pace, call.cost = "source", float(len(chunk))
        try:
            yield call
        except PayloadTooLarge as exc:
            _count(report, call)
            if len(chunk) == 1:
                _with_report(exc, report)
                raise
            half = len(chunk) // 2
            queue.extendleft([chunk[half:], chunk[:half]])
            continue
        except OutcomeUnknown as exc:
            _count(report, call)
            _settle(report, tracker, chunk, policy, unknown=True)
            _with_report(exc, report)
            raise
        except Forbidden as exc:
            _count(report, call)
            tracker.mark_full(url, policy.lifetime_cap)
            report.cap_used, report.cap_left = policy.lifetime_cap, 0
            _with_report(exc, report)
            raise
        except ClayError as exc:
            _count(report, call)
            _with_report(exc, report)
            raise
        _count(report, call)
        _settle(report, tracker, chunk, policy, unknown=False)
    return report


def _limit_name(policy: SourcePolicy) -> str:
    if policy.row_limit < policy.lifetime_cap:
        return f"the table's {policy.row_limit:,} rows (a full table drops rows silently)"
    return f"its {policy.lifetime_cap:,} lifetime submissions (deleting rows gives none back)"


def _check_cap(report: SourceReport, policy: SourcePolicy) -> None:
    after = report.cap_used + report.records
    if report.records > report.cap_left:
        message = (
            f"this send has {report.records:,} record(s) but the webhook source "
            f"{redact(report.url)} has room for {report.cap_left:,} more of "
            f"{_limit_name(policy)}. Nothing was sent: send fewer records, or to a new table "
            "or source (SourcePolicy(row_limit=...) if this table was emptied or is larger)."
        )
        logger.warning("%s", message)
        warnings.warn(message, SourceCapWarning, stacklevel=5)
        raise _with_report(ConfigError(message), report)
    if after >= policy.warn_fraction * policy.limit:
        message = (
            f"webhook source {redact(report.url)} will have taken {after:,} of "
            f"{_limit_name(policy)} after this send; plan a new one before it stops "
            "accepting rows"
        )
        logger.warning("%s", message)
        warnings.warn(message, SourceCapWarning, stacklevel=5)


def _count(report: SourceReport, call: Any) -> None:
    report.requests += call.attempts
    report.rate_limited += call.rate_limited


def _settle(
    report: SourceReport,
    tracker: SourceTracker,
    chunk: list[int],
    policy: SourcePolicy,
    *,
    unknown: bool,
) -> None:
    # A chunk of unknown fate is counted against the cap too: it may well have landed.
    used = tracker.add(report.url, len(chunk))
    report.cap_used, report.cap_left = used, max(0, policy.limit - used)
    done = set(chunk)
    report.unsent = [i for i in report.unsent if i not in done]
    if unknown:
        report.unknown.extend(chunk)
    else:
        report.sent += len(chunk)
        report.chunks += 1


def _with_report(exc: ClayError, report: SourceReport) -> ClayError:
    exc.report = report
    exc.add_note(f"send_to_source: {report.summary()}")
    return exc


def _key(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/")
