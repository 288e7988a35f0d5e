"""Item keys and refusal reasons pinned to what claynb computed before ``prepare`` was
vectorised: caches and journals in users' state homes are keyed by these bytes, so a key
that changes is every cached answer and journaled run forgotten.

The expected values were computed by the per-value code (``json.dumps`` and sha256 per
item, a Python normaliser and regex per value) and written here by hand; they must never
be regenerated from the code under test.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from claynb._routines import DEFAULT_ROUTINES, workspace_routine
from claynb.pipeline._normalise import prepare
from claynb.pipeline._work import item_key, item_keys

PINNED_KEYS: list[tuple[str, dict[str, Any], str]] = [
    ("enrich-person", {"email": "ada@example.com"}, "39c9f87c9b716558a4faac186b851333"),
    ("enrich-person", {"email": "zoë.müller@bücher.de"}, "dedf3cf618ebd2115dbc58685ab3439b"),
    ("enrich-person", {"email": 'o"brien\\x@y.io'}, "0ff3428ea2ed1553894f9d7d6f8e0cef"),
    ("enrich-person", {"email": None}, "016e699de916bc991b671d2273ba57e7"),
    (
        "find-work-email",
        {"full_name": "Ada King", "company_domain": "acme.com"},
        "6e4df05a878227cb5766bb09f7287481",
    ),
    (
        "find-work-email",
        {"full_name": "José 🙂 \u2028 Ñ", "company_domain": None},
        "2b1fb35e725e01a5952082476ebc86d7",
    ),
    (
        "function:t_abc",
        {"zip": 12345, "score": 1.5, "ok": True},
        "1ab13e0534f678951c530d31ac4e883d",
    ),
    (
        "function:t_abc",
        {"b": "tab\there", "a": "ctl\x01\x7f end"},
        "5ffb6f794305b49764f43f0eeec644de",
    ),
]


@pytest.mark.parametrize("routine_id, inputs, key", PINNED_KEYS)
def test_item_key_is_pinned(routine_id: str, inputs: dict[str, Any], key: str) -> None:
    assert item_key(routine_id, inputs) == key


def test_item_keys_of_columns_are_pinned() -> None:
    """The column-at-a-time keys, over the pinned rows whose inputs are text or None."""
    for routine_id, inputs, key in PINNED_KEYS:
        if all(v is None or isinstance(v, str) for v in inputs.values()):
            columns = {name: [value, value] for name, value in inputs.items()}
            assert item_keys(routine_id, columns) == [key, key]


def test_prepare_keys_and_reasons_are_pinned_for_text_inputs() -> None:
    """Unicode, quotes, backslashes, tabs, control characters, NA and blanks in a
    workspace routine's text inputs: the same groups, keys and reasons as before."""
    routine = workspace_routine("function:t_pin", ("note", "who"), kinds={"note": "text"})
    df = pd.DataFrame(
        {
            "Note": ['Say "hi"\\ there', "  Zoë\t\tMüller 🙂 ", "tab\there\x01", None, "x", "  "],
            "Who": ["Ada", "José", "Ñ", "Ada", None, "Ada"],
        }
    )
    prepared = prepare(df, routine, {"note": "Note", "who": "Who"})
    assert prepared.codes.tolist() == [0, 1, 2, 3, 4, 3]
    assert list(prepared.keys) == [
        "30b8a702e12848fa42d45c9228dd5add",
        "20032d3e3c073475ca7694d6612d52fa",
        "a69c48bba2934f4c140727ccbeb35389",
        None,
        None,
    ]
    assert prepared.reasons == [None, None, None, "missing input 'note'", "missing input 'who'"]


def test_prepare_keys_and_reasons_are_pinned_for_emails_and_domains() -> None:
    emails = pd.DataFrame(
        {
            "Email": [
                " Ada@Example.com",
                "mailto:ADA@example.com",
                "zoë@bücher.de",
                'o"b\\@x.io',
                float("nan"),
                12345,
            ]
        },
        dtype=object,
    )
    prepared = prepare(emails, DEFAULT_ROUTINES["enrich-person"], {"email": "Email"})
    assert prepared.codes.tolist() == [0, 0, 1, 2, 3, 4]
    assert list(prepared.keys) == ["39c9f87c9b716558a4faac186b851333", None, None, None, None]
    assert prepared.reasons == [
        None,
        "malformed email 'zoë@bücher.de'",
        "malformed email 'o\"b\\\\@x.io'",
        "missing input 'email'",
        "malformed email '12345'",
    ]
    people = pd.DataFrame(
        {
            "Name": ["  Zoë   Müller ", 'Say "hi"\\', None, "42", "Ada King", "Ada  King"],
            "Domain": [
                "HTTPS://www.Bücher.de/x",
                "acme.com",
                "acme.com",
                "acme.com",
                "ACME.com:8080",
                "acme.com",
            ],
        }
    )
    prepared = prepare(
        people,
        DEFAULT_ROUTINES["find-work-email"],
        {"full_name": "Name", "company_domain": "Domain"},
    )
    assert prepared.codes.tolist() == [0, 1, 2, 3, 4, 4]
    assert list(prepared.keys) == [
        None,
        "79de577bb7cdd3cc2e80c7894cdf2287",
        None,
        None,
        "6e4df05a878227cb5766bb09f7287481",
    ]
    assert prepared.reasons == [
        "malformed domain 'bücher.de'",
        None,
        "missing input 'full_name'",
        "full_name '42' has no letters",
        None,
    ]
