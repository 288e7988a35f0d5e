"""Running a notebook headless, with parameters, on the Python that runs claynb.

The kernel is always this interpreter (``sys.executable``), not whatever ``python3`` kernel
a machine happens to have registered: the notebook must see the claynb being shared, and
on a fresh clone that is the one in ``.venv``. Parameters are injected the papermill way
(a cell tagged ``injected-parameters`` after the cell tagged ``parameters``, and
``metadata.papermill.parameters``), so a notebook
shared here runs the same under papermill.

A failing cell does not lose the run: execution stops there, the notebook keeps every
output up to and including the traceback, and the caller decides what to do with it.
Before the kernel shuts down, one hidden cell asks it which secrets it registered (an
emulator's generated key, a signing secret): they exist only in the kernel's memory, and
the scrubber must know them.
"""

from __future__ import annotations

import ast
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

_SECRETS_MARKER = "CLAYNB-KERNEL-SECRETS:"
KERNEL_DIED = "the kernel died"

# Runs inside the kernel after the notebook; prints the secrets it knows as one JSON line.
# It fails (and the run publishes nothing) if the kernel cannot import claynb.
_SECRETS_PROBE = f"""
def _claynb_probe():
    import json, os
    from claynb._secrets import known_secrets
    from claynb.share._known import env_secrets
    found = set(known_secrets()) | env_secrets(os.environ)
    print({_SECRETS_MARKER!r} + json.dumps(sorted(found)))
_claynb_probe()
del _claynb_probe
"""


class Interrupted(RuntimeError):
    """The run was stopped from outside (SIGINT or SIGTERM) before the notebook finished."""


class _ThisPythonKernel(AsyncKernelManager):
    """A kernel manager whose kernel is always ``sys.executable`` running ipykernel."""

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (claynb)",
            language="python",
            resource_dir="",
        )


