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
from claynb.pipeline._work import Answers, ItemResult, Landed, Status, fields_of

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
