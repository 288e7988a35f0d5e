"""The workspace's searches: each one's iterator, the period quota, and what pages charge.

A search is a forward-only iterator, as Clay's is: every run call serves the records after
the previous page and moves on, so a page is never served twice. Every page is counted
against the period quota (a calendar month; ``resets_at`` is the first instant of the
next) and reported in ``period_quota``. An answer is all or nothing: a page the quota,
the per-request cap or the credits cannot cover is refused with 402 and changes nothing,
and a filters-mode page over the size limit is refused with 413 the same way.

Clay lists building from searches among the things that cost no credits, so by default a
search record is free; ``search_cost_per_record`` charges each record served, and those
charges are in the admin meters only, never in a Public API answer. Pure: the caller
holds the state's lock.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from claynb.emulator._meters import Meters, _num
from claynb.emulator._search import record, search_key, total_matches
from claynb.emulator._settings import Settings
from claynb.wire._results import SearchMode, SourceType

DEFAULT_PAGE = 20
CREDITS_EXHAUSTED = "credits exhausted: the workspace has no Actions or Data Credits left"


@dataclass(frozen=True)
class Answer:
    """What the route sends back: a status and a JSON body."""

    status: int
    body: dict[str, Any]


def refusal(status: int, message: str) -> Answer:
    return Answer(status, {"message": message})


@dataclass
class EmulatedSearch:
    """One search and where its iterator stands."""

    id: str
    mode: SearchMode
    source: SourceType
    filters: dict[str, Any]
    key: str
    total: int
    served: int = 0


@dataclass
class Quota:
    """Search records allowed, and used, in the current period (a calendar month, UTC)."""

    limit: int
    used: int = 0
    period: str = ""
    resets_at: str = ""

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def roll(self, wall: float) -> None:
        """A new month gives the whole quota back."""
        now = time.gmtime(wall)
        period = f"{now.tm_year:04d}-{now.tm_mon:02d}"
        if period != self.period:
            year, month = (
                (now.tm_year + 1, 1) if now.tm_mon == 12 else (now.tm_year, now.tm_mon + 1)
            )
            self.period, self.used = period, 0
            self.resets_at = f"{year:04d}-{month:02d}-01T00:00:00.000Z"

    def answer(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "resets_at": self.resets_at,
        }


class SearchBook:
    """Every search of one emulated workspace."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.searches: dict[str, EmulatedSearch] = {}
        self.quota = Quota(settings.search_quota)
        self.reset()

    def reset(self) -> None:
        """A fresh month: the quota back, the counts cleared (searches keep their place)."""
        self.quota.used = 0
        self.pages = 0
        self.records = 0
        self.refused = 0

    # --- create -------------------------------------------------------------------------

    def create(
        self,
        mode: SearchMode,
        source: SourceType,
        filters: dict[str, Any],
        meters: Meters,
        wall: float,
    ) -> Answer:
        """A new search, unless the quota or the credits are already spent (402)."""
        self.quota.roll(wall)
        refused = self._spent(meters)
        if refused is not None:
            return refused
        key = search_key(source, filters, self.settings.outcome_seed)
        search = EmulatedSearch(
            id=f"srch_{uuid.uuid4().hex[:20]}",
            mode=mode,
            source=source,
            filters=filters,
            key=key,
            total=total_matches(source, filters, key),
        )
        self.searches[search.id] = search
        body: dict[str, Any] = {"search_id": search.id}
        if mode is SearchMode.QUERY:
            body["source_type"] = source.value
        return Answer(200, body)

    def _spent(self, meters: Meters) -> Answer | None:
        if self.quota.remaining <= 0:
            return self._refuse(
                402,
                f"search quota exhausted: {self.quota.used:,} of {self.quota.limit:,} records "
                f"used this period; it resets at {self.quota.resets_at}",
            )
        if meters.exhausted():
            return self._refuse(402, CREDITS_EXHAUSTED)
        return None

    def _refuse(self, status: int, message: str) -> Answer:
        self.refused += 1
        return refusal(status, message)

    # --- run ----------------------------------------------------------------------------

    def run(
        self, search_id: str, mode: SearchMode, limit: int, meters: Meters, wall: float
    ) -> Answer:
        """The next page of ``limit`` records, or why it cannot be served (nothing changes)."""
        search = self.searches.get(search_id)
        if search is None or search.mode is not mode:
            return refusal(404, f"{mode.value} search {search_id!r} not found")
        self.quota.roll(wall)
        end = self._end(search)
        count = max(0, min(limit, end - search.served))
        refused = self._refused(limit, count, meters)
        if refused is not None:
            return refused
        first = search.served
        records = [
            record(search.source, search.filters, search.key, i)
            for i in range(first, first + count)
        ]
        if mode is SearchMode.FILTERS:
            refused = self._too_large(records)
            if refused is not None:
                return refused
        if records:
            self._serve(search, records, limit, meters, wall)
        return Answer(200, self._page(search, records, end))

    def _serve(
        self,
        search: EmulatedSearch,
        records: list[dict[str, Any]],
        limit: int,
        meters: Meters,
        wall: float,
    ) -> None:
        """Move the iterator past ``records``, count them on the quota and charge them."""
        first, count = search.served, len(records)
        search.served += count
        self.quota.used += self._counted(limit, count)
        self.pages += 1
        self.records += count
        self._charge(search, records, first, meters, wall)

    def _counted(self, limit: int, count: int) -> int:
        """What a page of ``count`` records, ``limit`` asked for, takes off the quota."""
        return limit if self.settings.search_quota_counts == "requested" else count

    def _refused(self, limit: int, count: int, meters: Meters) -> Answer | None:
        """A 402 when the page is over the plan's cap, the quota left, or the credits."""
        cap = self.settings.search_page_limit
        if limit > cap:
            return self._refuse(
                402,
                f"at most {cap} records per request on the {self.settings.plan.name} plan: "
                f"ask for {cap} or fewer",
            )
        if count == 0:  # nothing left to serve: an empty last page, free
            return None
        counted = self._counted(limit, count)
        if counted > self.quota.remaining:
            return self._refuse(
                402,
                f"search quota: {self.quota.used:,} of {self.quota.limit:,} records already "
                f"requested this period, {self.quota.remaining:,} left (this page asks for "
                f"{counted:,}); it resets at {self.quota.resets_at}",
            )
        unit = self.settings.search_cost_per_record
        if meters.exhausted() or not meters.can_pay(unit * count):
            return self._refuse(402, CREDITS_EXHAUSTED)
        return None

    def _too_large(self, records: list[dict[str, Any]]) -> Answer | None:
        size = len(json.dumps(records, separators=(",", ":")))
        limit = self.settings.search_max_page_bytes
        if size <= limit:
            return None
        return self._refuse(
            413, f"this page would be {size:,} bytes, over the {limit:,}-byte limit: ask for fewer"
        )

    def _end(self, search: EmulatedSearch) -> int:
        cap = self.settings.search_per_search_cap
        return search.total if cap is None else min(search.total, cap)

    def _page(
        self, search: EmulatedSearch, records: list[dict[str, Any]], end: int
    ) -> dict[str, Any]:
        more = search.served < end
        body: dict[str, Any] = {
            "data": records,
            "has_more": more,
            "period_quota": self.quota.answer(),
        }
        if search.mode is SearchMode.QUERY:
            body["source_type"] = search.source.value
            if not more:
                body["exhaustion_reason"] = (
                    "query_limit" if end < search.total else "no_more_results"
                )
        return body

    def _charge(
        self,
        search: EmulatedSearch,
        records: list[dict[str, Any]],
        first: int,
        meters: Meters,
        wall: float,
    ) -> None:
        unit = self.settings.search_cost_per_record
        if unit.is_zero:
            return
        routine = f"search:{search.source.value}"
        id_field = "clay_profile_id" if search.source is SourceType.PEOPLE else "clay_company_id"
        for offset, rec in enumerate(records):
            meters.charge(
                unit,
                (
                    wall,
                    routine,
                    search.id,
                    str(rec[id_field]),
                    f"{search.key[:16]}:{first + offset}",
                    unit.actions,
                    unit.data_credits,
                    None,
                ),
            )

    # --- admin --------------------------------------------------------------------------

    def summary(self, wall: float) -> dict[str, Any]:
        """The admin view: quota, searches, pages and records served, refusals, charges."""
        self.quota.roll(wall)
        unit = self.settings.search_cost_per_record
        return {
            "period_quota": self.quota.answer(),
            "searches": len(self.searches),
            "pages": self.pages,
            "records": self.records,
            "refused": self.refused,
            "actions": _num(unit.actions * self.records),
            "data_credits": _num(unit.data_credits * self.records),
        }
