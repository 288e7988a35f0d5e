"""The secrets claynb knows by value, and every form they take in a shared notebook.

Known values come from four places: what claynb registered (``claynb._secrets``) in this
process and, reported by the executor, in the kernel (an emulator's generated key, a
webhook signing secret); environment variables whose names say they hold a secret; the
password (or token-like user name) of any URL-valued variable, whatever its name; and
notebook parameters named like secrets (``-p apikey=...``).

A known value is found:

- as is, HTML-escaped, URL-quoted and JSON-escaped (the forms it takes inside exported
  HTML and widget state), each of any length: a short value only as a whole token, so a
  four-letter password does not eat every word that contains it;
- as a fragment of at least :data:`FRAGMENT_MIN` characters when it is token-like (no
  spaces, slashes or colons), because pandas and friends truncate long values in reprs
  (``clay_live_4f9a...``) and the exact value never appears;
- inside base64 runs, decoded, whatever the alignment (``Basic`` credentials, a printed
  ``b64encode(key)``) and in binary payloads (a key in a PNG's text metadata).

Values that are only switches (``1``, ``true``, ``off``) are never secrets: scrubbing them
would rewrite every number in a table and protect nothing.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from claynb._secrets import known_secrets

# Substrings of a name that say it holds a secret wherever they sit in it
# (OPENAI_APIKEY, GITHUB_TOKEN_RO, DB_PASSWORD_FILE, webhookSecret).
_NAME_ANYWHERE = re.compile(
    r"api_?key|secret|passw(?:or)?d|token|credential|private_?key|access_?key", re.IGNORECASE
)
# Last words that say so only at the end (GITHUB_PAT, SENTRY_DSN, X_KEY, but not KEYBOARD);
# pass, pwd and pat only after another word (PWD is the working directory).
_NAME_LAST_WORD = re.compile(
    r"(?:(?:^|[_\-.])(?:key|dsn|auth|cookie|sas|sig|signature)|[_\-.](?:pass|pwd|pat))$",
    re.IGNORECASE,
)
_SECRET_NAMES = frozenset({"database_url"})

# Values of secret-named variables that are switches or small counts, not secrets.
_SWITCHES = frozenset({"", "true", "false", "yes", "no", "on", "off", "none", "null"})

# Shorter values are matched only as whole tokens, longer ones anywhere.
MIN_SUBSTRING = 8
# Truncated reprs keep a prefix; fragments shorter than this would match ordinary text.
FRAGMENT_MIN = 10
# Shorter values are not looked for in decoded bytes: they turn up there by chance.
MIN_IN_BYTES = 6
# Base64 runs long enough to carry a credential (a 6-byte value encodes to 8 characters).
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{8,}={0,2}")
_TOKEN_CHAR = r"A-Za-z0-9_"


def is_secret_name(name: str) -> bool:
    """Whether a variable or parameter called ``name`` holds a secret by its name."""
    return (
        name.lower() in _SECRET_NAMES
        or _NAME_ANYWHERE.search(name) is not None
        or _NAME_LAST_WORD.search(name) is not None
    )


def is_switch(value: str) -> bool:
    """``1``, ``true``, ``off``, ``""``: settings, never secrets."""
    return value.strip().lower() in _SWITCHES or (value.isdigit() and len(value) < 4)


def url_secrets(value: str) -> list[str]:
    """The credential inside a URL: its password, else a token-like user name (16+ chars)."""
    if "://" not in value or "@" not in value:
        return []
    try:
        parts = urlsplit(value.strip())
        password, username = parts.password, parts.username
    except ValueError:
        return []
    if password:
        return [password]
    return [username] if username and len(username) >= 16 else []


def secret_values(value: str, named_secret: bool) -> list[str]:
    """The secret parts of a variable's ``value`` (the whole value for a secret name)."""
    in_url = url_secrets(value)
    if in_url or "://" in value:
        return in_url
    return [value] if named_secret and not is_switch(value) else []


def env_secrets(environ: Mapping[str, str]) -> frozenset[str]:
    """Secret values of an environment: secret-named variables and URL credentials."""
    found: set[str] = set()
    for name, value in environ.items():
        found.update(secret_values(value, is_secret_name(name)))
    return frozenset(found)


def parameter_secrets(parameters: Mapping[str, object]) -> frozenset[str]:
    """Secret values among notebook parameters (``-p apikey=...``), nested ones included."""
    found: set[str] = set()

    def visit(name: str, value: object, named: bool) -> None:
        named = named or is_secret_name(name)
        if isinstance(value, str):
            found.update(secret_values(value, named))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                visit(str(key), item, named)
        elif isinstance(value, list | tuple | set):
            for item in value:
                visit(name, item, named)

    for name, value in parameters.items():
        visit(name, value, False)
    return frozenset(found)


