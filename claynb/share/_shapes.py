"""Credentials recognisable by where they sit, which can be cut out leaving the text readable.

These are the shapes ``claynb share`` scrubs in place without knowing the value, because
the credential has a well-defined extent and what surrounds it still reads well:

- the password in a URL (``redis://:[REDACTED]@host``), or a token used as its user name;
- the credential of any ``Authorization`` scheme, the scheme word kept
  (``Basic [REDACTED]``, ``Token [REDACTED]``, ``Digest [REDACTED]``);
- the value of key headers (``X-Api-Key``, ``Clay-Api-Key``, ``Cookie``);
- the value of token and signature query parameters (``X-Amz-Signature``, ``sig``,
  ``access_token``, and any parameter named like a secret);
- claynb's own shapes: ``whsec_`` signing secrets, keys the emulator generates
  (``clay_test_...``), ``CLAY_API_KEY=...`` assignments.

Every shape names the part it removes (the ``secret`` group), so the scanner can also ask
whether one is still there after scrubbing, in a view the scrubber could not rewrite (a
URL-quoted URL, say).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from claynb._secrets import REDACTED
from claynb.share._known import is_secret_name

# What stands in for a credential in code and docs (``f"Bearer {token}"``, ``$TOKEN``, ``***``),
# and what the scrubber itself leaves: nothing to remove.
_PLACEHOLDER = re.compile(
    r"\{[^{}]*\}|\$\{?\w+\}?|%[sr]|\*+|\.\.\.|…|<[\w\- ]+>|" + re.escape(REDACTED)
)
# Query parameters that carry credentials without a secret-sounding name.
_CREDENTIAL_PARAMETERS = frozenset({"code", "jwt", "sig", "se_token"})


@dataclass(frozen=True)
class Shape:
    """One kind of credential-in-context: its kind, its pattern, and an optional check."""

    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[re.Match[str]], bool] = lambda match: True

    def matches(self, text: str) -> Iterator[re.Match[str]]:
        for match in self.pattern.finditer(text):
            secret = match.group("secret")
            if secret and not _PLACEHOLDER.fullmatch(secret) and self.accept(match):
                yield match


def _secret_parameter(match: re.Match[str]) -> bool:
    name = match.group("name")
    return name.lower() in _CREDENTIAL_PARAMETERS or is_secret_name(name)


# A quote as it appears in code, reprs, and HTML-escaped reprs.
_Q = r"(?:[\"']|&quot;|&#x27;|&#39;|&#34;)"
# An Authorization scheme word (Basic, Bearer, Token, Digest, AWS4-HMAC-SHA256, ...).
_SCHEME = r"(?:[A-Za-z][\w.\-]*[ \t]+(?=[^\s\"'<>&]))?"
# One piece of a bare credential; ``="..."`` keeps Digest's quoted parameters inside it.
_PIECE = r"(?:[^\s\"'<>&=]|=\"[^\"\r\n]*\"|=)+"

SHAPES: tuple[Shape, ...] = (
    Shape(
        "url-password",
        re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s/?#@:'\"<>\[\]]*:(?P<secret>[^\s/?#'\"<>]+)@"),
    ),
    Shape(
        "url-user-token",
        re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://(?P<secret>[^\s/?#@:'\"<>\[\]]{16,})@"),
    ),
    Shape(
        "authorization-header",
        re.compile(
            rf"(?i)\b(?:proxy-)?authorization{_Q}?\s*[:=]\s*{_Q}{_SCHEME}"
            rf"(?P<secret>(?:(?!{_Q})[^\r\n<>])+)"
        ),
    ),
    Shape(
        "authorization-header",
        re.compile(
            rf"(?i)\b(?:proxy-)?authorization{_Q}?[ \t]*[:=][ \t]*(?!{_Q}){_SCHEME}"
            rf"(?P<secret>{_PIECE}(?:[ \t,]+{_PIECE})*)"
        ),
    ),
    Shape(
        "key-header",
        re.compile(
            r"(?i)\b(?:x-api-key|api-key|clay-api-key|x-clay-webhook-auth|x-claynb-secret|"
            r"x-auth-token|x-access-token|private-token|x-amz-security-token|x-goog-api-key)"
            rf"{_Q}?\s*[:=]\s*{_Q}?(?P<secret>(?:(?!{_Q})[^\s,}}<>])+)"
        ),
    ),
    Shape(
        "cookie-header",
        re.compile(
            rf"(?i)\b(?:set-)?cookie{_Q}?[ \t]*[:=][ \t]*{_Q}?(?P<secret>(?:(?!{_Q})[^\r\n<>])+)"
        ),
    ),
    Shape(
        "secret-query-parameter",
        re.compile(r"(?<=[?&#;])(?P<name>[A-Za-z][\w.\-]*)=(?P<secret>[^&#\s'\"<>;]+)"),
        _secret_parameter,
    ),
    Shape("webhook-signing-secret", re.compile(r"(?P<secret>whsec_[A-Za-z0-9_\-]+)")),
    Shape("clay-generated-key", re.compile(r"(?P<secret>clay_test_[A-Za-z0-9_\-]{16,})")),
    Shape(
        "clay-api-key-assignment",
        re.compile(r"(?i)CLAY_API_KEY\s*=\s*['\"]?(?P<secret>[^\s'\"()\[\]{},]+)"),
    ),
)


def scrub_shapes(text: str) -> str:
    """``text`` with the credential of every shape replaced by ``[REDACTED]``."""
    for shape in SHAPES:
        spans = [m.span("secret") for m in shape.matches(text)]
        for start, end in reversed(spans):
            text = text[:start] + REDACTED + text[end:]
    return text


def shapes_in(text: str) -> Iterator[tuple[str, str]]:
    """``(kind, credential)`` for every shape still in ``text`` (for the scanner)."""
    for shape in SHAPES:
        for match in shape.matches(text):
            yield shape.kind, match.group("secret")
