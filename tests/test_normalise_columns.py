"""``prepare`` (Arrow's kernels over whole columns) against the per-row definition it
vectorises: each row's inputs through :func:`normalise_inputs` and, when they can be
sent, :func:`item_key`, on random frames mixing printable ASCII with what Arrow's
kernels and Python's ``str``/``re`` read differently (accents, dotted capitals, tabs,
vertical tabs, file separators, newlines, NEL, non-breaking spaces), NA, blanks, numbers
and every kind of input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claynb._routines import KINDS, Routine, workspace_routine
from claynb.pipeline import _normalise
from claynb.pipeline._normalise import normalise_inputs, prepare
from claynb.pipeline._text import TEXT, as_text, joined, joined_or_same, text_bytes
from claynb.pipeline._work import item_key

PIECES = [
    "a", "Z", "x9", "0", "-", "_", ".", "@", "%", "+", "/", "?", "#", ":", "'", '"', "\\",
    " ", "  ", "\t", "\n", "\x0b", "\x1c", "\x01", "\x7f", "\x85", "\xa0", "\u2028",
    "é", "İ", "ß", "Σ", "🙂", "mailto:", "MAILTO:", "www.", "WWW.", "http://", "HTTPS://",
    "user@", ":8080", "acme", "Acme.COM", ".com", ".io", "ada.king", "linkedin.com/in/",
    "ada-k", "Ada", "King",
]  # fmt: skip
TEXTS = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)
OTHERS = st.sampled_from([None, np.nan, pd.NA, 12345, 1.5, True, ""])
VALUES = st.one_of(TEXTS, TEXTS, TEXTS, OTHERS)
DTYPES = ["object", "str", "string", "string[python]", "category"]
ONE_OF_EACH = workspace_routine(
    "function:t_all",
    ("a", "b", "c"),
    kinds={"a": "domain", "b": "full_name", "c": "email"},
)


def reference(df: pd.DataFrame, routine: Routine, inputs: dict[str, str]) -> list[Any]:
    """Per row: its normalised inputs, why they cannot be sent, and its key."""
    rows = []
    for i in range(len(df)):
        raw = {name: df[column].iloc[i] for name, column in inputs.items()}
        clean, reason = normalise_inputs(routine, raw)
        rows.append((clean, reason, None if reason else item_key(routine.id, clean)))
    return rows


def check_against_reference(df: pd.DataFrame, routine: Routine, inputs: dict[str, str]) -> None:
    prepared = prepare(df, routine, inputs)
    expected = reference(df, routine, inputs)
    group_of: dict[tuple[Any, ...], int] = {}
    first_row: dict[tuple[Any, ...], int] = {}
    for i, (clean, reason, key) in enumerate(expected):
        g = int(prepared.codes[i])
        assert prepared.inputs_of(g) == clean, (i, df.iloc[i].tolist())
        assert prepared.reasons[g] == reason, (i, df.iloc[i].tolist())
        assert prepared.keys[g] == key, (i, df.iloc[i].tolist())
        # Groups are the distinct normalised inputs, numbered as they first appear.
        identity = tuple(clean[name] for name in routine.inputs)
        assert group_of.setdefault(identity, len(group_of)) == g
        assert bool(prepared.first[i]) == (first_row.setdefault(identity, i) == i)
    assert prepared.groups == len(group_of)


def framed(values: list[Any], dtype: str) -> pd.Series:
    series = pd.Series(values, dtype=object)
    if dtype == "object":
        return series
    texts = series.map(lambda v: v if isinstance(v, str) else None)
    return texts.astype(dtype)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(VALUES, min_size=0, max_size=40),
    kind=st.sampled_from([*KINDS, "work_email", "company_domain", "notes"]),
    dtype=st.sampled_from(DTYPES),
    data=st.data(),
)
def test_one_input_of_every_kind_is_prepared_as_row_by_row(
    values: list[Any], kind: str, dtype: str, data: st.DataObject
) -> None:
    # Repeat some rows so that groups hold more than one row.
    values = values + data.draw(st.lists(st.sampled_from(values), max_size=10)) if values else []
    routine = workspace_routine(
        "function:t_one", ("v",), kinds={"v": kind} if kind in KINDS else {}
    )
    if kind not in KINDS:
        routine = workspace_routine("function:t_one", (kind,))
    df = pd.DataFrame({"Col": framed(values, dtype)})
    check_against_reference(df, routine, {routine.inputs[0]: "Col"})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(VALUES, VALUES, VALUES), min_size=1, max_size=30), data=st.data())
def test_several_inputs_group_by_all_of_them_and_give_the_first_reason(
    rows: list[tuple[Any, Any, Any]], data: st.DataObject
) -> None:
    rows = rows + data.draw(st.lists(st.sampled_from(rows), max_size=10))
    df = pd.DataFrame(
        {"A": [r[0] for r in rows], "B": [r[1] for r in rows], "C": [r[2] for r in rows]},
        dtype=object,
    )
    check_against_reference(df, ONE_OF_EACH, {"a": "A", "b": "B", "c": "C"})


def test_a_seeded_large_mixed_frame_is_prepared_as_row_by_row() -> None:
    """Thousands of rows, most of them valid printable e-mails written several ways."""
    rng = np.random.default_rng(13)
    people = [f"Person{i}.x@Co{i % 40}.com" for i in range(600)]
    spellings = [
        lambda v: v, str.upper, lambda v: f"  {v} ", lambda v: f"mailto:{v}",
        lambda v: f"{v}\t", lambda v: v.replace("o", "ö"), lambda v: None, lambda v: "  ",
        lambda v: v.replace("@", " at "), lambda v: 7,
    ]  # fmt: skip
    values = [
        spellings[rng.integers(len(spellings))](people[rng.integers(600)]) for _ in range(4000)
    ]
    routine = workspace_routine("function:t_e", ("email",))
    for dtype in ("object", "str"):
        df = pd.DataFrame({"Email": framed(values, dtype)})
        check_against_reference(df, routine, {"email": "Email"})
        # A slice of a frame: Arrow-backed text starts part-way into its buffers.
        check_against_reference(df.iloc[1001:3007], routine, {"email": "Email"})


def test_edge_values_of_each_kind_are_prepared_as_row_by_row() -> None:
    """Lengths and shapes random pieces rarely reach: a domain past 253 characters, a
    label past 63, ports, user info, schemes, profile URLs with and without a scheme."""
    label = "a" * 63
    edges = {
        "domain": [
            ".".join([label] * 4) + ".com",  # 260 characters: too long
            ".".join([label] * 3) + ".com",
            "a" * 64 + ".com",
            "https://user:pw@www.acme.com:8080/x?y#z",
            "acme.com:",
            "acme.com.",
            "www.",
            "a.b",
            "http:// /x",
        ],
        "linkedin_url": [
            "https://www.linkedin.com/in/ada-k/",
            "linkedin.com/in/ada%20k",
            "HTTPS://UK.LinkedIn.com/in/Ada?trk=1",
            "https://linkedin.com/company/acme",
        ],
        "full_name": ["  Ada   King ", "42", "_", "O'Brien", "Zoë"],
        "email": ["MAILTO: a@b.co", "a@b.c", "a@b..com", "a.b+c@d-e.co.uk"],
    }
    for kind, values in edges.items():
        routine = workspace_routine("function:t_edge", ("v",), kinds={"v": kind})
        df = pd.DataFrame({"V": [*values, *values]})
        check_against_reference(df, routine, {"v": "V"})


def test_a_column_normalised_in_several_slices_is_prepared_as_row_by_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Columns longer than a slice (``_ROWS_AT_ONCE``): values Arrow cannot judge and values
    that are not text on both sides of the slices' edges, groups whose rows fall in
    different slices, and a frame's slice that starts part-way into a slice."""
    monkeypatch.setattr(_normalise, "_ROWS_AT_ONCE", 97)
    test_a_seeded_large_mixed_frame_is_prepared_as_row_by_row()


