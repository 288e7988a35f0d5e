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
