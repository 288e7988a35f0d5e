"""Known values as fragments and encodings, credential shapes, and the scanner's views."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap

import pytest

from claynb._secrets import REDACTED
from claynb.share._known import FRAGMENT_MIN, KnownSecrets
from claynb.share._scan import KNOWN_SECRET, Scanner, all_kinds, views
from claynb.share._scrub import scrub_text
from claynb.share._shapes import SHAPES

KEY = "clay_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddcc"


def test_a_truncated_repr_of_a_known_key_is_scrubbed() -> None:
    shown = f"0    {KEY[:47]}...\nName: key, dtype: object"
    out = scrub_text(shown, [KEY])
    assert KEY[:FRAGMENT_MIN] not in out and f"{REDACTED}..." in out
    assert "Name: key, dtype: object" in out


def test_a_fragment_shorter_than_the_minimum_is_left_alone() -> None:
    text = f"id {KEY[10 : 10 + FRAGMENT_MIN - 1]} ok"
    assert scrub_text(text, [KEY]) == text


def test_a_short_secret_is_matched_only_as_a_whole_token() -> None:
    assert scrub_text("pw=pw12;", ["pw12"]) == f"pw={REDACTED};"
    assert scrub_text("hpw123 and pw12x", ["pw12"]) == "hpw123 and pw12x"


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"user:"])
def test_a_known_value_inside_base64_is_scrubbed_at_any_alignment(prefix: bytes) -> None:
    encoded = base64.b64encode(prefix + KEY.encode() + b"!").decode()
    out = scrub_text(f"blob {encoded} end", [KEY])
    assert out == f"blob {REDACTED} end"


def test_no_repr_shows_a_known_value() -> None:
    known = KnownSecrets(frozenset({KEY}))
    assert KEY not in repr(known) and KEY not in repr(Scanner(known))


def test_views_undo_colour_entities_url_quoting_and_json_escapes() -> None:
    assert "abc" in views("\x1b[31ma\x1b[0mbc")
    assert "<b>" in views("&lt;b&gt;")
    assert "a b/c" in views("a%20b%2Fc")
    assert 'é"' in views('\\u00e9\\"')


def test_the_scanner_finds_a_known_value_only_its_decoded_views_show() -> None:
    entities = "".join(f"&#{ord(c)};" for c in KEY)
    scanner = Scanner(KnownSecrets(frozenset({KEY})))
    found = scanner.scan_notebook({"cells": [{"source": f"key {entities}"}]})
    assert [(f.where, f.kind) for f in found] == [("cell 1, source", KNOWN_SECRET)]
    assert KEY not in str(found[0])


def test_the_scanner_ignores_what_the_scrubber_left() -> None:
    text = scrub_text(
        'password = "hunter2hunter2"\nAuthorization: Basic dXNlcjpwYXNz\n'
        "redis://:pw@cache:6379 https://x.test/?sig=abc123",
        ["hunter2hunter2"],
    )
    assert Scanner(KnownSecrets(frozenset())).scan_notebook({"cells": [{"source": text}]}) == []


def test_the_scanner_reads_dict_keys_and_binary_payloads() -> None:
    secret = "sk_binary_0123456789abcdef"
    png = base64.b64encode(b"\x89PNG....tEXtComment\x00" + secret.encode()).decode()
    nb = {"metadata": {secret: 1}, "cells": [{"outputs": [{"data": {"image/png": png}}]}]}
    found = Scanner(KnownSecrets(frozenset({secret}))).scan_notebook(nb)
    assert {(f.where, f.kind) for f in found} == {
        ("notebook, metadata, <key>", KNOWN_SECRET),
        ("cell 1, output 1, image/png", KNOWN_SECRET),
    }


def test_every_kind_has_a_label_and_a_command_line_name() -> None:
    kinds = all_kinds()
    assert KNOWN_SECRET in kinds and "github-token" in kinds and "secret-keyword" in kinds
    assert {shape.kind for shape in SHAPES} <= set(kinds)
    assert all(k == k.lower() and " " not in k for k in kinds)


def test_the_scanner_never_reaches_the_network() -> None:
    """A child records every network call through an audit hook while it scans.

    The strings hold shapes that detect-secrets plugins know how to verify online (Slack,
    Stripe, AWS, Cloudant, IBM): claynb must never ask them to. The child then makes one
    lookup itself, to show the hook would have seen one.
    """
    probe = textwrap.dedent(
        """
        import json, socket, sys
        seen = []
        NETWORK = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                   "socket.sendto", "socket.sendmsg", "urllib.Request", "http.client.connect")
        sys.addaudithook(lambda event, args: event in NETWORK and seen.append(event))
        from claynb.share._known import KnownSecrets
        from claynb.share._scan import Scanner
        nb = json.loads(sys.stdin.read())
        found = Scanner(KnownSecrets(frozenset())).scan_notebook(nb)
        during = list(seen)
        socket.getaddrinfo("127.0.0.1", 9)
        print(json.dumps({"kinds": sorted({f.kind for f in found}), "during": during,
                          "after": seen}))
        """
    )
    lines = [
        "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
        "sk_live_" + "a1" * 12,
        "AKIA" + "ABCDEFGHIJKLMNOP",
        'aws_secret_access_key = "' + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" + '"',
        'cloudant_password = "' + "a1b2" * 16 + '"',
        'ibm_cloud_iam_api_key = "' + "abcdEFGH1234_-" * 3 + '"',
    ]
    nb = {"cells": [{"source": "\n".join(lines)}]}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(nb),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert {"slack-token", "stripe-access-key", "aws-access-key"} <= set(report["kinds"])
    assert report["during"] == []
    assert "socket.getaddrinfo" in report["after"]
