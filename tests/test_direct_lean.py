"""The direct tier's lean per-run path: run items built once, the collector's thresholds
while the engine runs, and what reaches Clay and its meters through them."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb import ConfigError
from claynb.direct._backend import ENGINE_GC_THRESHOLDS, old_objects_kept
from claynb.wire._core import RunItems, check_items


def test_run_items_are_checked_as_they_are_built_and_then_passed_as_they_are() -> None:
    items = RunItems.of({"k1": {"email": "a@b.co"}, "k2": {"email": "c@d.co"}})
    assert items == [
        {"id": "k1", "inputs": {"email": "a@b.co"}},
        {"id": "k2", "inputs": {"email": "c@d.co"}},
    ]
    assert check_items(items) is items  # not copied, not checked again
    with pytest.raises(ConfigError, match="1 to 100 items, not 0"):
        RunItems.of({})
    with pytest.raises(ConfigError, match="1 to 100 items, not 101"):
        RunItems.of({f"k{i}": {} for i in range(101)})
    with pytest.raises(ConfigError, match="1 to 64 characters"):
        RunItems.of({"k" * 65: {}})
    with pytest.raises(ConfigError, match="inputs must be a dict"):
        RunItems.of({"k": "a@b.co"})  # type: ignore[dict-item]


def test_the_collector_thresholds_are_put_back_even_when_the_engine_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), old_objects_kept():
        assert gc.get_threshold() == ENGINE_GC_THRESHOLDS
        raise RuntimeError("the engine failed")
    assert gc.get_threshold() == before


def test_overlapping_engines_leave_the_thresholds_to_the_first() -> None:
    before = gc.get_threshold()
    first_in, second_done = threading.Event(), threading.Event()

    def second() -> None:
        first_in.wait(10)
        with old_objects_kept():
            assert gc.get_threshold() == ENGINE_GC_THRESHOLDS
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    with old_objects_kept():
        first_in.set()
        assert second_done.wait(10)
        assert gc.get_threshold() == ENGINE_GC_THRESHOLDS  # the second did not put them back
    thread.join(10)
    assert gc.get_threshold() == before


def test_an_enrichment_charges_each_row_once_and_leaves_the_collector_as_it_was(
    emulator: Any,
) -> None:
    before = gc.get_threshold()
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    df = pd.DataFrame({"Email": [f"person{i}@company{i % 7}.com" for i in range(250)]})
    out = claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, progress=False, batch_size=100
    )
    assert gc.get_threshold() == before
    assert set(out["clay_status"]) <= {"enriched", "no_match"}
    charged = [c["inputs_key"] for c in emulator.meters()["charges"]]
    assert len(charged) == (out["clay_status"] == "enriched").sum() > 0  # a miss is free
    assert len(charged) == len(set(charged))  # no row charged twice
