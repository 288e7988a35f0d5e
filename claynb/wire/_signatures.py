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

from claynb._secrets import register_secret
from claynb.wire._exceptions import SignatureError

SIGNATURE_HEADER = "X-Clay-Signature"
_PREFIX = "sha256="


def sign(secret: str, raw_body: bytes) -> str:
    """The ``X-Clay-Signature`` value Clay would send for ``raw_body`` (for tests and the
    emulator)."""
    register_secret(secret)
    digest = hmac.new(_secret_bytes(secret), raw_body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(secret: str, raw_body: bytes, header_value: str | None) -> bool:
    """True when ``header_value`` is the signature of ``raw_body`` under ``secret``.

    Accepts ``sha256=<hex>`` (the documented form) and a bare hex digest; anything
    missing or malformed is simply False. The comparison runs in constant time.
    """
    if not secret or header_value is None or not isinstance(raw_body, bytes | bytearray):
        return False
    register_secret(secret)
    given = header_value.strip()
    if given[: len(_PREFIX)].lower() == _PREFIX:
        given = given[len(_PREFIX) :]
    expected = hmac.new(_secret_bytes(secret), bytes(raw_body), hashlib.sha256).hexdigest()
    try:
        return hmac.compare_digest(given.lower().encode("ascii"), expected.encode("ascii"))
    except UnicodeEncodeError:
        return False


def require_signature(secret: str, raw_body: bytes, header_value: str | None) -> None:
    """Raise :class:`claynb.SignatureError` unless the delivery verifies (for receivers
    that prefer an exception to a flag). The message never includes the secret."""
    if not verify_signature(secret, raw_body, header_value):
        state = "missing" if header_value is None else "does not match the body"
        raise SignatureError(f"{SIGNATURE_HEADER} {state}: delivery rejected")


def _secret_bytes(secret: str) -> bytes:
    return secret.encode("utf-8")
