"""The ``claynb`` command line.

Each subcommand lives beside the code it drives, in a module that provides
``add_arguments(parser)`` and ``run(args) -> int``. They are imported only when chosen,
so ``claynb --help`` stays fast and one broken extra does not break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from claynb._version import __version__

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "emulator": ("claynb.emulator._cli", "serve the Clay emulator on loopback"),
    "worker": ("claynb.queue._cli", "run an RQ worker for the queue tier"),
    "receiver": ("claynb.events._cli", "serve the webhook receiver of the event tier"),
    "dlq": ("claynb.events._dlq_cli", "list or replay the event tier's dead-letter subject"),
    "enrich": ("claynb.pipeline._cli_enrich", "enrich a CSV, Parquet or Excel file through Clay"),
    "search": ("claynb.pipeline._cli_search", "search Clay for people or companies into a file"),
    "simulate": ("claynb.sim._cli", "simulate a tier's volume, latency and cost"),
    "share": ("claynb.share._cli", "execute a notebook and export it with secrets scrubbed"),
    "demo": (
        "claynb.share._demo",
        "run the quickstart on the embedded emulator, write an HTML report",
    ),
    "doctor": ("claynb._doctor", "check a setup for real Clay (or an emulator), spending nothing"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="claynb", description="Clay enrichment from Jupyter.")
    parser.add_argument("--version", action="version", version=f"claynb {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub = subs.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(sub)
        except ModuleNotFoundError as exc:
            sub.set_defaults(_missing=str(exc))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    missing = getattr(args, "_missing", None)
    if missing:
        print(
            f"claynb {args.command}: not available ({missing}); install claynb[all]",
            file=sys.stderr,
        )
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
