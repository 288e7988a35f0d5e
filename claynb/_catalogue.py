"""The routine catalogue file: what claynb knows of a workspace's own routines.

Clay's Public API runs a routine by id (``function:t_0tq9xkz2mUa4``) and says nothing about
it: not its inputs, not its fields, not what a row costs. ``claynb.toml`` says it once for
the whole team, beside the notebooks (the working directory) or under ``CLAYNB_HOME``::

    [routines."function:t_0tq9xkz2mUa4"]
    inputs = { email = "email" }               # input -> kind (claynb._routines.KINDS)
    fields = ["full_name", "title"]            # optional: fields it returns (others come too)
    cost = { actions = 1, data_credits = 2 }   # the most one row can cost

``inputs`` may also be a plain list of names (each read by what its name says). A routine
with no ``cost`` is unpriced: it runs, but no budget can hold it. The project's file wins
over the one under ``CLAYNB_HOME`` for a routine both name.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from claynb._home import state_home
from claynb._routines import Routine, workspace_routine
from claynb.wire._exceptions import ConfigError

CATALOGUE_FILE = "claynb.toml"


def catalogue_paths(home: str | Path | None = None) -> list[Path]:
    """The catalogue files that exist, the project's first: ``./claynb.toml``, then
    ``CLAYNB_HOME/claynb.toml``."""
    found: list[Path] = []
    for path in (Path.cwd() / CATALOGUE_FILE, state_home(home) / CATALOGUE_FILE):
        if path.is_file() and path.resolve() not in {p.resolve() for p in found}:
            found.append(path)
    return found


def load_catalogue(home: str | Path | None = None) -> dict[str, Routine]:
    """Every routine the catalogue files declare (the project's file wins)."""
    routines: dict[str, Routine] = {}
    for path in reversed(catalogue_paths(home)):
        routines.update(read_catalogue(path))
    return routines


def read_catalogue(path: Path) -> dict[str, Routine]:
    """The routines one catalogue file declares; a ConfigError naming the file and the
    entry when something in it cannot be read."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the routine catalogue: {exc}") from exc
    entries = data.get("routines", {})
    if not isinstance(entries, Mapping):
        raise ConfigError(f'{path}: [routines."ID"] tables are expected, not {entries!r:.80}')
    try:
        return {str(rid): _routine(str(rid), entry) for rid, entry in entries.items()}
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from None


def _routine(routine_id: str, entry: Any) -> Routine:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"routine {routine_id!r} must be a table, not {entry!r:.80}")
    unknown = set(entry) - {"inputs", "fields", "cost"}
    if unknown:
        raise ConfigError(
            f"routine {routine_id!r}: unknown key(s) {sorted(unknown)}; "
            "a routine has inputs, fields and cost"
        )
    inputs, kinds = _inputs(routine_id, entry.get("inputs"))
    fields = entry.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ConfigError(f"routine {routine_id!r}: fields must be a list of names")
    return workspace_routine(
        routine_id, inputs, cost=entry.get("cost"), kinds=kinds, fields=tuple(fields)
    )


def _inputs(routine_id: str, raw: Any) -> tuple[tuple[str, ...], dict[str, str]]:
    """(names, declared kinds) from ``{name = kind}`` or ``[name, ...]``."""
    if isinstance(raw, Mapping) and raw and all(isinstance(v, str) for v in raw.values()):
        return tuple(str(k) for k in raw), {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list) and raw and all(isinstance(v, str) for v in raw):
        return tuple(raw), {}
    raise ConfigError(
        f'routine {routine_id!r}: inputs must name at least one input: {{ email = "email" }} '
        'or ["email"]'
    )
