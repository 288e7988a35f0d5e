"""Letting a reviewed false positive through: by kind, or one value by its fingerprint.

``claynb share --allow KIND`` lets every finding of a kind through (``hex-high-entropy-string``
for a notebook full of content hashes, say). An allowlist file (``--allowlist FILE``)
holds one entry a line, ``#`` starting a comment::

    # run ids printed by the emulator are hex, not secrets (reviewed 2025-01-10)
    hex-high-entropy-string 3f9a1c77d2e8
    # any number of secret-keyword findings: the notebook teaches what not to write
    secret-keyword

A kind alone lets all of that kind through; a kind and a fingerprint (as the stop report
prints it) lets one value through wherever it is. A value claynb knows is secret (kind
``known-secret``) is never let through: it is not a false positive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from claynb.share._scan import KNOWN_SECRET, Finding, all_kinds

_FINGERPRINT = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class Allowlist:
    """Kinds let through everywhere, and ``(kind, fingerprint)`` pairs let through."""

    kinds: frozenset[str] = frozenset()
    values: frozenset[tuple[str, str]] = frozenset()

    def permits(self, finding: Finding) -> bool:
        if finding.kind == KNOWN_SECRET:
            return False
        return finding.kind in self.kinds or (finding.kind, finding.fingerprint) in self.values

    def __or__(self, other: Allowlist) -> Allowlist:
        return Allowlist(self.kinds | other.kinds, self.values | other.values)


def check_kind(kind: str) -> str:
    """``kind`` if the scanner can report it; ValueError naming the kinds otherwise."""
    if kind == KNOWN_SECRET:
        raise ValueError(f"{KNOWN_SECRET} cannot be allowed: claynb knows the value is secret")
    kinds = all_kinds()
    if kind not in kinds:
        names = ", ".join(k for k in kinds if k != KNOWN_SECRET)
        raise ValueError(f"unknown kind {kind!r}; the kinds are: {names}")
    return kind


def allow_kinds(kinds: Iterable[str]) -> Allowlist:
    """The allowlist of ``--allow KIND`` options."""
    return Allowlist(kinds=frozenset(check_kind(k) for k in kinds))


def parse_allowlist(text: str, source: str = "allowlist") -> Allowlist:
    """An allowlist file's entries; ValueError naming the line of a malformed one."""
    kinds: set[str] = set()
    values: set[tuple[str, str]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        try:
            if len(words) == 1:
                kinds.add(check_kind(words[0]))
            elif len(words) == 2 and _FINGERPRINT.fullmatch(words[1]):
                values.add((check_kind(words[0]), words[1]))
            elif words:
                raise ValueError("expected KIND or KIND FINGERPRINT (12 hex digits)")
        except ValueError as exc:
            raise ValueError(f"{source}, line {number}: {exc}") from None
    return Allowlist(frozenset(kinds), frozenset(values))


def read_allowlist(path: Path) -> Allowlist:
    return parse_allowlist(path.read_text(encoding="utf-8"), str(path))
