"""Every string a notebook carries, and where it sits, in words a reader can find.

A secret can reach a notebook in many places: a cell's source (run or not), printed
output, a traceback, an HTML table, an SVG, papermill's record of the parameters, the
saved state of a widget, a markdown cell's attachment, any metadata a tool left behind.
So neither the scrubber nor the scanner guesses where to look: both go through every
string of the notebook's JSON, the scrubber rewriting it (:func:`map_strings`), the
scanner reading it with its place (:func:`located_strings`).

Base64 payloads of binary types (PNG, JPEG, PDF, widget buffers) are told apart: a text
search cannot read them and rewriting them corrupts them, so they are decoded and
searched as bytes instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# Keys whose values are base64 of binary data, wherever they appear (outputs, attachments).
BINARY_KEYS = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "buffers"}
)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Located:
    """One string of a notebook: where it is, what it says, and whether it is binary."""

    path: Path
    text: str
    binary: bool = False

    @property
    def where(self) -> str:
        return describe(self.path)

    @property
    def is_source(self) -> bool:
        return len(self.path) >= 3 and self.path[0] == "cells" and self.path[2] == "source"


def map_strings(node: Any, rewrite: Callable[[str], str]) -> Any:
    """A copy of the JSON tree ``node`` with every text string passed through ``rewrite``."""
    if isinstance(node, str):
        return rewrite(node)
    if isinstance(node, dict):
        return {k: v if k in BINARY_KEYS else map_strings(v, rewrite) for k, v in node.items()}
    if isinstance(node, list):
        return [map_strings(v, rewrite) for v in node]
    return node


def located_strings(node: Any, path: Path = (), binary: bool = False) -> Iterator[Located]:
    """Every string in the JSON tree ``node`` (dict keys included), with its path."""
    if isinstance(node, str):
        yield Located(path, node, binary)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield Located((*path, "<key>"), str(key))
            yield from located_strings(value, (*path, key), binary or key in BINARY_KEYS)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from located_strings(value, (*path, index), binary)


def describe(path: Path) -> str:
    """``("cells", 3, "outputs", 0, "data", "text/html")`` as ``cell 4, output 1, text/html``."""
    words: list[str] = []
    rest = list(path)
    while rest:
        head = rest.pop(0)
        if head in ("cells", "outputs") and rest and isinstance(rest[0], int):
            words.append(f"{str(head)[:-1]} {int(rest.pop(0)) + 1}")
        elif head == "data" and len(words) >= 2:
            continue
        elif isinstance(head, int):
            words[-1:] = [f"{words[-1]}[{head}]"] if words else [f"[{head}]"]
        else:
            words.append(str(head))
    if not path or path[0] != "cells":
        words.insert(0, "notebook")
    return ", ".join(words)
