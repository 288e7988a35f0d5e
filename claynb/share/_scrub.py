"""Taking every secret out of an executed notebook before anyone else reads it.

A secret can reach a notebook in many places: a cell's source, printed output, a
traceback (coloured with ANSI codes that can split it), an HTML table, papermill's record
of the parameters, the saved state of a widget. So the scrubber does not guess where to
look: it walks the whole notebook and rewrites every string, except binary payloads
(base64 images), which no text search can read anyway.

What counts as a secret:

- every value claynb registered (``claynb._secrets.known_secrets()``) in this process and,
  reported back by the executor, in the kernel that ran the notebook (an emulator's
  generated key, a webhook signing secret);
- the values of ``CLAY_API_KEY`` and of every environment variable named ``*_SECRET``,
  ``*_TOKEN``, ``*_KEY`` or ``*_PASSWORD``;
- anything :func:`claynb._secrets.redact` recognises by shape: auth headers, tokens in URL
  query strings, ``whsec_`` signing secrets, ``CLAY_API_KEY=...`` assignments.

Each known value is also looked for HTML-escaped, URL-quoted and JSON-escaped, the forms
it takes inside exported HTML and widget state. :func:`find_leaks` is the final check run
on the files as written: it names where a secret survived, never the secret itself.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import nbformat
from nbformat import NotebookNode

from claynb._secrets import REDACTED, known_secrets, redact

SECRET_ENV_NAME = re.compile(r"^(?:CLAY_API_KEY|[A-Za-z0-9_]*_(?:SECRET|TOKEN|KEY|PASSWORD))$",
                             re.IGNORECASE)

# Shorter values would also match ordinary words and numbers in the notebook.
MIN_SECRET_LEN = 6
MIN_ENV_SECRET_LEN = 8

# Base64 payloads: a text search cannot find a secret in them, and rewriting them corrupts.
BINARY_KEYS = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp",
                         "application/pdf", "buffers"})

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class LeakError(RuntimeError):
    """A secret survived scrubbing. The message says where, never what."""


def env_secrets(environ: Mapping[str, str]) -> frozenset[str]:
    """Values of the environment variables whose names say they hold a secret."""
    return frozenset(v for k, v in environ.items()
                     if SECRET_ENV_NAME.match(k) and len(v) >= MIN_ENV_SECRET_LEN)


def collect_secrets(*groups: Iterable[str]) -> frozenset[str]:
    """The union of ``groups`` and this process's registered secrets, too-short ones dropped."""
    found = set(known_secrets())
    for group in groups:
        found.update(group)
    return frozenset(s for s in found if s and len(s) >= MIN_SECRET_LEN)


def variants(secret: str) -> frozenset[str]:
    """The forms a secret takes in exported text: as is, HTML-escaped, URL-quoted, JSON."""
    forms = {secret, html.escape(secret), html.escape(secret, quote=False),
             quote(secret, safe=""), json.dumps(secret)[1:-1]}
    return frozenset(f for f in forms if f)


def _patterns(secrets: Iterable[str]) -> list[str]:
    """Every variant of every secret, longest first so no shorter one cuts a longer one."""
    forms: set[str] = set()
    for secret in secrets:
        forms |= variants(secret)
    return sorted(forms, key=len, reverse=True)


def _replace(text: str, forms: list[str]) -> str:
    for form in forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return text


def _contains(text: str, forms: list[str]) -> bool:
    return any(form in text for form in forms)


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (known or secret-shaped) replaced by ``[REDACTED]``."""
    return _scrub(text, _patterns(secrets))


def _scrub(text: str, forms: list[str]) -> str:
    out = redact(_replace(text, forms))
    if "\x1b[" in out:
        plain = _ANSI.sub("", out)
        if _contains(plain, forms) or redact(plain) != plain:
            # Colour codes split a secret: give up the colour to keep the secret.
            out = redact(_replace(plain, forms))
    return out


def _walk(node: Any, forms: list[str]) -> Any:
    if isinstance(node, str):
        return _scrub(node, forms)
    if isinstance(node, dict):
        return {k: (v if k in BINARY_KEYS else _walk(v, forms)) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, forms) for v in node]
    return node


def scrub_notebook(nb: NotebookNode, secrets: Iterable[str]) -> tuple[NotebookNode, int]:
    """A scrubbed copy of ``nb`` and how many secrets were replaced in it."""
    before = json.dumps(nb).count(REDACTED)
    clean = nbformat.from_dict(_walk(json.loads(json.dumps(nb)), _patterns(secrets)))
    return clean, json.dumps(clean).count(REDACTED) - before


def find_leaks(text: str, secrets: Iterable[str], where: str) -> list[str]:
    """Where in ``text`` a secret survived, described without the secret."""
    leaks = []
    for n, secret in enumerate(sorted(secrets), start=1):
        for form in variants(secret):
            if form in text:
                leaks.append(f"{where}: secret #{n} ({len(secret)} characters) at offset "
                             f"{text.index(form)}")
                break
    return leaks
