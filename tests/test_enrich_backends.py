"""The backend registry: names resolved lazily, a clear ConfigError otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from claynb import ConfigError
from claynb.direct import run as direct_run
from claynb.pipeline import _backends


def test_known_backends_resolve_to_their_run_function() -> None:
    assert _backends.get_backend("direct") is direct_run
    assert set(_backends.BACKENDS) == {"direct", "queue", "events"}


def test_unknown_or_unavailable_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="unknown backend 'pigeon'.*'direct'"):
        _backends.get_backend("pigeon")
    monkeypatch.setitem(_backends.BACKENDS, "queue", "claynb_missing_module:run")
    with pytest.raises(ConfigError, match=r"backend 'queue' is not available.*claynb\[queue\]"):
        _backends.get_backend("queue")
    monkeypatch.setitem(_backends.BACKENDS, "events", "claynb.direct._engine:no_such_function")
    with pytest.raises(ConfigError, match="has no no_such_function"):
        _backends.get_backend("events")


def test_a_function_can_be_passed_as_the_backend() -> None:
    def mine(*args: object, **kwargs: object) -> list[object]:
        return []

    assert _backends.get_backend(mine) is mine  # type: ignore[arg-type]


def test_every_tier_holds_to_clays_100_items_per_run(emulator: Any) -> None:
    """One limit (wire._config.MAX_RUN_ITEMS), checked the same way by every tier."""
    import pandas as pd

    import claynb
    from claynb.events import ServiceSettings
    from claynb.queue import LeadQueue

    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    df = pd.DataFrame({"Email": ["a.b@example.com"]})
    for backend in ("direct", "queue"):
        with pytest.raises(ConfigError, match="between 1 and 100"):
            claynb.enrich(
                df,
                "enrich-person",
                {"email": "Email"},
                client=client,
                backend=backend,
                batch_size=101,
            )
    with pytest.raises(ConfigError, match="between 1 and 100"):
        ServiceSettings(batch_size=101)
    with pytest.raises(ConfigError, match="between 1 and 100"):
        LeadQueue(connection=object(), batch_size=0)


def test_items_a_backend_returns_no_result_for_come_back_unknown(emulator: Any) -> None:
    """A backend that leaves items unanswered: their rows are ``unknown`` (never charged,
    here, since it sent only the others), the rest as the direct tier answered them."""
    import pandas as pd

    import claynb

    sent: list[str] = []

    def half(routine: Any, items: Any, **kwargs: Any) -> Any:
        first = items[: len(items) // 2]  # items are columns: a slice is items too
        sent.extend(first.keys)
        return direct_run(routine, first, **kwargs)

    client = claynb.ClayClient(api_key=emulator.api_key, base_url=emulator.url)
    df = pd.DataFrame({"Email": [f"p{i}@example.com" for i in range(10)]})
    out = claynb.enrich(
        df, "enrich-person", {"email": "Email"}, client=client, backend=half, progress=False
    )
    statuses = out["clay_status"].tolist()
    assert len(sent) == 5 and statuses[5:] == ["unknown"] * 5
    assert set(statuses[:5]) <= {"enriched", "no_match"}
    assert set(out["clay_error"][5:]) == {"the backend returned no result for this row"}
    assert out["clay_actions"][5:].sum() == 0
    charged = [c["inputs_key"] for c in emulator.meters()["charges"]]
    assert len(charged) == len(set(charged)) == statuses[:5].count("enriched")  # a miss is free