def collect_secrets(*groups: Iterable[str]) -> frozenset[str]:
    """The union of ``groups`` and this process's registered secrets, switches dropped."""
    found = set(known_secrets())
    for group in groups:
        found.update(group)
    return frozenset(s for s in found if not is_switch(s))


def text_forms(secret: str) -> frozenset[str]:
    """The forms a secret takes in exported text: as is, HTML-escaped, URL-quoted, JSON."""
    forms = {
        secret,
        html.escape(secret),
        html.escape(secret, quote=False),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],
    }
    return frozenset(f for f in forms if f)


def is_token_like(secret: str) -> bool:
    """An opaque value (no spaces, slashes or colons), so any long piece of it is secret."""
    return len(secret) > FRAGMENT_MIN and not re.search(r"[\s/:]", secret)


def _fragment_anchors(form: str) -> dict[str, int]:
    """Pieces of ``form`` such that every fragment of FRAGMENT_MIN chars contains one.

    Anchors start every ``step`` characters and are ``FRAGMENT_MIN - step + 1`` long: any
    window of FRAGMENT_MIN characters begins at most ``step - 1`` before an anchor start
    and so holds the whole anchor. Fewer anchors mean fewer searches per text.
    """
    step = 3
    size = FRAGMENT_MIN - step + 1
    return {form[i : i + size]: i for i in range(0, len(form) - size + 1, step)}


@dataclass(frozen=True)
class KnownSecrets:
    """A set of known secret values, ready to be found in text and bytes."""

    values: frozenset[str]
    _exact: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _fragments: tuple[tuple[str, dict[str, int]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        exact: list[re.Pattern[str]] = []
        fragments: list[tuple[str, dict[str, int]]] = []
        for secret in sorted(self.values, key=len, reverse=True):
            for form in sorted(text_forms(secret), key=len, reverse=True):
                literal = re.escape(form)
                if len(secret) < MIN_SUBSTRING:
                    literal = rf"(?<![{_TOKEN_CHAR}]){literal}(?![{_TOKEN_CHAR}])"
                exact.append(re.compile(literal))
                if is_token_like(secret):
                    fragments.append((form, _fragment_anchors(form)))
        object.__setattr__(self, "_exact", tuple(exact))
        object.__setattr__(self, "_fragments", tuple(fragments))

    def __bool__(self) -> bool:
        return bool(self.values)

    def __repr__(self) -> str:
        return f"KnownSecrets({len(self.values)} values)"

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where in ``text`` a known value (whole, encoded, or a long fragment) sits, merged."""
        found: list[tuple[int, int]] = []
        for pattern in self._exact:
            found.extend(m.span() for m in pattern.finditer(text))
        for form, anchors in self._fragments:
            found.extend(_fragment_spans(text, form, anchors))
        return _merge(found)

    def base64_spans(self, text: str) -> list[tuple[int, int]]:
        """Base64 runs in ``text`` that decode to something holding a known value."""
        return [
            m.span()
            for m in _BASE64_RUN.finditer(text)
            if any(self.in_bytes(data) for data in decode_base64(m.group()))
        ]

    def in_bytes(self, data: bytes) -> bool:
        """Whether ``data`` holds a known value, UTF-8 encoded (binary payloads, base64)."""
        return any(s.encode() in data for s in self.values if len(s) >= MIN_IN_BYTES)


def decode_base64(run: str) -> Iterator[bytes]:
    """``run`` decoded as standard and URL-safe base64, from each of the 4 alignments."""
    run = run.rstrip("=")
    for start in range(4):
        piece = run[start:]
        piece = piece[: len(piece) - len(piece) % 4] if len(piece) % 4 == 1 else piece
        padded = piece + "=" * (-len(piece) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                yield decode(padded)
            except (binascii.Error, ValueError):
                continue


def _fragment_spans(text: str, form: str, anchors: dict[str, int]) -> Iterator[tuple[int, int]]:
    for anchor, at in anchors.items():
        start = text.find(anchor)
        while start != -1:
            span = _grow(text, start, form, at, len(anchor))
            if span[1] - span[0] >= FRAGMENT_MIN:
                yield span
            start = text.find(anchor, start + 1)


def _grow(text: str, start: int, form: str, at: int, size: int) -> tuple[int, int]:
    """The longest stretch around ``text[start:start+size]`` that also appears in ``form``."""
    left, right = start, start + size
    while left > 0 and at - (start - left) > 0 and text[left - 1] == form[at - (start - left) - 1]:
        left -= 1
    offset = at + (right - start)
    while right < len(text) and offset < len(form) and text[right] == form[offset]:
        right, offset = right + 1, offset + 1
    return left, right


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
