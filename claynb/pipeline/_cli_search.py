"""``claynb search``: Clay's Search for people or companies, into a CSV, Parquet or Excel file.

    claynb search companies --filter industries=Software --filter sizes=51-200 \\
        --filter location_countries_include=Germany --limit 200 -o firms.csv
    claynb search people --filters people.json --limit all -o people.parquet
    claynb search --query 'companies where industry = "Software"' -o firms.xlsx

It is :func:`claynb.search` on the command line: the same paging, stopping at ``--limit``,
the end of the results, the period quota or the budget, whichever comes first, every page
in the ledger. ``--filter FIELD=VALUE`` is repeatable: values given for one field are its
alternatives (``--filter industries=Software --filter industries=Fintech``); a value that
is JSON (a number, ``["a", "b"]``) is taken as written; a field whose listed type is not
a list takes a single value. ``--filters FILE`` reads a JSON object of field -> value
first, and ``--filter`` adds to it. Lists in records (a person's ``matched_experiences``)
are written as JSON text to CSV and Excel, and stay nested in Parquet.

A search cannot be resumed: Clay's search is a forward-only iterator whose pages count on
the quota when they are served. So an interrupted search writes nothing (its pages are in
the ledger), and a page lost on the wire ends it with the records fetched before it.

Exit codes: 0 stopped where asked (the limit, or no more results); 1 stopped early, by the
period quota, the budget, Clay refusing payment, or a page lost or refused part-way (what
was fetched is written); 2 nothing fetched: a wrong input, or Clay refused the search
(one line says why); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from claynb._routines import Cost
from claynb.pipeline._cli_options import (
    ExitCode,
    add_budget_arguments,
    add_connection_arguments,
    amount,
    bad_input,
    budget_from,
    client_from,
    interrupted,
    on_emulator,
    say,
)
from claynb.pipeline._files import TableFileError, check_writable, write_frame
from claynb.pipeline._search import DEFAULT_LIMIT, records_frame, search
from claynb.sim._units import count
from claynb.wire._client import ClayClient
from claynb.wire._exceptions import ClayError, ConfigError
from claynb.wire._results import SearchResult, SearchStop, SourceType
from claynb.wire._search_flow import SEARCH_PAGE_SIZE

COMMAND = "search"
#: Stops that are where the user asked the search to end.
FINISHED = (SearchStop.LIMIT, SearchStop.NO_MORE_RESULTS, SearchStop.QUERY_LIMIT)


def _limit(text: str) -> int | None:
    if text.strip().lower() in ("all", "none"):
        return None
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or 'all'") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the limit must be 0 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "kind",
        nargs="?",
        choices=[s.value for s in SourceType],
        help="what to search (not needed with --query, which says it)",
    )
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a structured filter (repeatable; repeated fields are alternatives)",
    )
    parser.add_argument(
        "--filters", type=Path, metavar="FILE", help="a JSON object of filter field -> value"
    )
    parser.add_argument("--query", help="an advanced search query instead of filters")
    parser.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N|all",
        help=f"records to fetch at most (default {DEFAULT_LIMIT}; 'all': as many as allowed)",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=SEARCH_PAGE_SIZE,
        metavar="N",
        help=f"records per request (default {SEARCH_PAGE_SIZE})",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="where to write the records: .csv, .tsv, .parquet, .xlsx",
    )
    add_budget_arguments(parser)
    cost = parser.add_argument_group("cost of a record (Clay lists searches as free)")
    cost.add_argument("--cost-actions", type=amount, metavar="N", help="worst case per record")
    cost.add_argument("--cost-data-credits", type=amount, metavar="N", help="worst case per record")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_connection_arguments(parser)


def parse_filter(item: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` as (field, value): JSON when the value is JSON, else the text."""
    name, sep, text = item.partition("=")
    if not sep or not name.strip() or not text.strip():
        raise ConfigError(
            f"--filter {item!r}: write FIELD=VALUE, e.g. --filter industries=Software"
        )
    text = text.strip()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(value, dict) or value is None:
        value = text  # an object or null is not a filter value: it is text someone typed
    return name.strip(), value


