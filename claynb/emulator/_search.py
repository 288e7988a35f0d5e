"""People and company records for the emulator's searches, generated from the filters.

A search's records are a pure function of (source type, canonical filters, position,
seed): the same search gives the same records in the same order, however it is paged,
and a filter always shows in what it selects (a title keyword is in every title, a city
filter puts every record in one of those cities, an industry filter sets the industry).
Records have exactly the shape of the OpenAPI's ``PublicApiPersonSearchResult`` and
``PublicApiCompanySearchResult``. How many records a search finds is drawn from the same
seed and shrinks as filters narrow it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping
from typing import Any

from claynb.emulator._search_catalogue import (
    CITIES,
    COMPANY_TYPES,
    FIELDS,
    INDUSTRIES,
    SENIORITIES,
    SIZES,
)
from claynb.wire._results import SourceType

#: Records a search with no filters finds.
PEOPLE_UNIVERSE = 180_000
COMPANY_UNIVERSE = 45_000

_FIRST = (
    "Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances",
    "Radia", "Guido", "Sophie", "Tim", "Katherine", "Hedy", "Donald", "Amara", "Kenji",
    "Priya", "Mateo", "Ingrid", "Tariq", "Lena", "Oluwaseun", "Chen", "Aisha", "Jonas",
)  # fmt: skip
_LAST = (
    "Lovelace", "Hopper", "Turing", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen",
    "Perlman", "Knuth", "Okafor", "Tanaka", "Sharma", "Garcia", "Lindqvist", "Haddad",
    "Novak", "Adeyemi", "Wei", "Rahman", "Becker", "Moreau", "Rossi", "Kowalski",
)  # fmt: skip
_FUNCTIONS = (
    "Revenue Operations", "Sales", "Marketing", "Engineering", "Growth", "Data",
    "Finance", "Product", "Customer Success", "Partnerships", "People", "Security",
)  # fmt: skip
_TEMPLATES = {
    "entry": "{} Associate",
    "senior": "Senior {} Specialist",
    "manager": "{} Manager",
    "director": "Director of {}",
    "vp": "VP of {}",
    "c_suite": "Chief {} Officer",
}
_STEMS = (
    "north", "blue", "bright", "clear", "iron", "quant", "ledger", "signal", "harbor",
    "summit", "pixel", "atlas", "vector", "cedar", "lumen", "orbit", "delta", "nimbus",
    "copper", "maple", "tidal", "granite", "falcon", "ember", "prism", "willow", "cobalt",
    "meridian", "juniper", "aurora", "basalt", "kepler", "sable", "zephyr", "onyx", "lattice",
)  # fmt: skip
_TAILS = (
    "beam", "works", "stack", "labs", "ly", "hub", "flow", "grid", "base", "point",
    "forge", "wise", "path", "loop", "craft",
)  # fmt: skip
_TLDS = (".com", ".io", ".co", ".ai")
_REVENUE = {
    "1-10": "$0-$1M",
    "11-50": "$1M-$10M",
    "51-200": "$10M-$50M",
    "201-500": "$50M-$100M",
    "501-1,000": "$100M-$250M",
    "1,001-5,000": "$250M-$1B",
    "5,001-10,000": "$1B-$5B",
    "10,001+": "$5B+",
}


def search_key(source: SourceType, filters: Mapping[str, Any], seed: int) -> str:
    """What seeds a search: its source type, canonical filters and the emulator's seed."""
    blob = json.dumps([source.value, filters, seed], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _rng(key: str, salt: str) -> random.Random:
    digest = hashlib.sha256(f"{key}|{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def company_name(domain: str) -> str:
    """The name a company goes by, from its domain (``north-beam.io`` -> ``North Beam``)."""
    return domain.split(".")[0].replace("-", " ").title()


# --- how many ---------------------------------------------------------------------------

#: Share of records one value of a free-text filter keeps (more values keep more).
_PER_VALUE = {
    "job_title_keywords": 0.04,
    "description_keywords": 0.05,
    "location_cities_include": 0.03,
    "location_countries_include": 0.12,
}
#: Filters with allowed values keep their share of those values.
_ALLOWED = {f.name: f.allowed_values for fs in FIELDS.values() for f in fs if f.allowed_values}


def total_matches(source: SourceType, filters: Mapping[str, Any], key: str) -> int:
    """How many records the search finds (0 when its filters contradict each other)."""
    if source is SourceType.COMPANIES and "domains" in filters:
        return len(filters["domains"])
    if source is SourceType.PEOPLE and not _titles(filters):
        return 0
    rng = _rng(key, "total")
    if source is SourceType.PEOPLE and "company_domains" in filters:
        found = sum(rng.randint(15, 400) for _ in filters["company_domains"])
        return int(found * _share(filters, skip="company_domains"))
    universe = PEOPLE_UNIVERSE if source is SourceType.PEOPLE else COMPANY_UNIVERSE
    return int(universe * _share(filters) * rng.uniform(0.8, 1.2))


def _share(filters: Mapping[str, Any], skip: str | None = None) -> float:
    """The share of all records the filters keep, each narrowing on its own."""
    share = 1.0
    for name, value in filters.items():
        if name != skip:
            share *= _narrowing(name, value)
    return share


def _narrowing(name: str, value: Any) -> float:
    if name in _ALLOWED:
        return len(value) / len(_ALLOWED[name])
    if name in _PER_VALUE:
        return min(1.0, _PER_VALUE[name] * len(value))
    if name == "job_title_exclude_keywords":
        return 0.9
    if name == "min_funding_usd":
        return 0.3 if value > 0 else 1.0
    return 1.0


# --- what ---------------------------------------------------------------------------------


def record(source: SourceType, filters: Mapping[str, Any], key: str, index: int) -> dict[str, Any]:
    """The record at ``index`` (0-based) of the search seeded by ``key``."""
    rng = _rng(key, str(index))
    if source is SourceType.PEOPLE:
        return _person(rng, filters)
    return _company(rng, filters, key, index)


def _titles(filters: Mapping[str, Any]) -> list[str]:
    """Every title a person may have under the filters (empty: the filters contradict)."""
    functions = list(filters.get("job_title_keywords") or _FUNCTIONS)
    excluded = [w.lower() for w in filters.get("job_title_exclude_keywords") or ()]
    titles = [
        _TEMPLATES[level].format(_title_case(fn))
        for level in filters.get("seniority_levels") or SENIORITIES
        for fn in functions
    ]
    return [t for t in titles if not any(w in t.lower() for w in excluded)]


def _title_case(text: str) -> str:
    return " ".join(w if w.isupper() else w.capitalize() for w in text.split())


def _place(
    rng: random.Random, filters: Mapping[str, Any]
) -> tuple[str | None, str | None, str | None]:
    """(city, state or province, country) within the location filters."""
    cities = filters.get("location_cities_include")
    countries = filters.get("location_countries_include")
    if cities:
        city = rng.choice(cities)
        known = [c for c in CITIES if c[0].lower() == city.lower()]
        if known:
            return known[0]
        return city, None, rng.choice(countries) if countries else None
    if countries:
        country = rng.choice(countries)
        within = [c for c in CITIES if c[2].lower() == country.lower()]
        return rng.choice(within) if within else (None, None, country)
    return rng.choice(CITIES)


def _joined(*parts: str | None) -> str | None:
    text = ", ".join(p for p in parts if p)
    return text or None


def _made_up_domain(rng: random.Random) -> str:
    return f"{rng.choice(_STEMS)}{rng.choice(_TAILS)}{rng.choice(_TLDS)}"


def _company_domain(key: str, index: int) -> str:
    """A domain no other record of the same search has: the index is spread over every
    stem and tail pair by a permutation drawn from the search's key."""
    names = len(_STEMS) * len(_TAILS)
    rng = _rng(key, "names")
    step = rng.choice([n for n in range(names // 3, names) if math.gcd(n, names) == 1])
    slot = (step * index + rng.randrange(names)) % names
    stem, tail = _STEMS[slot % len(_STEMS)], _TAILS[slot // len(_STEMS)]
    repeat = "" if index < names else str(index // names + 1)
    return f"{stem}{tail}{repeat}{_rng(key, f'tld{index}').choice(_TLDS)}"


def _person(rng: random.Random, filters: Mapping[str, Any]) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, state, country = _place(rng, filters)
    domains = filters.get("company_domains")
    employer = company_name(rng.choice(domains) if domains else _made_up_domain(rng))
    started = f"{rng.randrange(2012, 2026)}-{rng.randrange(1, 13):02d}"
    where = _joined(city, state, country)
    return {
        "clay_profile_id": rng.randrange(10**8, 10**9),
        "name": f"{first} {last}",
        "first_name": first,
        "last_name": last,
        "location": {"name": where, "city": city, "state_or_province": state},
        "matched_experiences": [
            {
                "company": employer,
                "title": rng.choice(_titles(filters)),
                "location": where,
                "start_date": started,
                "end_date": None,
            }
        ],
    }


def _company(
    rng: random.Random, filters: Mapping[str, Any], key: str, index: int
) -> dict[str, Any]:
    domains = filters.get("domains")
    domain = domains[index] if domains else _company_domain(key, index)
    name = company_name(domain)
    industry = rng.choice(filters.get("industries") or INDUSTRIES)
    size = rng.choice(filters.get("sizes") or SIZES)
    city, state, country = _place(rng, filters)
    keywords = filters.get("description_keywords")
    focus = rng.choice(keywords) if keywords else rng.choice(_FUNCTIONS).lower()
    return {
        "clay_company_id": rng.randrange(10**6, 10**8),
        "name": name,
        "size": size,
        "type": rng.choice(filters.get("company_types") or COMPANY_TYPES),
        "domain": domain,
        "country": country,
        "industry": industry,
        "location": _joined(city, state, country),
        "description": f"{name} is a {industry.lower()} company ({size} employees) "
        f"working on {focus}.",
        "linkedin_url": f"https://www.linkedin.com/company/{domain.split('.')[0]}",
        "annual_revenue": _REVENUE[size],
        "total_funding_amount_range_usd": _funding(rng, filters.get("min_funding_usd", 0)),
    }


def _funding(rng: random.Random, floor: float) -> float | None:
    """Total funding in dollars, at least ``floor`` when a funding filter asks for it."""
    if floor:
        return float(round(floor * rng.uniform(1.0, 4.0)))
    millions = rng.choice([None, 1, 5, 20, 80, 250])
    return None if millions is None else millions * 1_000_000.0
