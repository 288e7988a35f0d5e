"""Helpers shared by the share/export tests (not a test module)."""

from __future__ import annotations

import base64
import fcntl
import html
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import nbformat
import pytest


def once_per_session(
    factory: pytest.TempPathFactory, name: str, produce: Callable[[Path], None]
) -> Path:
    """A directory that ``produce`` fills once per test session, even across xdist workers.

    Module fixtures would run once per worker: ``xdist_group`` is not honoured with
    pytest 9 and xdist 3.8 (no ``@group`` suffix reaches the scheduler), and executing a
    notebook is the slow part of these tests.
    """
    base = factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / f"once-{name}"
    with (root / f"once-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (target / ".done").exists():
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir()
                produce(target)
                (target / ".done").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def python_notebook() -> nbformat.NotebookNode:
    """An empty notebook whose kernelspec says Python, as Jupyter saves one."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def encoded_forms(secret: str) -> dict[str, str]:
    """The forms a secret can take in a written file, by name: raw, URL, HTML, JSON, base64.

    Base64 is checked at each of the three byte alignments (the characters that depend on
    the secret's bytes alone), so a secret inside a longer encoded value is found too.
    """
    forms = {
        "raw": secret,
        "url": quote(secret, safe=""),
        "url-plus": quote_plus(secret),
        "html": html.escape(secret),
        "html-noquote": html.escape(secret, quote=False),
        "json": json.dumps(secret)[1:-1],
        "json-ascii": json.dumps(secret, ensure_ascii=True)[1:-1],
        "json-slash": json.dumps(secret)[1:-1].replace("/", "\\/"),
    }
    data = secret.encode()
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * shift + data).decode()
            core = encoded[-(-8 * shift // 6) : (8 * (shift + len(data))) // 6]
            if len(core) >= 6:
                forms[f"{name}@{shift}"] = core
    return forms


def leaked_forms(secret: str, text: str) -> list[str]:
    """The names of the forms of ``secret`` found in ``text``; long fragments count too."""
    found = [name for name, form in encoded_forms(secret).items() if form in text]
    if len(secret) >= 16:
        windows = {secret[i : i + 12] for i in range(len(secret) - 11)}
        found += [f"fragment@{secret.index(w)}" for w in windows if w in text]
    return found
