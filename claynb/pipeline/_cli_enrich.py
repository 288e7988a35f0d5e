"""``claynb enrich FILE``: enrich a CSV, Parquet or Excel file from a terminal.

    claynb enrich leads.csv -r enrich-person -i email=Email --budget-data-credits 500
    claynb enrich leads.xlsx -r find-work-email -i full_name=Name -i company_domain=Domain \\
        -o out/leads.parquet --estimate

It is :func:`claynb.enrich` on the file: the same normalising, de-duplication, cache,
journal and budget, so the same command after a Ctrl-C, a crash or a ``kill -9`` continues
where it stopped and pays for nothing twice (runs already started are collected, answers
already in come from the cache). That state lives under ``CLAYNB_HOME`` (default
``./.claynb``): run the command again from the same place. The output (default beside
the input: ``leads.enriched.csv``) is every input column plus claynb's ``clay_*`` columns,
in the input's row order. ``--estimate`` prices the work and spends nothing.

Exit codes (see :class:`~claynb.pipeline._cli_options.ExitCode`): 0 when every row is done
(answered, served from the cache, or ``invalid_input``, which no re-run would change);
1 when some rows are ``over_budget``, ``failed`` or ``unknown`` (the file is written, and
a line on stderr says how a re-run finishes them); 2 for a wrong input, nothing sent;
130 interrupted.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from claynb._routines import Cost, Routine
from claynb.pipeline._budget import Budget
from claynb.pipeline._cli_options import (
    ExitCode,
    add_budget_arguments,
    add_connection_arguments,
    bad_input,
    budget_from,
    client_from,
    interrupted,
    on_emulator,
    say,
)
from claynb.pipeline._enrich import enrich
from claynb.pipeline._estimate import Estimate, estimate
from claynb.pipeline._files import (
    TableFileError,
    check_writable,
    enriched_path,
    read_frame,
    write_frame,
)
from claynb.pipeline._merge import DEFAULT_PREFIX, check_columns
from claynb.pipeline._normalise import resolve_columns
from claynb.pipeline._plan import resolve_routine
from claynb.pipeline._work import STATUSES, Status
from claynb.sim._units import count, money
from claynb.wire._exceptions import ClayError

COMMAND = "enrich"
#: Statuses a later run can still change: the command is not done while a row has one.
NOT_DONE = (Status.OVER_BUDGET, Status.FAILED, Status.UNKNOWN)
#: What to do about rows left in each of those statuses.
NEXT_STEP = {
    Status.OVER_BUDGET: "raise the budget and run the same command (paid rows come from the cache)",
    Status.FAILED: "add --retry-failed to send them again",
    Status.UNKNOWN: "Clay may have run them: --resend-unknown sends them again, "
    "accepting that Clay may charge them twice",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the table to enrich: .csv, .tsv, .parquet, .xlsx")
    parser.add_argument("-r", "--routine", required=True, help="the Clay routine id")
    parser.add_argument(
        "-i",
        "--input",
        action="append",
        default=[],
        metavar="INPUT=COLUMN",
        help="which column feeds a routine input (repeatable; default: the column named "
        "like the input, in any case)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="where to write the enriched table, format from the extension "
        "(default: beside FILE, e.g. leads.enriched.csv)",
    )
    parser.add_argument("--estimate", action="store_true", help="price the work and spend nothing")
    add_budget_arguments(parser)
    group = parser.add_argument_group("rows a previous run left")
    group.add_argument(
        "--retry-failed", action="store_true", help="send rows that failed before again"
    )
    group.add_argument(
        "--resend-unknown",
        action="store_true",
        help="send again rows whose earlier send has an unknown outcome (may pay twice)",
    )
    group.add_argument(
        "--refresh", action="store_true", help="ignore cached answers and enrich every row again"
    )
    tuning = parser.add_argument_group("output and sending")
    tuning.add_argument(
        "--prefix", default=DEFAULT_PREFIX, help="prefix of the added columns (default clay_)"
    )
    tuning.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the file's own columns that have the names enrich writes",
    )
    tuning.add_argument("--concurrency", type=int, metavar="N", help="Clay runs in flight at once")
    tuning.add_argument("--batch-size", type=int, metavar="N", help="rows per Clay run (1-100)")
    tuning.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_connection_arguments(parser)


@dataclass
class Job:
    """One enrich command, checked before anything is sent."""

    source: Path
    output: Path
    frame: pd.DataFrame
    routine: Routine
    inputs: dict[str, str]
    budget: Budget


def parse_inputs(items: list[str]) -> dict[str, str]:
    """``-i email=Email`` flags as ``{"email": "Email"}``; a ValueError for a malformed one."""
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ValueError(f"-i {item!r}: write INPUT=COLUMN, e.g. -i email=Email")
        mapping[name.strip()] = column.strip()
    return mapping


def resolve_inputs(frame: pd.DataFrame, routine: Routine, given: dict[str, str]) -> dict[str, str]:
    """Every routine input mapped to a column: as given, else the column named like it in
    any case (``Email`` for ``email``); a ValueError saying which flag is missing."""
    by_lower = {str(c).lower(): str(c) for c in frame.columns}
    mapping = {
        name: by_lower[name.lower()]
        for name in routine.inputs
        if name not in given and name.lower() in by_lower
    }
    mapping.update(given)
    try:
        return resolve_columns(frame, routine, mapping)
    except ValueError as exc:
        raise ValueError(f"{exc} (on the command line: -i INPUT=COLUMN)") from None


def check_output(job: Job, prefix: str, overwrite: bool) -> None:
    """Refuse what would lose work: writing over the input, or over its own columns."""
    if job.output.resolve() == job.source.resolve():
        raise ValueError(
            f"-o {job.output} is the input file: the same command could not be run again; "
            "write elsewhere"
        )
    try:
        check_columns(job.frame, job.routine, prefix, overwrite)
    except ValueError as exc:
        raise ValueError(
            f"{job.source}: {exc} (on the command line: --prefix, --overwrite)"
        ) from None


def prepare_job(args: argparse.Namespace, client: Any) -> Job:
    """Read and check everything the command was given; nothing is sent."""
    source: Path = args.file
    output = args.output if args.output is not None else enriched_path(source)
    check_writable(output)  # before the input is read, and long before anything is spent
    frame = read_frame(source)
    given = parse_inputs(args.input)
    # A workspace routine (function:t_...) in no catalogue is named by its -i inputs.
    routine = resolve_routine(args.routine, client, inputs=given)
    inputs = resolve_inputs(frame, routine, given)
    job = Job(source, output, frame, routine, inputs, budget_from(args))
    check_output(job, args.prefix, args.overwrite)
    # A free request (GET /me): a wrong key is one line and exit 2 here, not every row
    # journalled as failed by the first paid request.
    client.me()
    return job


def row_options(job: Job, args: argparse.Namespace, client: Any) -> dict[str, Any]:
    """What enrich and its estimate are both told, so ``--estimate`` prices exactly the
    rows the same command without it would send."""
    return {
        "client": client,
        "budget": job.budget,
        "refresh": args.refresh,
        "retry_failed": args.retry_failed,
        "resend_unknown": args.resend_unknown,
    }


def backend_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {"concurrency": args.concurrency, "batch_size": args.batch_size}
    return {name: value for name, value in options.items() if value is not None}


def run(args: argparse.Namespace) -> int:
    try:
        client = client_from(args, COMMAND)
        job = prepare_job(args, client)
    except (TableFileError, ValueError, ClayError) as exc:
        return bad_input(COMMAND, str(exc))
    if args.estimate:
        return print_estimate(job, args, client)
    try:
        out = enrich(
            job.frame,
            job.routine,
            job.inputs,
            **row_options(job, args, client),
            prefix=args.prefix,
            overwrite=args.overwrite,
            progress=not args.quiet,
            **backend_options(args),
        )
    except KeyboardInterrupt:
        return interrupted(
            COMMAND, "every answer Clay gave is kept: run the same command to continue"
        )
    except (ValueError, ClayError) as exc:
        return bad_input(COMMAND, str(exc))
    try:
        write_frame(out, job.output)
    except TableFileError as exc:
        return bad_input(
            COMMAND,
            f"{exc}; the answers are cached: the same command with another -o "
            "writes them without paying again",
        )
    return report(job, out, client, args.prefix)


def report(job: Job, out: pd.DataFrame, client: Any, prefix: str) -> ExitCode:
    """The one-line summary on stdout, a next step on stderr when rows are left; the code."""
    statuses = out[f"{prefix}status"].value_counts()
    counts = {status: int(statuses.get(status, 0)) for status in STATUSES}
    print(summary_line(job, out, counts, prefix, on_emulator(client)), flush=True)
    left = {status: counts[status] for status in NOT_DONE if counts[status]}
    if not left:
        return ExitCode.DONE
    steps = "; ".join(f"{count(n)} {status}: {NEXT_STEP[status]}" for status, n in left.items())
    say(COMMAND, f"{count(sum(left.values()))} row(s) not done. {steps}")
    return ExitCode.NOT_DONE


def summary_line(
    job: Job, out: pd.DataFrame, counts: dict[Status, int], prefix: str, emulator: bool
) -> str:
    actions = float(out[f"{prefix}actions"].sum())
    credits = float(out[f"{prefix}data_credits"].sum())
    usd = job.budget.dollars(Cost(actions, credits))
    shown = ", ".join(f"{count(n)} {status}" for status, n in counts.items() if n)
    where = " (emulator)" if emulator else ""
    return (
        f"{job.output}: {count(len(out))} rows ({shown or 'none'}); charged "
        f"{count(actions)} Actions, {count(credits)} Data Credits, "
        f"{money(usd, None)} on {job.budget.price.name}{where}"
    )


def print_estimate(job: Job, args: argparse.Namespace, client: Any) -> int:
    """What enriching the file would send and cost, on stdout; nothing is spent."""
    try:
        priced = estimate(job.frame, job.routine, job.inputs, **row_options(job, args, client))
    except (ValueError, ClayError) as exc:
        return bad_input(COMMAND, str(exc))
    for line in estimate_lines(job, priced):
        print(line)
    return ExitCode.DONE


def estimate_lines(job: Job, e: Estimate) -> list[str]:
    lines = [
        f"{job.source}: {count(e.rows)} rows, {count(e.unique)} unique, {count(e.cached)} "
        f"cached, {count(e.invalid)} invalid, {count(e.failed)} failed earlier, "
        f"{count(e.unknown)} unknown: {count(e.to_send)} to send to {e.routine}",
        f"expected: {count(e.expected_actions)} Actions, {count(e.expected_data_credits)} "
        f"Data Credits, {money(e.expected_usd, None)} (match rate {e.match_rate:.0%}, "
        f"{e.basis})",
        f"worst case: {count(e.worst_actions)} Actions, {count(e.worst_data_credits)} "
        f"Data Credits, {money(e.worst_usd, None)} on {e.plan}",
    ]
    if not job.budget.fits(e.worst_case):
        lines.append(
            "the budget is below the worst case: rows it cannot cover will come back "
            "over_budget, unsent and uncharged"
        )
    return lines
