"""Signing and verifying Clay's outbound webhook deliveries.

Clay signs each delivery with ``X-Clay-Signature: sha256=<hex HMAC-SHA256 of the raw
body>`` using the webhook's signing secret. The signature covers the exact bytes sent, so
verify the raw body before parsing it (re-serialised JSON would not match), and compare
in constant time so response timing leaks nothing about the expected digest. No
timestamp is signed: a replayed delivery verifies, so consumers de-duplicate on
``routine_run_id``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from claynb._secrets import register_secret
from claynb.wire._exceptions import SignatureError

SIGNATURE_HEADER = "X-Clay-Signature"
_PREFIX = "sha256="
_HEX = frozenset("0123456789abcdef")


def sign(secret: str, raw_body: bytes) -> str:
    """The ``X-Clay-Signature`` value Clay would send for ``raw_body`` (for tests and the
    emulator)."""
    register_secret(secret)
    digest = hmac.new(_secret_bytes(secret), raw_body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(
    secret: str | Iterable[str], raw_body: bytes, header_value: str | None
) -> bool:
    """True when ``header_value`` is ``sha256=<hex>`` of ``raw_body`` under ``secret``.

    ``secret`` may be several signing secrets (a receiver behind several webhooks): the
    delivery verifies under any of them, and every one is compared, each in constant time,
    so the time taken says nothing about how close a forgery came. The ``sha256=`` prefix
    is required (Clay always sends it; scheme and hex are case-insensitive); a missing,
    bare or malformed signature is simply False.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    given = signature_digest(header_value)
    if given is None or not isinstance(raw_body, bytes | bytearray):
        return False
    given_bytes = given.encode("ascii")
    ok = False
    for one in secrets:
        if not one:
            continue
        register_secret(one)
        expected = hmac.new(_secret_bytes(one), bytes(raw_body), hashlib.sha256).hexdigest()
        ok |= hmac.compare_digest(expected.encode("ascii"), given_bytes)
    return ok


def signature_digest(header_value: str | None) -> str | None:
    """The lower-case hex digest of a well-formed ``sha256=<64 hex>`` header, else None.

    A receiver asks this before reading a body: a delivery whose header could never
    verify is refused without reading a byte of what follows it.
    """
    if not header_value:
        return None
    scheme, _, given = header_value.strip().partition("=")
    if scheme.lower() != _PREFIX[:-1] or len(given) != 64:
        return None
    given = given.lower()
    return given if all(c in _HEX for c in given) else None


def require_signature(secret: str, raw_body: bytes, header_value: str | None) -> None:
    """Raise :class:`claynb.SignatureError` unless the delivery verifies (for receivers
    that prefer an exception to a flag). The message never includes the secret."""
    if not verify_signature(secret, raw_body, header_value):
        state = "missing" if header_value is None else "does not match the body"
        raise SignatureError(f"{SIGNATURE_HEADER} {state}: delivery rejected")


def _secret_bytes(secret: str) -> bytes:
    return secret.encode("utf-8")
