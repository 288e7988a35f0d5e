"""The emulator's advanced search queries (query mode, beta in Clay).

Clay serves its query grammar as a reference document (``GET /search/query-mode/reference``)
and detects the source type from the query; it publishes the grammar only through that
endpoint. The emulator serves its own, smaller grammar the same way, and every query maps
onto the filters of :mod:`claynb.emulator._search_catalogue`, so a query and the filters
it stands for are the same search and give the same records::

    people where title contains "revenue operations" and country in ("Germany", "France")

Count-mode and jobs queries are refused with a 400, as Clay documents they are not
supported; so is ``or`` (alternatives are listed with ``in (...)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from claynb.emulator._search_catalogue import FIELDS, check_filters
from claynb.emulator._validate import BadRequest
from claynb.wire._results import SourceType

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>\d+(?:\.\d+)?)
      | (?P<symbol>>=|=|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class QueryField:
    """A field a query may name, the operators it takes, and the filter each one sets."""

    name: str
    ops: dict[str, str]  # operator -> filter field
    description: str


def _any_of(filter_name: str, description: str, name: str) -> QueryField:
    return QueryField(name, {"=": filter_name, "in": filter_name}, description)


QUERY_FIELDS: dict[SourceType, tuple[QueryField, ...]] = {
    SourceType.PEOPLE: (
        QueryField(
            "title",
            {"contains": "job_title_keywords", "not contains": "job_title_exclude_keywords"},
            "current job title",
        ),
        _any_of("seniority_levels", "seniority of the current role", "seniority"),
        _any_of("location_cities_include", "city", "city"),
        _any_of("location_countries_include", "country", "country"),
        _any_of("company_domains", "domain of the current employer", "company_domain"),
        _any_of("company_industries", "industry of the current employer", "company_industry"),
        _any_of("company_sizes", "employee count of the current employer", "company_size"),
    ),
    SourceType.COMPANIES: (
        _any_of("industries", "industry", "industry"),
        _any_of("sizes", "employee-count range", "size"),
        _any_of("company_types", "kind of organisation", "type"),
        _any_of("location_cities_include", "city", "city"),
        _any_of("location_countries_include", "country", "country"),
        QueryField("description", {"contains": "description_keywords"}, "company description"),
        _any_of("domains", "exact company domain", "domain"),
        QueryField("funding", {">=": "min_funding_usd"}, "total funding in US dollars"),
    ),
}


def parse_query(text: str) -> tuple[SourceType, dict[str, Any]]:
    """The source type a query searches and the filters it stands for; else BadRequest."""
    tokens = _tokens(text)
    head = tokens[0][1].lower() if tokens else ""
    if head == "count":
        raise BadRequest("count-mode queries are not supported: ask for records")
    if head == "jobs":
        raise BadRequest("jobs queries are not supported: search people or companies")
    try:
        source = SourceType(head)
    except ValueError:
        raise BadRequest(
            "a query starts with 'people' or 'companies' (GET /search/query-mode/reference)"
        ) from None
    return source, check_filters(source, _conditions(source, tokens[1:]))


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise BadRequest(f"cannot read the query at {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _conditions(source: SourceType, tokens: list[tuple[str, str]]) -> dict[str, Any]:
    if not tokens:
        return {}
    if tokens[0][1].lower() != "where":
        raise BadRequest(f"expected 'where' after {source.value!r}, got {tokens[0][1]!r}")
    fields = {f.name: f for f in QUERY_FIELDS[source]}
    filters: dict[str, Any] = {}
    rest = tokens[1:]
    while True:
        name, op, value, rest = _condition(rest, fields)
        target = fields[name].ops[op]
        if target in filters:
            raise BadRequest(f"{name!r} appears twice: list its values with in (...)")
        filters[target] = value
        if not rest:
            return filters
        joiner = rest[0][1].lower()
        if joiner == "or":
            raise BadRequest("'or' is not supported: list alternatives with in (...)")
        if joiner != "and":
            raise BadRequest(f"expected 'and' between conditions, got {rest[0][1]!r}")
        rest = rest[1:]


def _condition(
    tokens: list[tuple[str, str]], fields: dict[str, QueryField]
) -> tuple[str, str, Any, list[tuple[str, str]]]:
    if not tokens or tokens[0][0] != "word" or tokens[0][1].lower() not in fields:
        got = tokens[0][1] if tokens else "the end of the query"
        raise BadRequest(f"expected a field ({', '.join(fields)}), got {got!r}")
    name = tokens[0][1].lower()
    op, rest = _operator(tokens[1:])
    if op not in fields[name].ops:
        raise BadRequest(f"{name!r} takes {' or '.join(map(repr, fields[name].ops))}, not {op!r}")
    value, rest = _value(rest, many=op != ">=")
    return name, op, value, rest


def _operator(tokens: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    words = [t[1].lower() for t in tokens[:2]]
    if words[:2] == ["not", "contains"]:
        return "not contains", tokens[2:]
    if words and words[0] in ("=", ">=", "in", "contains"):
        return words[0], tokens[1:]
    raise BadRequest(f"expected an operator (=, in, contains, not contains, >=), got {words[:1]}")


def _value(tokens: list[tuple[str, str]], *, many: bool) -> tuple[Any, list[tuple[str, str]]]:
    if not tokens:
        raise BadRequest("a condition needs a value")
    kind, text = tokens[0]
    if kind == "number" and not many:
        return float(text) if "." in text else int(text), tokens[1:]
    if kind == "string" and many:
        return [_unquote(text)], tokens[1:]
    if text == "(" and many:
        values, rest = [], tokens[1:]
        while rest and rest[0][0] == "string":
            values.append(_unquote(rest[0][1]))
            rest = rest[1:]
            if rest and rest[0][1] == ",":
                rest = rest[1:]
        if not values or not rest or rest[0][1] != ")":
            raise BadRequest('a list is ("a", "b", ...) of quoted values')
        return values, rest[1:]
    raise BadRequest(f"unexpected value {text!r}: quote text, give a number after >=")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def reference() -> str:
    """The query reference document (markdown), built from the same tables the parser uses."""
    lines = [
        "# Search queries (emulator)",
        "",
        "A query names what it searches, then the conditions every record must meet:",
        "",
        '    people where title contains "growth" and country in ("Germany", "France")',
        '    companies where industry = "Software" and funding >= 10000000',
        "",
        "Operators: `=` and `in (...)` (any of the values), `contains` and `not contains`",
        "(text, any of the values), `>=` (numbers). Conditions are joined with `and`; list",
        "alternatives with `in (...)`. Count-mode and jobs queries are not supported.",
        "Values with allowed lists take exactly those values (see the filters-mode fields).",
    ]
    for source, fields in QUERY_FIELDS.items():
        allowed = {f.name: f.allowed_values for f in FIELDS[source]}
        lines += ["", f"## {source.value}", "", "| field | operators | meaning | values |"]
        lines.append("|---|---|---|---|")
        for field in fields:
            values = allowed.get(next(iter(field.ops.values())), ())
            lines.append(
                f"| {field.name} | {', '.join(field.ops)} | {field.description} | "
                f"{', '.join(values) or 'any'} |"
            )
    return "\n".join(lines) + "\n"
