"""Lazy re-exports for the subpackages whose dependencies are optional or heavy.

``claynb.queue`` (rq), ``claynb.events`` (FastStream) and ``claynb.services`` list their
public names here instead of importing them, so ``import claynb`` never imports rq or
FastStream and never starts anything; a name's module loads on first use (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, names: Mapping[str, str], aliases: Mapping[str, str] | None = None
) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` for ``package``.

    ``names`` maps each public name to the module defining it; ``aliases`` maps a public
    name to the attribute's own name there when they differ.
    """
    renamed = dict(aliases or {})

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), renamed.get(name, name))

    return sorted(names), __getattr__
