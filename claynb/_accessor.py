"""The ``df.clay`` accessor: a thin facade over :func:`claynb.enrich` and friends.

pandas caches an accessor per frame, so nothing is stored on it: every method hands the
frame to a plain function that can be used and tested without the accessor.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


@pd.api.extensions.register_dataframe_accessor("clay")
class ClayAccessor:
    """``df.clay.enrich(...)``, ``df.clay.estimate(...)``, ``df.clay.failures(...)``,
    ``df.clay.send_to_table(...)``."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def enrich(self, routine: Any, inputs: Any = None, **kwargs: Any) -> pd.DataFrame:
        """A new frame enriched through Clay; see :func:`claynb.enrich`."""
        from claynb.pipeline._enrich import enrich

        return enrich(self._frame, routine, inputs, **kwargs)

    async def enrich_async(self, routine: Any, inputs: Any = None, **kwargs: Any) -> pd.DataFrame:
        """``await df.clay.enrich_async(...)``; see :func:`claynb.enrich_async`."""
        from claynb.pipeline._enrich import enrich_async

        return await enrich_async(self._frame, routine, inputs, **kwargs)

    def estimate(self, routine: Any, inputs: Any = None, **kwargs: Any) -> Any:
        """What enriching this frame would cost, spending nothing; see :func:`claynb.estimate`."""
        from claynb.pipeline._estimate import estimate

        return estimate(self._frame, routine, inputs, **kwargs)

    def failures(self, routine: Any = None, inputs: Any = None, **kwargs: Any) -> pd.DataFrame:
        """The rows of this frame that failed.

        On an enriched frame (it has ``clay_status``), its failed rows. Given a routine and
        ``inputs``, the dead-letter entries for this frame's rows (what
        ``retry_failed=True`` would re-send). Otherwise the whole dead-letter list
        (:func:`claynb.failures`), of one routine when given.
        """
        from claynb.pipeline._estimate import frame_failures

        return frame_failures(self._frame, routine, inputs, **kwargs)

    def send_to_table(
        self, webhook_url: str, auth_token: str | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """Push this frame into a Clay table and join back its HTTP API column's callbacks
        by row id; see :func:`claynb.events.send_to_table`."""
        from claynb.events._tables import send_to_table

        return send_to_table(self._frame, webhook_url, auth_token, **kwargs)
