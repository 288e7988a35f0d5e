"""Execute, scrub, scan, export: the one path every shared notebook takes.

Order matters. The footer is added before scrubbing, so nothing written escapes the
scrubber. The scanner then reads what would be written (the .ipynb text, parsed back
string by string, and the HTML) looking for more than the scrubber looked for; anything
it finds that no allowlist lets through stops the export before any file is created, so
a leak means no file at all rather than a file to remember to delete. A notebook whose cell
failed is still written (with its traceback, scrubbed): the reader needs to see where it
stopped, and the caller gets the error to report and exit on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from claynb.share._allow import Allowlist
from claynb.share._execute import Execution, execute_notebook, read_notebook
from claynb.share._export import (
    Footer,
    add_footer,
    template_lines,
    to_html,
    to_ipynb,
    write_atomic,
)
from claynb.share._known import KnownSecrets, collect_secrets, env_secrets, parameter_secrets
from claynb.share._scan import Finding, LeakError, Scanner
from claynb.share._scrub import scrub_notebook, scrub_text


@dataclass(frozen=True)
class Shared:
    """Where a shared notebook was written and how its run went."""

    html: Path
    ipynb: Path
    error: str | None
    scrubbed: int
    duration_s: float
    unknown_parameters: tuple[str, ...] = ()
    allowed: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def output_paths(source: Path, out_dir: Path, name: str | None = None) -> tuple[Path, Path]:
    """``(html, ipynb)`` in ``out_dir``; refuses to overwrite the source notebook."""
    stem = name or source.stem
    html, ipynb = out_dir / f"{stem}.html", out_dir / f"{stem}.ipynb"
    if ipynb.resolve() == source.resolve():
        raise ValueError(
            f"the shared copy would overwrite {source}; choose another output "
            "directory (-o) or name"
        )
    return html, ipynb


def share_notebook(
    source: Path,
    out_dir: Path,
    *,
    name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    execute: bool = True,
    cell_timeout_s: int | None = 600,
    on_cell: Callable[[int, int], None] | None = None,
    allow: Allowlist | None = None,
) -> Shared:
    """Execute ``source`` (unless ``execute`` is False), scrub it, scan it, write HTML and .ipynb.

    ``env`` is the kernel's environment (default: this process's); its secrets are scrubbed
    as well as this process's. Raises :class:`LeakError` (and writes nothing) if the scan
    finds a possible secret that ``allow`` does not let through.
    """
    html_path, ipynb_path = output_paths(source, out_dir, name)
    run = _run(source, parameters, env, execute, cell_timeout_s, on_cell)
    if run.kernel_secrets is None:
        stopped = f" (the notebook stopped: {run.error})" if run.error else ""
        raise LeakError(
            "could not ask the kernel which secrets it held"
            + stopped
            + "; nothing was written, as a precaution"
        )
    known = _known_secrets(run.kernel_secrets, env, parameters)
    footer = Footer(run.started_at, run.duration_s, executed=execute)
    clean, scrubbed = scrub_notebook(add_footer(run.notebook, footer), known)
    title = name or source.stem
    ipynb_text = to_ipynb(clean)
    html_text = to_html(clean, title=title)
    findings = scan_written(known, ipynb_text, html_text, ipynb_path.name, html_path.name, title)
    allowed = allow or Allowlist()
    blocked = [f for f in findings if not allowed.permits(f)]
    if blocked:
        raise LeakError(stop_report(blocked), blocked)
    write_atomic(ipynb_path, ipynb_text)
    write_atomic(html_path, html_text)
    error = scrub_text(run.error, known) if run.error else None
    return Shared(
        html_path,
        ipynb_path,
        error,
        scrubbed,
        run.duration_s,
        run.unknown_parameters,
        tuple(f for f in findings if f not in blocked),
    )


def _known_secrets(
    kernel: frozenset[str], env: Mapping[str, str] | None, parameters: Mapping[str, Any] | None
) -> KnownSecrets:
    """Every secret known by value: the kernel's report, both environments', the parameters'."""
    return KnownSecrets(
        collect_secrets(
            kernel,
            env_secrets(os.environ),
            env_secrets(env if env is not None else {}),
            parameter_secrets(parameters or {}),
        )
    )


def scan_written(
    known: KnownSecrets,
    ipynb_text: str,
    html_text: str,
    ipynb_name: str,
    html_name: str,
    title: str,
) -> list[Finding]:
    """Every possible secret in the two texts about to be written."""
    scanner = Scanner(known)
    return (
        scanner.scan_notebook(nbformat.reads(ipynb_text, as_version=4))
        + scanner.known_in(ipynb_text, ipynb_name)
        + scanner.scan_exported(html_text, html_name, template_lines(title), ipynb_text)
    )


def stop_report(findings: list[Finding]) -> str:
    """What stopped the export, finding by finding, without a single secret value."""
    lines = [
        f"{len(findings)} possible secret(s) that could not be scrubbed safely; "
        "nothing was written:"
    ]
    lines += [f"  {finding}" for finding in findings]
    lines.append(
        "Remove them from the notebook (or its outputs), or, for a reviewed false "
        "positive, let it through with --allow KIND or a line 'KIND FINGERPRINT' in an "
        "allowlist file (--allowlist FILE)."
    )
    return "\n".join(lines)


def _run(
    source: Path,
    parameters: Mapping[str, Any] | None,
    env: Mapping[str, str] | None,
    execute: bool,
    cell_timeout_s: int | None,
    on_cell: Callable[[int, int], None] | None,
) -> Execution:
    if not execute:
        if parameters:
            raise ValueError("parameters need execution; drop --no-execute")
        nb = nbformat.read(str(source), as_version=4)
        return Execution(nb, datetime.now(UTC), 0.0)
    return execute_notebook(
        read_notebook(source),
        parameters=parameters,
        cwd=source.resolve().parent,
        env=env,
        cell_timeout_s=cell_timeout_s,
        on_cell=on_cell,
    )
