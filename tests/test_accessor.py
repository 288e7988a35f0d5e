"""``df.clay``: the same parameters and docs as the functions behind it, and no silent overwrite."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import claynb
from claynb._accessor import ClayAccessor
from claynb.events._tables import send_to_table
from claynb.pipeline._estimate import frame_failures

BEHIND: dict[str, Callable[..., Any]] = {
    "enrich": claynb.enrich,
    "enrich_async": claynb.enrich_async,
    "estimate": claynb.estimate,
    "failures": frame_failures,
    "send_to_table": send_to_table,
}


def without_first(function: Callable[..., Any]) -> inspect.Signature:
    signature = inspect.signature(function)
    return signature.replace(parameters=list(signature.parameters.values())[1:])


@pytest.mark.parametrize("name", sorted(BEHIND))
def test_each_method_has_the_functions_signature_and_docstring(name: str) -> None:
    method, function = getattr(ClayAccessor, name), BEHIND[name]
    assert without_first(method) == without_first(function)  # names, kinds, defaults, types
    assert method.__doc__ and method.__doc__ == function.__doc__
    assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(function)


def test_shift_tab_shows_the_real_parameters() -> None:
    shown = str(inspect.signature(pd.DataFrame().clay.enrich))
    assert "budget" in shown and "backend: 'str' = 'direct'" in shown and "prefix" in shown
    assert set(BEHIND) == {n for n in vars(ClayAccessor) if not n.startswith("_")}


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Email": ["ada.lovelace@engines.co.uk", "grace.hopper@navy.mil"],
            "clay_status": ["from the CRM", "from the CRM"],
            "clay_title": ["kept", "kept"],
        }
    )


def test_existing_output_columns_stop_the_call_before_anything_is_sent(emulator: Any) -> None:
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    with pytest.raises(ValueError) as info:
        frame().clay.enrich("enrich-person", {"email": "Email"}, client=client, progress=False)
    message = str(info.value)
    assert "'clay_title'" in message and "'clay_status'" in message
    assert "prefix=" in message and "overwrite=True" in message
    assert emulator.meters(charges=False)["requests"]["total"] == 0


def test_a_prefix_writes_beside_them_and_overwrite_replaces_them(
    emulator: Any, claynb_home: Path
) -> None:
    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    df = frame()
    beside = df.clay.enrich(
        "enrich-person", {"email": "Email"}, client=client, prefix="enriched_", progress=False
    )
    assert (beside["clay_status"] == "from the CRM").all()  # the frame's own, untouched
    assert set(beside["enriched_status"]) <= {"enriched", "no_match"}
    assert "enriched_title" in beside and "enriched_data_credits" in beside
    replaced = df.clay.enrich(
        "enrich-person", {"email": "Email"}, client=client, overwrite=True, progress=False
    )
    assert list(replaced.columns[:3]) == ["Email", "clay_status", "clay_title"]  # in place
    assert (replaced["clay_status"] == "cached").all()
    pd.testing.assert_series_equal(
        replaced["clay_title"], beside["enriched_title"], check_names=False
    )
    assert (df["clay_status"] == "from the CRM").all()  # the input frame is never changed
