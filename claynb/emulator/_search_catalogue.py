"""The emulator's Search filter fields: what ``GET /search/filters-mode/fields`` lists.

Clay publishes no fixed list of filter fields: it serves them per source type at runtime
and asks callers to read them before building filters. The emulator's catalogue follows
the naming of the filters in Clay's own published examples (``job_title_keywords``,
``location_cities_include``), and checks a create request against it the way a 400 would:
an unknown field, a value of the wrong type, or a value outside ``allowed_values``.

The vocabulary (seniorities, industries, sizes, cities) is shared with the record
generator (:mod:`claynb.emulator._search`), so a filter value is always one the generated
records can show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from claynb._routines import _INDUSTRIES
from claynb.emulator._validate import BadRequest
from claynb.wire._results import SourceType

LIST = "string[]"
NUMBER = "number"
MAX_VALUES = 100

SENIORITIES = ("entry", "senior", "manager", "director", "vp", "c_suite")
#: The industries the emulator's enrich-company routine answers with, so the two agree.
INDUSTRIES = tuple(_INDUSTRIES)
SIZES = (
    "1-10",
    "11-50",
    "51-200",
    "201-500",
    "501-1,000",
    "1,001-5,000",
    "5,001-10,000",
    "10,001+",
)
COMPANY_TYPES = ("Privately Held", "Public Company", "Nonprofit", "Partnership", "Self-Employed")
#: (city, state or province, country)
CITIES: tuple[tuple[str, str | None, str], ...] = (
    ("San Francisco", "California", "United States"),
    ("New York", "New York", "United States"),
    ("Austin", "Texas", "United States"),
    ("Chicago", "Illinois", "United States"),
    ("Boston", "Massachusetts", "United States"),
    ("Seattle", "Washington", "United States"),
    ("Toronto", "Ontario", "Canada"),
    ("Vancouver", "British Columbia", "Canada"),
    ("London", "England", "United Kingdom"),
    ("Manchester", "England", "United Kingdom"),
    ("Berlin", "Berlin", "Germany"),
    ("Munich", "Bavaria", "Germany"),
    ("Paris", "Ile-de-France", "France"),
    ("Amsterdam", "North Holland", "Netherlands"),
    ("Stockholm", "Stockholm County", "Sweden"),
    ("Madrid", "Community of Madrid", "Spain"),
    ("Sydney", "New South Wales", "Australia"),
    ("Singapore", None, "Singapore"),
)


@dataclass(frozen=True)
class FilterField:
    """One filter field: its name, value type, what it does, and the values it accepts."""

    name: str
    type: str
    description: str
    allowed_values: tuple[str, ...] = ()

    def answer(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "description": self.description,
        }
        if self.allowed_values:
            out["allowed_values"] = list(self.allowed_values)
        return out


_LOCATION = (
    FilterField(
        "location_cities_include", LIST, "Cities to include, by name (any of them matches)."
    ),
    FilterField(
        "location_countries_include", LIST, "Countries to include, by name (any of them matches)."
    ),
)

FIELDS: dict[SourceType, tuple[FilterField, ...]] = {
    SourceType.PEOPLE: (
        FilterField(
            "job_title_keywords",
            LIST,
            "Words the current job title contains; a person matches when any one is in the title.",
        ),
        FilterField(
            "job_title_exclude_keywords",
            LIST,
            "Words the current job title must not contain.",
        ),
        FilterField("seniority_levels", LIST, "Seniority of the current role.", SENIORITIES),
        *_LOCATION,
        FilterField(
            "company_domains",
            LIST,
            "Domains of the companies people currently work at (acme.com, not a URL).",
        ),
        FilterField("company_industries", LIST, "Industry of the current employer.", INDUSTRIES),
        FilterField("company_sizes", LIST, "Employee count of the current employer.", SIZES),
    ),
    SourceType.COMPANIES: (
        FilterField("industries", LIST, "Industries to include.", INDUSTRIES),
        FilterField("sizes", LIST, "Employee-count ranges to include.", SIZES),
        FilterField("company_types", LIST, "Kinds of organisation to include.", COMPANY_TYPES),
        *_LOCATION,
        FilterField(
            "description_keywords",
            LIST,
            "Words the company description contains; any one of them matches.",
        ),
        FilterField("domains", LIST, "Exact company domains to look up (acme.com, not a URL)."),
        FilterField(
            "min_funding_usd", NUMBER, "Least total funding raised, in US dollars (0 or more)."
        ),
    ),
}

_BEHAVIOR = (
    "A search is a forward-only iterator: each run call returns the records after the "
    "previous page, so a page that was lost cannot be asked for again.",
    "Page while has_more is true; each page counts against the period quota it reports.",
    "Values inside one list field are alternatives (any matches); different fields must all match.",
    "An empty filters object matches every record of the source type.",
)

_GUIDANCE: dict[SourceType, tuple[tuple[str, str, tuple[str, ...]], ...]] = {
    SourceType.PEOPLE: (
        (
            "titles",
            "Prefer a few short title words over full titles: 'revenue operations' finds "
            "'Director of Revenue Operations' and 'Revenue Operations Manager'.",
            ("job_title_keywords", "job_title_exclude_keywords"),
        ),
        (
            "seniority",
            "Combine seniority_levels with title keywords to reach decision makers.",
            ("seniority_levels", "job_title_keywords"),
        ),
        (
            "accounts",
            "To find people at known accounts, search companies first and pass their "
            "domains as company_domains.",
            ("company_domains",),
        ),
    ),
    SourceType.COMPANIES: (
        (
            "firmographics",
            "Industries and sizes take only their allowed values; read them from this list.",
            ("industries", "sizes", "company_types"),
        ),
        (
            "lookup",
            "domains returns exactly the companies named, one record each.",
            ("domains",),
        ),
    ),
}

_EXAMPLES: dict[SourceType, tuple[tuple[str, dict[str, Any]], ...]] = {
    SourceType.PEOPLE: (
        (
            "Revenue operations leaders in Germany",
            {
                "job_title_keywords": ["revenue operations"],
                "seniority_levels": ["director", "vp"],
                "location_countries_include": ["Germany"],
            },
        ),
    ),
    SourceType.COMPANIES: (
        (
            "Mid-sized software companies in the United States",
            {
                "industries": ["Software"],
                "sizes": ["51-200", "201-500"],
                "location_countries_include": ["United States"],
            },
        ),
    ),
}


def fields_answer(source: SourceType) -> dict[str, Any]:
    """The SearchFieldsResponse for one source type."""
    return {
        "source_type": source.value,
        "fields": [f.answer() for f in FIELDS[source]],
        "guidance": {
            "behavior": list(_BEHAVIOR),
            "field_guidance": [
                {"id": gid, "text": text, "fields": list(names)}
                for gid, text, names in _GUIDANCE[source]
            ],
            "create_examples": [
                {"intent": intent, "request": {"source_type": source.value, "filters": filters}}
                for intent, filters in _EXAMPLES[source]
            ],
        },
    }


def check_filters(source: SourceType, filters: Any) -> dict[str, Any]:
    """The filters in canonical form (sorted, de-duplicated, allowed values spelled as
    listed), so that the same search written two ways is the same search; else BadRequest."""
    if not isinstance(filters, Mapping):
        raise BadRequest("'filters' must be an object of filter field -> value")
    by_name = {f.name: f for f in FIELDS[source]}
    unknown = sorted(set(filters) - set(by_name))
    if unknown:
        raise BadRequest(
            f"unknown {source.value} filter field(s) {', '.join(map(repr, unknown))}; "
            f"fields: {', '.join(by_name)} (GET /search/filters-mode/fields lists them)"
        )
    return {name: _value(by_name[name], filters[name]) for name in sorted(filters)}


def _value(spec: FilterField, value: Any) -> Any:
    if spec.type == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise BadRequest(f"filter {spec.name!r} takes a number of 0 or more")
        return value
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= MAX_VALUES
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise BadRequest(
            f"filter {spec.name!r} takes an array of 1 to {MAX_VALUES} non-empty strings"
        )
    if not spec.allowed_values:
        return sorted({v.strip() for v in value}, key=str.lower)
    canonical = {v.lower(): v for v in spec.allowed_values}
    wrong = [v for v in value if v.strip().lower() not in canonical]
    if wrong:
        raise BadRequest(
            f"filter {spec.name!r}: {', '.join(map(repr, wrong))} not allowed; "
            f"allowed: {', '.join(spec.allowed_values)}"
        )
    chosen = {canonical[v.strip().lower()] for v in value}
    return [v for v in spec.allowed_values if v in chosen]
