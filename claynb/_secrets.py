"""Keeping API keys and signing secrets out of everything a person can read.

Secrets are registered when a client, emulator or receiver is built with one, and
:func:`redact` replaces every registered value, plus anything shaped like a key in a
header or a URL, with ``[REDACTED]``. Errors, log lines, reprs and shared notebooks all
pass through it.
"""

from __future__ import annotations

import re
import threading

REDACTED = "[REDACTED]"

_lock = threading.Lock()
_known: set[str] = set()

# Shapes that are secret whatever their value: auth headers, signing secrets, tokens in URLs.
_PATTERNS = [
    re.compile(
        r"(?i)(clay-api-key|x-clay-webhook-auth|authorization|x-api-key|x-claynb-secret)"
        r"(['\"]?\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+"
    ),
    re.compile(r"(?i)([?&](?:api_key|apikey|token|key|secret|access_token|auth)=)[^&\s'\"]+"),
    re.compile(r"whsec_[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)(CLAY_API_KEY\s*=\s*['\"]?)[^\s'\"]+"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so :func:`redact` hides it wherever it appears."""
    if value and len(value) >= 6:
        with _lock:
            _known.add(value)


def known_secrets() -> frozenset[str]:
    """Every value registered so far (for scrubbing exported notebooks)."""
    with _lock:
        return frozenset(_known)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and secret-shaped value replaced."""
    if not text:
        return text
    for secret in sorted(known_secrets(), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _PATTERNS[2].sub(REDACTED, text)
    text = _PATTERNS[3].sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return text


def mask(value: str | None) -> str:
    """A fixed stand-in for a secret in a repr: says whether one is set, nothing more."""
    return "None" if not value else "'***'"