def test_distinct_values_found_by_sorting_are_prepared_as_row_by_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Distinct values are found by Arrow's hashing when they hold few bytes and by its
    sort when they hold many (``_HASHED_BYTES``): the sort numbers the groups as they
    first appear too, in columns of several slices, with NA, blanks, invalid values and
    duplicates on both sides of the slices' edges, with one input and with several."""
    monkeypatch.setattr(_normalise, "_HASHED_BYTES", -1)
    monkeypatch.setattr(_normalise, "_ROWS_AT_ONCE", 97)
    test_one_input_of_every_kind_is_prepared_as_row_by_row()
    test_several_inputs_group_by_all_of_them_and_give_the_first_reason()
    check_large_frames()


def test_distinct_values_found_either_way_by_a_sample_are_prepared_as_row_by_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Columns of more rows than the sample that picks hashing or sorting."""
    monkeypatch.setattr(_normalise, "_HASHED_BYTES", 2_000)
    monkeypatch.setattr(_normalise, "_SAMPLE", 200)
    monkeypatch.setattr(_normalise, "_ROWS_AT_ONCE", 97)
    check_large_frames()


def check_large_frames() -> None:
    """The seeded mixed frame; every value distinct (the sort's short cut: a group per
    row); the same values again in another order; 30 values repeated (which the sample
    in the test above picks hashing for); nothing but missing values."""
    test_a_seeded_large_mixed_frame_is_prepared_as_row_by_row()
    emails = [f"P{i}@Co{i % 7}.com " for i in range(1500)]
    few = [f"x{i % 30}@Y.com " for i in range(3000)]
    routine = workspace_routine("function:t_e", ("email",))
    for values in (emails, emails + emails[::-1], few, [None, "  ", None, ""] * 60, []):
        df = pd.DataFrame({"Email": framed(values, "str")})
        check_against_reference(df, routine, {"email": "Email"})


def test_the_distinct_bytes_estimate_tells_few_from_many(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample's estimate of the distinct values' bytes, which picks hashing or sorting:
    near the truth for a column of all-distinct values and for one of a few hundred
    repeated values (either way the groups are the same: the test above)."""
    monkeypatch.setattr(_normalise, "_HASHED_BYTES", 100_000)  # columns above it: sampled
    many = pa.array([f"person{i}@company{i % 5000}.com" for i in range(60_000)], TEXT)
    few = pa.array([f"person{i % 700}@company.com" for i in range(60_000)], TEXT)
    few_bytes = text_bytes(pa.array(sorted(set(few.to_pylist())), TEXT))
    assert _normalise._distinct_bytes(many) == pytest.approx(text_bytes(many), rel=0.2)
    assert few_bytes <= _normalise._distinct_bytes(few) < 2 * few_bytes


