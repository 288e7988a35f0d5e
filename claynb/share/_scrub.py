"""Taking out, in place, every secret that can be cut out of a notebook safely.

Two things are safe to cut without understanding the text around them: values claynb
knows to be secret (:mod:`claynb.share._known`: whole, encoded, as long fragments, inside
base64), and credentials whose extent their context makes plain
(:mod:`claynb.share._shapes`: URL passwords, Authorization credentials, key headers,
token and signature query parameters). Both become ``[REDACTED]``.

Anything else that looks like a secret is not guessed at here: the scanner
(:mod:`claynb.share._scan`) looks at what the scrubber left, and the export stops.

Colour codes in tracebacks can split a secret in two; when one is found only with the
codes removed, the string loses its colour to lose the secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import nbformat
from nbformat import NotebookNode

from claynb._secrets import REDACTED
from claynb.share._known import KnownSecrets
from claynb.share._shapes import scrub_shapes
from claynb.share._strings import map_strings

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def as_known(secrets: Iterable[str] | KnownSecrets) -> KnownSecrets:
    """``secrets`` ready for matching (built once per notebook, not once per string)."""
    return secrets if isinstance(secrets, KnownSecrets) else KnownSecrets(frozenset(secrets))


def scrub_text(text: str, secrets: Iterable[str] | KnownSecrets) -> str:
    """``text`` with every known secret and every credential shape replaced by ``[REDACTED]``."""
    known = as_known(secrets)
    out = _scrub_plain(text, known)
    if "\x1b[" in out:
        plain = ANSI.sub("", out)
        cleaned = _scrub_plain(plain, known)
        if cleaned != plain:
            out = cleaned
    return out


def _scrub_plain(text: str, known: KnownSecrets) -> str:
    text = _cut(text, known.spans(text))
    text = scrub_shapes(text)
    if known:
        text = _cut(text, known.base64_spans(text))
    return text


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    for start, end in reversed(spans):
        text = text[:start] + REDACTED + text[end:]
    return text


def scrub_notebook(
    nb: NotebookNode, secrets: Iterable[str] | KnownSecrets
) -> tuple[NotebookNode, int]:
    """A scrubbed copy of ``nb`` and how many secrets were replaced in it."""
    known = as_known(secrets)
    tree = json.loads(json.dumps(nb))
    before = json.dumps(tree).count(REDACTED)
    clean = map_strings(tree, lambda text: scrub_text(text, known))
    return nbformat.from_dict(clean), json.dumps(clean).count(REDACTED) - before
