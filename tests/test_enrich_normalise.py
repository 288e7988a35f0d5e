"""Normalising inputs and grouping duplicates: pure functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from claynb._routines import DEFAULT_ROUTINES
from claynb.pipeline._normalise import (
    normalise_domain,
    normalise_email,
    normalise_inputs,
    normalise_value,
    prepare,
)

PERSON = DEFAULT_ROUTINES["enrich-person"]
EMAIL_FINDER = DEFAULT_ROUTINES["find-work-email"]


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("  ACME.COM  ", "acme.com"),
        ("http://user@sub.acme.co.uk:8080/path", "sub.acme.co.uk"),
        ("www.acme.io.", "acme.io"),
        ("acme.com#top", "acme.com"),
    ],
)
def test_domains(raw: str, clean: str) -> None:
    assert normalise_domain(raw) == clean


@pytest.mark.parametrize(
    "raw, clean",
    [
        (" Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("mailto:Grace@Navy.mil", "grace@navy.mil"),
    ],
)
def test_emails(raw: str, clean: str) -> None:
    assert normalise_email(raw) == clean


@pytest.mark.parametrize("value", [None, np.nan, pd.NA, "", "   "])
def test_missing_values_are_none(value: object) -> None:
    assert normalise_value("email", value) is None


def test_names_keep_case_but_lose_extra_spaces_and_numbers_become_text() -> None:
    assert normalise_value("full_name", "  Ada   King  ") == "Ada King"
    assert normalise_value("company_domain", 12345) == "12345"


def test_normalise_inputs_gives_the_reason() -> None:
    assert normalise_inputs(PERSON, {"email": " A@B.io"}) == ({"email": "a@b.io"}, None)
    clean, reason = normalise_inputs(PERSON, {"email": "not-an-email"})
    assert reason == "malformed email 'not-an-email'"
    assert normalise_inputs(PERSON, {})[1] == "missing input 'email'"


def test_prepare_groups_by_normalised_inputs_in_first_seen_order() -> None:
    df = pd.DataFrame(
        {
            "N": ["Ada King", "ada king", "Ada  King", "Bob Ross", None],
            "D": ["acme.com", "acme.com", "https://acme.com", "x.io", "x.io"],
        }
    )
    p = prepare(df, EMAIL_FINDER, {"full_name": "N", "company_domain": "D"})
    # Names keep their case, so "ada king" is a different person to "Ada King".
    assert p.codes.tolist() == [0, 1, 0, 2, 3]
    assert p.first.tolist() == [True, True, False, True, True]
    assert p.reasons[:3] == [None, None, None] and "missing input 'full_name'" in p.reasons[3]
    assert p.keys[3] is None and len(set(p.keys[:3])) == 3
    assert p.valid_groups == [0, 1, 2]


def test_prepare_empty_frame() -> None:
    p = prepare(pd.DataFrame({"E": pd.Series([], dtype=object)}), PERSON, {"email": "E"})
    assert p.rows == 0 and len(p.keys) == 0 and p.first.shape == (0,)