def read_filters(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        filters = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read --filters {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"--filters {path} is not JSON: {exc}") from None
    if not isinstance(filters, dict):
        raise ConfigError(f"--filters {path} must hold a JSON object of field -> value")
    return filters


def is_list_type(type_name: str | None) -> bool:
    """Whether a field's listed type takes several values (unknown types are taken as lists,
    as every filter in Clay's published examples is)."""
    if not type_name:
        return True
    text = type_name.lower()
    return "[]" in text or "array" in text or "list" in text


def combine(
    base: dict[str, Any], items: list[tuple[str, Any]], types: dict[str, str]
) -> dict[str, Any]:
    """``--filter`` values added to the file's filters: a field's values gathered into a
    list, unless its listed type takes one value and one was given."""
    given: dict[str, list[Any]] = {}
    for name, value in items:
        given.setdefault(name, []).extend(value if isinstance(value, list) else [value])
    filters = dict(base)
    for name, values in given.items():
        single = len(values) == 1 and not is_list_type(types.get(name))
        filters[name] = values[0] if single else values
    return filters


def field_types(client: ClayClient, kind: str | None) -> dict[str, str]:
    """Each filter field's listed type (a free request), or nothing if it cannot be read."""
    if kind is None:
        return {}
    try:
        fields = client.search_fields(kind)
    except ClayError:
        return {}
    return {str(f.get("name")): str(f.get("type") or "") for f in fields.fields}


def filters_from(args: argparse.Namespace, client: ClayClient) -> dict[str, Any] | None:
    """The structured filters the flags describe, or None for a query search."""
    items = [parse_filter(item) for item in args.filter]
    if args.query is not None:
        if items or args.filters is not None:
            raise ConfigError("give --filter/--filters or --query, not both")
        return None
    if args.kind is None:
        raise ConfigError("say what to search: claynb search people|companies ...")
    types = field_types(client, args.kind) if items else {}
    return combine(read_filters(args.filters), items, types)


def record_cost(args: argparse.Namespace) -> Cost | None:
    if args.cost_actions is None and args.cost_data_credits is None:
        return None
    return Cost(args.cost_actions or 0.0, args.cost_data_credits or 0.0)


def run(args: argparse.Namespace) -> int:
    try:
        check_writable(args.output)
        client = client_from(args, COMMAND)
        filters = filters_from(args, client)
    except (TableFileError, ClayError) as exc:
        return bad_input(COMMAND, str(exc))
    budget, cost = budget_from(args), record_cost(args)
    if cost is None and any(
        v is not None for v in (args.budget_actions, args.budget_data_credits, args.budget_usd)
    ):
        say(COMMAND, "search pages cost nothing unless --cost-* says so: the budget caps nothing")
    try:
        frame = search(
            args.kind,
            filters=filters,
            query=args.query,
            limit=args.limit,
            page_size=args.page_size,
            cost=cost,
            client=client,
            budget=budget,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        return interrupted(COMMAND, "nothing written (the pages fetched are in the ledger)")
    except ClayError as exc:
        if isinstance(exc.report, SearchResult) and exc.report.pages:
            return cut_short(args, exc, exc.report, client)
        return bad_input(COMMAND, str(exc))
    return finish(args, frame, client)


def finish(args: argparse.Namespace, frame: pd.DataFrame, client: Any) -> int:
    try:
        write_frame(frame, args.output)
    except TableFileError as exc:
        return bad_input(COMMAND, f"{exc} (the search's quota is spent: write elsewhere soon)")
    info = frame.attrs.get("search") or {}
    stop = SearchStop(info["stop"]) if info.get("stop") else SearchStop.NO_MORE_RESULTS
    print(summary_line(args.output, frame, info, on_emulator(client)), flush=True)
    if stop in FINISHED:
        return ExitCode.DONE
    say(
        COMMAND,
        f"stopped early ({stop.value}){': ' + info['message'] if info.get('message') else ''}",
    )
    return ExitCode.NOT_DONE


def cut_short(args: argparse.Namespace, exc: ClayError, result: SearchResult, client: Any) -> int:
    """A page lost on the wire or refused part-way: write the records fetched before it
    (their quota is spent, and Clay cannot serve them again), say so, exit 1."""
    kind = result.search.source_type if result.search is not None else None
    frame = records_frame(result.records, kind)
    try:
        write_frame(frame, args.output)
    except TableFileError as write_error:
        return bad_input(COMMAND, str(write_error))
    print(summary_line(args.output, frame, {"pages": result.pages}, on_emulator(client)))
    say(COMMAND, f"stopped: {exc}; the records before it are written")
    return ExitCode.NOT_DONE


def summary_line(output: Path, frame: pd.DataFrame, info: dict[str, Any], emulator: bool) -> str:
    quota = info.get("period_quota") or {}
    left = f"; quota left {count(quota['remaining'])}" if quota.get("remaining") is not None else ""
    stop = f", stopped at {info['stop']}" if info.get("stop") else ""
    where = " (emulator)" if emulator else ""
    return (
        f"{output}: {count(len(frame))} records in {count(info.get('pages') or 0)} page(s)"
        f"{stop}{left}{where}"
    )
