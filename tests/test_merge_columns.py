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
