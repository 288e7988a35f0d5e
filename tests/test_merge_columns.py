"""Answers held as columns merge into the frame the per-value rule would write.

Results land in blocks (the cache's answers parsed by Arrow, each run's answers taken
into columns as it lands, dicts where Arrow cannot hold them exactly). Whatever the mix,
each output column must have the dtype and values :func:`_column` gives the same answers
as Python values: text as text, integers as Int64, a field of mixed types as objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from claynb._routines import workspace_routine
from claynb.pipeline._merge import _column, merge, result_fields
from claynb.pipeline._normalise import prepare
from claynb.pipeline._work import Answers, CostSource, ItemResult, Landed, Status, fields_of

ROUTINE = workspace_routine("function:t_mix", ("email",))


def _results(answers: list[dict[str, Any]], start: int) -> list[ItemResult]:
    return [
        ItemResult(f"k{start + i}", Status.ENRICHED if a else Status.NO_MATCH, a)
        for i, a in enumerate(answers)
    ]


def test_blocks_of_every_kind_merge_as_the_values_would() -> None:
    runs = [
        [{"name": "Ada", "n": 1, "score": 1}, {}],
        [{"name": None, "n": 2, "score": "high", "flag": True}],  # score changes type
        [{"name": "Bo", "n": 2.5, "tags": ["x"]}, {"name": "Cy"}],  # nested: kept as dicts
    ]
    flat = [a for run in runs for a in run]
    df = pd.DataFrame({"Email": [f"p{i}@x.io" for i in range(len(flat))] + ["p0@x.io", "bad"]})
    prepared = prepare(df, ROUTINE, {"email": "Email"})
    landed, start = Landed(), 0
    for run in runs:
        landed.extend(Landed().add(_results(run, start)))
        start += len(run)
    answers = Answers(prepared.groups)
    groups = np.arange(len(flat), dtype=np.int64)  # the first rows' groups, in order
    answers.put_landed(groups, landed)
    invalid = [g for g, reason in enumerate(prepared.reasons) if reason is not None]
    answers.put(invalid, [ItemResult("x", Status.INVALID_INPUT, error="bad") for _ in invalid])

    extra = result_fields(ROUTINE, answers)
    assert extra == ["name", "n", "score", "flag", "tags"]  # in order of first sight
    out = merge(df, prepared, answers, extra=extra)
    per_group: list[dict[str, Any] | None] = [*flat] + [None] * (prepared.groups - len(flat))
    for name in extra:
        want = _column([a.get(name) if a else None for a in per_group], prepared.codes)
        pd.testing.assert_extension_array_equal(out["clay_" + name].array, want)
    assert str(out["clay_n"].dtype) == "Float64" and out["clay_score"].dtype == object
    assert out["clay_status"].tolist()[-2:] == ["enriched", "invalid_input"]


def test_fields_of_keeps_dicts_where_arrow_would_change_them() -> None:
    assert fields_of([{"a": 1}, {"a": "x"}]).dicts is not None  # one field, two types
    assert fields_of([{"a": {"b": 1}}]).dicts is not None  # nested
    held = fields_of([{"a": 1}, None, {"b": "x"}])
    assert held.table is not None and held.table.column_names == ["a", "b"]
    assert held.table.column("a").to_pylist() == [1, None, None]


def test_a_group_is_answered_by_its_last_landed_result() -> None:
    """Landed keeps a status and a cost source as a byte per result and errors only where
    there are some: put into answers, a group shows its last result, error included."""
    first = [
        ItemResult("a", Status.FAILED, error="boom", cost_source=CostSource.METERED),
        ItemResult("b", Status.ENRICHED, {"x": 1}, cost_source=CostSource.ESTIMATED),
        ItemResult("c", Status.ENRICHED, {"x": 3}),
    ]
    then = [
        ItemResult("a", Status.ENRICHED, {"x": 2}),  # a again: no error now
        ItemResult("c", Status.UNKNOWN, error="lost", cost_source=CostSource.UNPRICED),
        ItemResult("d", Status.NO_MATCH, error="", cost_source=CostSource.METERED),
        ItemResult("z", Status.FAILED, error="of no group here"),
    ]
    landed = Landed().add(first).extend(Landed().add(then))
    assert len(landed) == 7 and landed.errors == {
        0: "boom",
        4: "lost",
        5: "",
        6: "of no group here",
    }
    answers = Answers(4)
    answers.put_landed(np.array([0, 1, 2, 0, 2, 3, -1]), landed)
    assert answers.status.tolist() == ["enriched", "enriched", "unknown", "no_match"]
    assert answers.error.tolist() == [None, None, "lost", ""]
    assert answers.source.tolist() == [None, "estimated", "unpriced", "metered"]
    landed.clear()
    assert len(landed) == 0 and not landed.errors and not landed.blocks and not len(landed.status)


def test_the_output_shares_the_frames_columns() -> None:
    """No second copy of the frame: the output's input columns are the input's own
    (pandas 3's copy-on-write; pandas 2 copies them in ``assign``)."""
    df = pd.DataFrame({"Email": ["a@x.io", "b@x.io", "a@x.io"], "n": [1.0, 2.0, 3.0]})
    prepared = prepare(df, ROUTINE, {"email": "Email"})
    answers = Answers(prepared.groups)
    answers.put(range(prepared.groups), _results([{"name": "A"}, {}], 0))
    out = merge(df, prepared, answers, extra=["name"])
    if int(pd.__version__.split(".")[0]) >= 3:  # copy-on-write: pandas 2 copies on assign
        assert np.shares_memory(out["n"].to_numpy(), df["n"].to_numpy())
    assert out["clay_status"].tolist() == ["enriched", "no_match", "enriched"]
    assert out["clay_name"].tolist()[::2] == ["A", "A"] and pd.isna(out["clay_name"][1])


def test_many_runs_land_in_few_blocks_and_merge_as_the_values_would() -> None:
    """Landed joins runs' blocks as they land (every 64): a run of nothing but failures (a
    gap: no block), a field null in a whole run, a field of another type, answers kept as
    dicts and a key answered twice all keep their values, and a later row still wins."""
    runs: list[list[ItemResult]] = []
    for r in range(150):
        if r == 70:  # failures only: no fields, so no block
            runs.append([ItemResult(f"k{r}_{i}", Status.FAILED, error="boom") for i in range(3)])
            continue
        answers: list[dict[str, Any]] = [
            {"name": f"n{r}_{i}", "n": i, "note": None if r % 5 else f"t{r}"} for i in range(3)
        ]
        if r == 100:
            answers[0]["n"] = "many"  # n is text in this run only
        if r == 120:
            answers[1]["tags"] = ["x"]  # nested: this run is kept as dicts
        runs.append([ItemResult(f"k{r}_{i}", Status.ENRICHED, a) for i, a in enumerate(answers)])
    runs.append([ItemResult("k3_1", Status.ENRICHED, {"name": "again", "n": 9, "note": None})])
    keys = [x.key for run in runs for x in run]
    df = pd.DataFrame({"Email": [f"{k}@x.io" for k in dict.fromkeys(keys)]})
    prepared = prepare(df, ROUTINE, {"email": "Email"})
    group = {k: g for g, k in enumerate(dict.fromkeys(keys))}
    landed = Landed()
    for run in runs:
        landed.add(run)
    assert landed.blocks[0][1].rows == 64 * 3  # the first 64 runs: one table
    assert len(landed.blocks) < 30  # of 149 runs' blocks (the last 21 not joined yet)
    answers = Answers(prepared.groups)
    answers.put_landed(np.array([group[k] for k in keys]), landed)

    last = {x.key: x.result or None for run in runs for x in run}  # a later row wins
    per_group = [last[k] for k in dict.fromkeys(keys)]
    extra = result_fields(ROUTINE, answers)
    assert extra == ["name", "n", "note", "tags"]
    out = merge(df, prepared, answers, extra=extra)
    for name in extra:
        want = _column([a.get(name) if a else None for a in per_group], prepared.codes)
        pd.testing.assert_extension_array_equal(out["clay_" + name].array, want)
    assert out["clay_name"][group["k3_1"]] == "again"
    assert out["clay_status"][group["k70_0"]] == "failed"


def _landed_runs(runs: list[list[ItemResult]], groups: list[np.ndarray]) -> Landed:
    landed = Landed()
    for run, at in zip(runs, groups, strict=True):
        landed.add(run, at)
    return landed


def _text_buffers(answers: Answers, name: str) -> set[int]:
    """The addresses of the character buffers holding ``name`` in the answers' blocks."""
    columns = [fields.column(name) for _, fields in answers.blocks]
    return {chunk.buffers()[2].address for column in columns for chunk in column.chunks}


def test_fields_in_the_frames_order_are_the_answers_own_buffers() -> None:
    """Every row its own group and the runs landed out of order, as 8 in flight do, one
    of them much later (a retry): Landed joins them in group order, so the output's text
    fields are slices of the answers' buffers (no copy), a few chunks, with the values
    the per-value rule gives."""
    rng = np.random.default_rng(7)
    runs = [
        [ItemResult(f"k{r}_{i}", Status.ENRICHED, {"name": f"n{r}_{i}"}) for i in range(3)]
        for r in range(150)
    ]
    runs[40] = [ItemResult(f"k40_{i}", Status.NO_MATCH) for i in range(3)]  # no block
    groups = [np.arange(3 * r, 3 * r + 3) for r in range(150)]
    order = [r for r in np.argsort(np.arange(150) + rng.uniform(0, 8, 150)) if r != 10] + [10]
    landed = _landed_runs([runs[r] for r in order], [groups[r] for r in order])
    df = pd.DataFrame({"Email": [f"{x.key}@x.io" for run in runs for x in run]})
    prepared = prepare(df, ROUTINE, {"email": "Email"})
    answers = Answers(prepared.groups)
    answers.put_landed(np.frombuffer(landed.groups, dtype=np.int64).copy(), landed)
    held = _text_buffers(answers, "name")

    out = merge(df, prepared, answers, extra=["name"])
    want = [None if r == 40 else f"n{r}_{i}" for r in range(150) for i in range(3)]
    pd.testing.assert_extension_array_equal(out["clay_name"].array, _column(want, prepared.codes))
    if int(pd.__version__.split(".")[0]) < 3:
        pytest.skip("pandas 2 holds text as Python objects: nothing to share")
    column = out["clay_name"].array.__arrow_array__()
    assert column.num_chunks <= 8  # a few joined blocks and the run of nothing between
    shared = [c.buffers()[2].address for c in column.chunks if c.null_count < len(c)]
    assert shared and set(shared) <= held


def test_a_disordered_landing_merges_the_values_the_rows_hold() -> None:
    """Runs landed in a random order, a group answered twice (the later row wins, so
    the runs joined with them keep the order they landed in), rows of no group, a frame
    with duplicates (its rows are taken, not sliced): every value is the per-value rule's."""
    rng = np.random.default_rng(11)
    runs = [
        [ItemResult(f"k{r}_{i}", Status.ENRICHED, {"name": f"n{r}_{i}", "n": r}) for i in range(2)]
        for r in range(140)
    ]
    groups = [np.arange(2 * r, 2 * r + 2) for r in range(140)]
    order = [int(r) for r in rng.permutation(140)]
    runs.append([ItemResult("k5_1", Status.ENRICHED, {"name": "again", "n": -1})])
    groups.append(np.array([11]))
    runs.append([ItemResult("zz", Status.FAILED, error="of no group here")])
    groups.append(np.array([-1]))
    order.insert(order.index(5), 140)  # group 11 answered again, just before run 5 lands
    order.insert(90, 141)
    landed = _landed_runs([runs[r] for r in order], [groups[r] for r in order])
    keys = [f"k{r}_{i}" for r in range(140) for i in range(2)]
    df = pd.DataFrame({"Email": [f"{k}@x.io" for k in keys + keys[::-3]]})  # duplicates
    prepared = prepare(df, ROUTINE, {"email": "Email"})
    answers = Answers(prepared.groups)
    answers.put_landed(np.frombuffer(landed.groups, dtype=np.int64).copy(), landed)

    out = merge(df, prepared, answers, extra=["name", "n"])
    last = {x.key: x.result for r in order for x in runs[r]}
    per_group = [last[k] for k in keys]
    for name in ("name", "n"):
        want = _column([a[name] for a in per_group], prepared.codes)
        pd.testing.assert_extension_array_equal(out["clay_" + name].array, want)
    # run 5 landed after the repeat, and sorts after it by group (10 < 11): its row wins
    assert out["clay_name"][11] == "n5_1" and out["clay_n"][11] == 5
