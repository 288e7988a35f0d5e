"""Looking, after scrubbing, for every secret the scrubber did not (or could not) remove.

The scanner looks for more than the scrubber did, on what would be written:

- every line of every string of the written notebook (sources run or not, outputs of
  every mime type, tracebacks, metadata, widget state, attachments, papermill
  parameters, dict keys included) through detect-secrets, the maintained scanner of
  Yelp's, with all its plugins (cloud keys, tokens, private keys, JWTs, high-entropy
  strings, ``password = "..."``) and its default false-positive filters;
- each string also in its decoded views (colour codes stripped, HTML entities, URL
  quoting and JSON escapes undone), so a secret the scrubber could not see there is
  still found;
- the known values (whole, as fragments, inside base64 and inside binary payloads) and
  the credential shapes, in every view;
- the exported HTML's own lines, except those nbconvert's template writes for any
  notebook (its CSS and scripts are not the notebook's).

Nothing found is ever shown: a :class:`Finding` holds where, what kind, and a short
fingerprint (a truncated SHA-256) by which a reviewed false positive can be let through.

detect-secrets keeps its configuration in a process-wide object; the scan sets it for its
own duration (``default_settings``) and runs one notebook at a time, as ``claynb share``
does. Nothing in it reaches the network: claynb never asks plugins to verify a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from detect_secrets.core.scan import _process_line_based_plugins
from detect_secrets.settings import default_settings

from claynb._secrets import REDACTED
from claynb.share._known import KnownSecrets
from claynb.share._scrub import ANSI
from claynb.share._shapes import shapes_in
from claynb.share._strings import Located, located_strings

KNOWN_SECRET = "known-secret"
_LABELS = {
    KNOWN_SECRET: "a value claynb knows is secret, in a form it cannot cut out",
    "url-password": "password in a URL",
    "url-user-token": "token as a URL's user name",
    "authorization-header": "Authorization credential",
    "key-header": "API key header",
    "cookie-header": "cookie",
    "secret-query-parameter": "token or signature query parameter",
    "webhook-signing-secret": "webhook signing secret",
    "clay-generated-key": "emulator-generated API key",
    "clay-api-key-assignment": "CLAY_API_KEY assignment",
}
_TOKEN_END = frozenset(" \t'\"`<>,;()[]{}")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\([\"\\/])")


@dataclass(frozen=True)
class Finding:
    """A possible secret: where it is, what kind it is, and a fingerprint (never the value)."""

    where: str
    kind: str
    label: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.where}: {self.label} [{self.kind} {self.fingerprint}]"


class LeakError(RuntimeError):
    """Something that may be a secret is still in what would be written; nothing was.

    ``findings`` says where and what kind, never the value.
    """

    def __init__(self, message: str, findings: Iterable[Finding] = ()) -> None:
        super().__init__(message)
        self.findings = tuple(findings)


def fingerprint(value: str) -> str:
    """12 hex digits of SHA-256: enough to name one reviewed value, too few to recover it."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def kind_of(secret_type: str) -> str:
    """detect-secrets' ``"Secret Keyword"`` as the command-line kind ``secret-keyword``."""
    return re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")


def all_kinds() -> dict[str, str]:
    """Every kind the scanner can report, with its label (for ``--allow`` and the docs)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    kinds = {kind_of(t): t for t in get_mapping_from_secret_type_to_class()}
    kinds.update(_LABELS)
    return dict(sorted(kinds.items()))


def views(text: str) -> list[str]:
    """``text`` and its decoded views, each different from the others."""
    out = [text]

    def add(view: str) -> None:
        if view not in out:
            out.append(view)

    if "\x1b[" in text:
        add(ANSI.sub("", text))
    for view in list(out):
        if "&" in view:
            add(html.unescape(view))
    for view in list(out):
        if "%" in view:
            add(unquote(view))
        if "\\" in view:
            add(_JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else m[2], view))
    return out


@dataclass(frozen=True)
class Scanner:
    """Finds possible secrets in a notebook's strings and in exported text."""

    known: KnownSecrets

    def scan_notebook(self, nb: Any) -> list[Finding]:
        """Every finding in the notebook ``nb`` (a JSON tree), located by cell and output."""
        with default_settings():
            found = [f for item in located_strings(nb) for f in self._scan_located(item)]
        return _unique(found)

    def scan_exported(
        self, text: str, name: str, template_lines: frozenset[str], judged: str
    ) -> list[Finding]:
        """Findings in an exported file's ``text`` (HTML, say), template lines left out.

        detect-secrets findings whose value also stands in ``judged`` (the written
        notebook, already scanned string by string, each in its own context) are not
        repeated: a widget's model id is a quoted hex string here, a bare key there.
        """
        lines = [
            (number, line)
            for number, line in enumerate(text.splitlines(), start=1)
            if line not in template_lines
        ]
        found: list[Finding] = []
        with default_settings():
            for number, line in lines:
                where = f"{name}, line {number}"
                for kind, value in self._scan_text(line, "export.html"):
                    if kind in _LABELS or not any(v in judged for v in views(value)):
                        found.append(_finding(where, kind, value))
        return _unique(found)

    def known_in(self, text: str, where: str) -> list[Finding]:
        """Known values (any form) left in ``text``, such as the raw written .ipynb."""
        return [
            _finding(where, KNOWN_SECRET, text[start:end]) for start, end in self.known.spans(text)
        ]

    def _scan_located(self, item: Located) -> Iterator[Finding]:
        if item.binary:
            if self._binary_holds_known(item.text):
                yield _finding(item.where, KNOWN_SECRET, item.text)
            return
        filename = "cell.py" if item.is_source else "output.txt"
        for kind, value in self._scan_text(item.text, filename):
            yield _finding(item.where, kind, value)

    def _scan_text(self, text: str, filename: str) -> Iterator[tuple[str, str]]:
        for view in views(text):
            yield from self._detect_secrets(view, filename)
            for start, end in self.known.spans(view):
                yield KNOWN_SECRET, view[start:end]
            if self.known:
                for start, end in self.known.base64_spans(view):
                    yield KNOWN_SECRET, view[start:end]
            yield from shapes_in(view)

    def _detect_secrets(self, text: str, filename: str) -> Iterator[tuple[str, str]]:
        lines = list(enumerate(text.splitlines(), start=1))
        for secret in _process_line_based_plugins(lines=lines, filename=filename):
            value = secret.secret_value or ""
            if value and value not in REDACTED and REDACTED not in value:
                yield kind_of(secret.type), _whole_token(lines[secret.line_number - 1][1], value)

    def _binary_holds_known(self, payload: str) -> bool:
        try:
            data = base64.b64decode("".join(payload.split()), validate=False)
        except (binascii.Error, ValueError):
            return False
        return self.known.in_bytes(data)


def _whole_token(line: str, value: str) -> str:
    """``value`` grown to the token it sits in (a GitHub token's plugin reports ``ghp``).

    The fingerprint must name the whole credential, or every token of a kind would share one.
    """
    start = line.find(value)
    if start < 0:
        return value
    end = start + len(value)
    while start > 0 and line[start - 1] not in _TOKEN_END:
        start -= 1
    while end < len(line) and line[end] not in _TOKEN_END:
        end += 1
    return line[start:end]


def _finding(where: str, kind: str, value: str) -> Finding:
    label = _LABELS.get(kind) or all_kinds().get(kind, kind)
    return Finding(where, kind, label, fingerprint(value))


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    return list(dict.fromkeys(findings))