def test_joined_text_is_the_pieces_one_after_another() -> None:
    """``joined`` copies pieces into buffers made once: pieces with nulls, pieces that
    start part-way into their buffers, and more text than the capacity it was given."""
    whole = pa.array(["ab", None, "", "cdé", None, "f" * 50, "g"], TEXT)
    pieces = [whole.slice(0, 2), whole.slice(2, 0), whole.slice(2, 3), whole.slice(5)]
    for capacity in (0, 3, text_bytes(whole)):
        out = joined(iter(pieces), len(whole), capacity)
        out.validate(full=True)
        assert out.type == TEXT and out.to_pylist() == whole.to_pylist()
        assert out.null_count == 2
    assert joined(iter([]), 0, 0).to_pylist() == []


def test_text_normalising_left_as_it_was_is_the_columns_own() -> None:
    """``joined_or_same``: while every piece holds its slice's values, nothing is copied
    and the text it was made from comes back; the first piece that differs starts a copy
    holding the rows before it, then every piece."""
    like = pa.array(["a", None, "bc", "d", "", "ef", None, "g"], TEXT)
    same = [like.slice(lo, 3) for lo in range(0, len(like), 3)]
    assert joined_or_same(iter(same), like, text_bytes(like)) is like
    later = [*same[:2], pa.array(["X", None], TEXT)]  # the last slice changed
    out = joined_or_same(iter(later), like, 0)
    out.validate(full=True)
    assert out.to_pylist() == ["a", None, "bc", "d", "", "ef", "X", None]
    first = [pa.array(["A", None, "bc"], TEXT), *same[1:]]
    assert joined_or_same(iter(first), like, 1).to_pylist() == ["A", *like.to_pylist()[1:]]


def test_an_input_already_normalised_is_the_frames_own_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every e-mail distinct and already normalised: the groups' text is the frame's own
    Arrow column (its data buffer), not a copy. One value to normalise in the last of
    several slices: a copy, the same as row by row."""
    monkeypatch.setattr(_normalise, "_ROWS_AT_ONCE", 97)
    emails = [f"p{i}@co{i % 7}.com" for i in range(1000)]
    routine = workspace_routine("function:t_e", ("email",))
    df = pd.DataFrame({"Email": framed(emails, "str")})
    own = as_text(df["Email"])[0].buffers()[2]
    text = prepare(df, routine, {"email": "Email"}).texts["email"]
    if as_text(df["Email"])[0].buffers()[2].address == own.address:  # read without a copy
        assert text.buffers()[2].address == own.address  # (pandas 3: Arrow-backed "str")
    check_against_reference(df, routine, {"email": "Email"})
    changed = pd.DataFrame({"Email": framed([*emails[:-1], " P@Co.com"], "str")})
    text = prepare(changed, routine, {"email": "Email"}).texts["email"]
    assert text.buffers()[2].address != own.address and text[999].as_py() == "p@co.com"
    check_against_reference(changed, routine, {"email": "Email"})
