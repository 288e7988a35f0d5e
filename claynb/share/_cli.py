"""``claynb share NOTEBOOK``: execute a notebook and export it with every secret scrubbed.

Exit status: 0 when every cell ran; 1 when a cell failed (the report is still written,
traceback included, so the reader sees where it stopped); 2 when nothing could be written
(no such notebook, a malformed parameter or allowlist, or a possible secret that could not
be scrubbed safely: the report on stderr names its cell, output and kind, never its value).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from claynb.share._allow import Allowlist, allow_kinds, read_allowlist
from claynb.share._pipeline import Shared, share_notebook


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", type=Path, help="the .ipynb to execute and share")
    parser.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("reports"),
        help="where to write NAME.html and NAME.ipynb (default: ./reports)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a parameter of the cell tagged 'parameters' (repeatable); "
        "VALUE is read as a Python literal when it is one, else text",
    )
    parser.add_argument("--name", help="base name of the written files (default: the notebook's)")
    parser.add_argument(
        "--timeout",
        type=int,
        default=600,
        metavar="SECONDS",
        help="longest one cell may run (default: 600)",
    )
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="export the notebook as it is, outputs and all (still scrubbed and scanned)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="KIND",
        help="let every finding of this kind through, after you reviewed it is not a "
        "secret (repeatable; the stop report names the kind)",
    )
    parser.add_argument(
        "--allowlist",
        type=Path,
        metavar="FILE",
        help="reviewed false positives, one 'KIND' or 'KIND FINGERPRINT' a line",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def parse_parameters(items: list[str]) -> dict[str, Any]:
    from claynb.share._execute import parse_parameter

    return dict(parse_parameter(item) for item in items)


def allowlist(kinds: list[str], path: Path | None) -> Allowlist:
    """``--allow`` kinds and the ``--allowlist`` file's entries, as one allowlist."""
    allowed = allow_kinds(kinds)
    if path is None:
        return allowed
    try:
        return allowed | read_allowlist(path)
    except OSError as exc:
        raise ValueError(f"cannot read the allowlist {path}: {exc.strerror}") from None


def progress_printer(enabled: bool) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A per-cell progress bar on stderr, and the function that closes it."""
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar: dict[str, Any] = {}

    def on_cell(index: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=total,
                desc="running",
                unit="cell",
                file=sys.stderr,
                leave=False,
                bar_format="{desc}: {bar} {n_fmt}/{total_fmt} cells [{elapsed}]",
            )
        bar["bar"].n = index
        bar["bar"].refresh()

    return on_cell, lambda: bar["bar"].close() if "bar" in bar else None


def report(shared: Shared, out: Callable[[str], None]) -> int:
    """Tell the user what was written and how it went (path on stdout); the exit status."""
    for name in shared.unknown_parameters:
        out(f"warning: parameter {name!r} is not set in the notebook's 'parameters' cell")
    ran = f"; ran in {shared.duration_s:.1f} s" if shared.duration_s else ""
    out(f"scrubbed {shared.scrubbed} secret occurrence(s){ran}")
    for finding in shared.allowed:
        out(f"let through as reviewed: {finding}")
    out(f"notebook: {shared.ipynb.resolve()}")
    if shared.error:
        out(f"error: the notebook stopped: {shared.error} (the report shows where)")
    print(shared.html.resolve())  # stdout holds only the report's path, for scripts
    return 1 if shared.error else 0


def run(args: argparse.Namespace) -> int:
    def err(msg: str) -> None:
        print(msg, file=sys.stderr)

    source: Path = args.notebook
    if not source.is_file():
        err(f"claynb share: no such notebook: {source}")
        return 2
    try:
        parameters = parse_parameters(args.parameter)
        allowed = allowlist(args.allow, args.allowlist)
    except ValueError as exc:
        err(f"claynb share: {exc}")
        return 2
    on_cell, close = progress_printer(not args.quiet)
    try:
        shared = share_notebook(
            source,
            args.output_dir,
            name=args.name,
            parameters=parameters,
            execute=not args.no_execute,
            cell_timeout_s=args.timeout,
            on_cell=on_cell,
            allow=allowed,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        close()
        err(f"claynb share: {exc}")
        return 2
    close()
    return report(shared, err)
