"""``claynb demo``: the quickstart notebook on the embedded emulator, as an HTML report.

This is the first thing a new user runs (``make demo``), so it must work on a fresh clone
with nothing configured and must never spend: a real ``CLAY_API_KEY`` in the environment
is ignored here because the allow-spend switch is removed from the kernel's environment
and the notebook's ``allow_spend`` parameter is forced off (``claynb.connect()`` needs both
to reach real Clay). The run gets a fresh, temporary ``CLAYNB_HOME``, so the story the
notebook tells (the first enrichment pays, the second is served by the cache) is the same
every time, whatever earlier runs left in ``./.claynb``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from claynb.share._cli import progress_printer, report
from claynb.share._pipeline import share_notebook

QUICKSTART = "00_quickstart.ipynb"
REPORT_NAME = "quickstart"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("reports"),
        help="where to write quickstart.html and quickstart.ipynb (default: ./reports)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def notebooks_dir() -> Path:
    """The repository's ``notebooks/``, next to the package in an editable install."""
    import claynb

    return Path(claynb.__file__).resolve().parent.parent / "notebooks"


def demo_env(home: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: this one, with spending switched off and a fresh home."""
    env = dict(os.environ if environ is None else environ)
    env.pop("CLAYNB_ALLOW_SPEND", None)
    env["CLAYNB_HOME"] = str(home)
    return env


def _preflight(notebook: Path) -> str | None:
    if importlib.util.find_spec("ipykernel") is None:
        return (
            "the notebook extra is not installed (no ipykernel): run `make demo`, or "
            "pip install -e '.[notebook]'"
        )
    if not notebook.is_file():
        return (
            f"{notebook} not found: claynb demo runs the repository's notebooks, so install "
            "claynb from a clone (pip install -e .) and run it there"
        )
    return None


def run(args: argparse.Namespace) -> int:
    notebook = notebooks_dir() / QUICKSTART
    problem = _preflight(notebook)
    if problem:
        print(f"claynb demo: {problem}", file=sys.stderr)
        return 2
    print(
        f"claynb demo: running {notebook.name} on the embedded Clay emulator "
        "(no credits are spent)",
        file=sys.stderr,
    )
    on_cell, close = progress_printer(not args.quiet)
    with tempfile.TemporaryDirectory(prefix="claynb-demo-") as home:
        try:
            shared = share_notebook(
                notebook,
                args.output_dir,
                name=REPORT_NAME,
                parameters={"allow_spend": False},
                env=demo_env(Path(home)),
                on_cell=on_cell,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            close()
            print(f"claynb demo: {exc}", file=sys.stderr)
            return 2
    close()
    return report(shared, lambda msg: print(msg, file=sys.stderr))
