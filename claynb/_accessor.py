"""The ``df.clay`` accessor: a thin facade over :func:`claynb.enrich` and friends.

pandas caches an accessor per frame, so nothing is stored on it: every method hands the
frame to a plain function that can be used and tested without the accessor. Each method
declares the function's own parameters (so ``help()`` and Jupyter's Shift-Tab show them)
and carries its docstring; ``tests/test_accessor.py`` checks the two stay the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from claynb.events._tables import DEFAULT_TIMEOUT_S, send_to_table
from claynb.pipeline._enrich import enrich, enrich_async
from claynb.pipeline._estimate import MIN_OBSERVED, estimate, frame_failures
from claynb.pipeline._merge import DEFAULT_PREFIX

if TYPE_CHECKING:
    from claynb._plans import Plan
    from claynb._routines import Cost, Routine
    from claynb.events._dedupe import DedupeStore
    from claynb.pipeline._budget import Budget
    from claynb.pipeline._estimate import Estimate

F = TypeVar("F", bound=Callable[..., Any])


def _doc_of(function: Callable[..., Any]) -> Callable[[F], F]:
    """The method says what the function behind it says (one docstring, two doors)."""

    def copy(method: F) -> F:
        method.__doc__ = function.__doc__
        return method

    return copy


def _forward(function: Callable[..., Any], frame: pd.DataFrame, arguments: dict[str, Any]) -> Any:
    """Call ``function(frame, ...)`` with a method's own arguments (its ``locals()``)."""
    arguments = {k: v for k, v in arguments.items() if k != "self"}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            arguments.update(arguments.pop(parameter.name, {}))
    return function(frame, **arguments)


@pd.api.extensions.register_dataframe_accessor("clay")
class ClayAccessor:
    """``df.clay.enrich(...)``, ``df.clay.estimate(...)``, ``df.clay.failures(...)``,
    ``df.clay.send_to_table(...)``: the functions of the same names, on this frame."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    @_doc_of(enrich)
    def enrich(
        self,
        routine: str | Routine,
        inputs: Mapping[str, Any] | None = None,
        *,
        client: Any = None,
        budget: Budget | None = None,
        cost: Cost | Mapping[str, float] | None = None,
        cache: bool = True,
        max_age: timedelta | float | None = None,
        refresh: bool = False,
        backend: str = "direct",
        progress: bool | str = True,
        concurrency: int | None = None,
        retry_failed: bool = False,
        resend_unknown: bool = False,
        prefix: str = DEFAULT_PREFIX,
        overwrite: bool = False,
        home: str | Path | None = None,
        **options: Any,
    ) -> pd.DataFrame:
        return _forward(enrich, self._frame, locals())

    @_doc_of(enrich_async)
    async def enrich_async(
        self,
        routine: str | Routine,
        inputs: Mapping[str, Any] | None = None,
        *,
        client: Any = None,
        budget: Budget | None = None,
        cost: Cost | Mapping[str, float] | None = None,
        cache: bool = True,
        max_age: timedelta | float | None = None,
        refresh: bool = False,
        backend: str = "direct",
        progress: bool | str = True,
        concurrency: int | None = None,
        retry_failed: bool = False,
        resend_unknown: bool = False,
        prefix: str = DEFAULT_PREFIX,
        overwrite: bool = False,
        home: str | Path | None = None,
        **options: Any,
    ) -> pd.DataFrame:
        return await _forward(enrich_async, self._frame, locals())

    @_doc_of(estimate)
    def estimate(
        self,
        routine: str | Routine,
        inputs: Mapping[str, Any] | None = None,
        *,
        client: Any = None,
        plan: str | Plan | None = None,
        budget: Any = None,
        cost: Cost | Mapping[str, float] | None = None,
        cache: bool = True,
        max_age: timedelta | float | None = None,
        refresh: bool = False,
        retry_failed: bool = False,
        resend_unknown: bool = False,
        min_observed: int = MIN_OBSERVED,
        home: str | Path | None = None,
        **_ignored: Any,
    ) -> Estimate:
        return _forward(estimate, self._frame, locals())

    @_doc_of(frame_failures)
    def failures(
        self,
        routine: str | Routine | None = None,
        inputs: Mapping[str, Any] | None = None,
        *,
        home: str | Path | None = None,
    ) -> pd.DataFrame:
        return _forward(frame_failures, self._frame, locals())

    @_doc_of(send_to_table)
    def send_to_table(
        self,
        webhook_url: str,
        auth_token: str | None = None,
        *,
        client: Any = None,
        receiver: Any = None,
        store: DedupeStore | str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        poll_s: float = 0.25,
        wait: bool = True,
        send_id: str | None = None,
    ) -> pd.DataFrame:
        return _forward(send_to_table, self._frame, locals())