@dataclass
class Execution:
    """An executed notebook and what is known about the run."""

    notebook: NotebookNode
    started_at: datetime
    duration_s: float
    error: str | None = None
    # None when the kernel could not be asked (it died, or the probe failed): the caller
    # must then assume it held secrets nobody can name, and not publish.
    kernel_secrets: frozenset[str] | None = field(default_factory=frozenset)
    unknown_parameters: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_parameter(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line: a Python literal when it is one, else a string.

    ``true``/``false``/``null`` are accepted too, as papermill users type them.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"parameter {text!r} is not of the form name=value")
    lowered = raw.strip().lower()
    if lowered in ("true", "false", "null", "none"):
        return key, {"true": True, "false": False}.get(lowered)
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def declared_parameters(nb: NotebookNode) -> set[str] | None:
    """Names assigned in the cell tagged ``parameters``; None when there is no such cell."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            names: set[str] = set()
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:  # IPython magics: the names cannot be known
                return None
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
            return names
    return None


def inject_parameters(nb: NotebookNode, parameters: Mapping[str, Any]) -> NotebookNode:
    """A copy of ``nb`` with an ``injected-parameters`` cell, placed as papermill places it.

    The cell goes right after the one tagged ``parameters`` (at the top when there is none)
    and its assignments override the defaults there. Values are Python literals, so their
    ``repr`` is valid source.
    """
    out = nbformat.from_dict(nb)
    if not parameters:
        return out
    lines = ["# Parameters"] + [f"{k} = {v!r}" for k, v in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines) + "\n")
    cell.metadata["tags"] = ["injected-parameters"]
    tagged = [i for i, c in enumerate(out.cells) if "parameters" in c.metadata.get("tags", [])]
    out.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    out.metadata["papermill"] = {"parameters": dict(parameters)}
    return out


def read_notebook(path: Path) -> NotebookNode:
    """Read a notebook, dropping outputs and footers left by an earlier run."""
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if "claynb-footer" not in c.metadata.get("tags", [])]
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    return nb


def execute_notebook(
    nb: NotebookNode,
    *,
    parameters: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    cell_timeout_s: int | None = 600,
    on_cell: Callable[[int, int], None] | None = None,
) -> Execution:
    """Run every cell of ``nb`` (a copy) in a fresh kernel and return the executed copy.

    ``env`` is the kernel's whole environment (default: this process's). ``on_cell(i, n)``
    is called before cell ``i`` of ``n`` runs, for progress.
    """
    language = nb.metadata.get("kernelspec", {}).get("language", "python")
    if language.lower() != "python":
        raise ValueError(f"this notebook's kernel runs {language}; claynb runs Python notebooks")
    declared = declared_parameters(nb)
    unknown = tuple(sorted(set(parameters or {}) - (declared or set())))
    work = inject_parameters(nb, parameters or {})
    client = NotebookClient(
        work,
        kernel_name="python3",
        kernel_manager_class=_ThisPythonKernel,
        timeout=cell_timeout_s,
        allow_errors=False,
        record_timing=True,
        coalesce_streams=True,
        store_widget_state=True,
    )
    started, t0 = datetime.now(UTC), time.perf_counter()
    kernel_env = dict(env) if env is not None else None
    error, secrets = asyncio.run(_run(client, cwd, kernel_env, on_cell))
    return Execution(work, started, time.perf_counter() - t0, error, secrets, unknown)


async def _run(
    client: NotebookClient,
    cwd: Path | None,
    env: dict[str, str] | None,
    on_cell: Callable[[int, int], None] | None,
) -> tuple[str | None, frozenset[str] | None]:
    client.reset_execution_trackers()
    # The kernel process's own stderr is its log (start-up chatter, a crash's last words),
    # not the notebook's output: keep it out of the user's terminal, and quote it on a crash.
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
        kwargs: dict[str, Any] = {"cwd": str(cwd) if cwd else None, "stderr": log}
        if env is not None:
            kwargs["env"] = env
        try:
            async with client.async_setup_kernel(**kwargs):
                await _record_language(client)
                error = await _run_cells(client, on_cell)
                client.set_widgets_metadata()
                secrets = None if error == KERNEL_DIED else await _probe_secrets(client)
        except AssertionError:
            # nbclient's own SIGINT/SIGTERM handler already shut the kernel down, and its
            # second clean-up trips on that: say what happened instead of an assert.
            if client.km is None:
                raise Interrupted("interrupted by a signal; the kernel was shut down") from None
            raise
        if error == KERNEL_DIED:
            log.seek(0)
            tail = "\n".join(
                line for line in log.read().splitlines() if "without encryption" not in line
            )[-600:].strip()
            error = f"{KERNEL_DIED}; its last words:\n{tail}" if tail else KERNEL_DIED
    return error, secrets


async def _record_language(client: NotebookClient) -> None:
    assert client.kc is not None
    reply = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
    if reply is not None and "language_info" in reply["content"]:
        client.nb.metadata["language_info"] = reply["content"]["language_info"]


async def _run_cells(
    client: NotebookClient, on_cell: Callable[[int, int], None] | None
) -> str | None:
    """Execute cells in order; stop at the first failure and say where it was."""
    cells = client.nb.cells
    for index, cell in enumerate(cells):
        if on_cell is not None:
            on_cell(index, len(cells))
        try:
            await client.async_execute_cell(
                cell, index, execution_count=client.code_cells_executed + 1
            )
        except CellTimeoutError:
            return f"cell {index + 1} timed out after {client.timeout} s"
        except DeadKernelError:
            return KERNEL_DIED
        except CellExecutionError as exc:
            return f"cell {index + 1} raised {exc.ename}: {exc.evalue}"
    return None


async def _probe_secrets(client: NotebookClient) -> frozenset[str] | None:
    """Ask the kernel which secrets it holds, without a trace in the notebook; None if it won't say."""
    probe = nbformat.v4.new_code_cell(_SECRETS_PROBE)
    client.nb.cells.append(probe)
    try:
        await client.async_execute_cell(probe, len(client.nb.cells) - 1, store_history=False)
    except (CellExecutionError, CellTimeoutError, DeadKernelError):
        return None
    finally:
        client.nb.cells.pop()
    for output in probe.get("outputs", []):
        for line in str(output.get("text", "")).splitlines():
            if line.startswith(_SECRETS_MARKER):
                return frozenset(json.loads(line[len(_SECRETS_MARKER) :]))
    return None
