"""Progress of an enrichment: rows done, credits spent, time left.

In Jupyter a ``tqdm.auto`` widget; in a terminal a tqdm bar; anywhere else (a log file, a
CI job, a notebook executed headless) a plain line every few seconds and one at the end,
so the output stays readable. ``progress=False`` turns it all off. Backends only call
:meth:`Progress.advance`; it is safe to call from any thread.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from claynb._routines import Cost

# Seconds between two lines of plain-text progress.
PLAIN_EVERY_S = 5.0


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _describe(cost: Cost) -> str:
    return f"{cost.actions:g} Actions, {cost.data_credits:g} Data Credits"


class Progress:
    """Counts rows and cost; draws them as a bar, as text, or not at all.

    ``total`` None means not known in advance (a search without a limit): the bar counts up.
    """

    def __init__(
        self,
        total: int | None,
        *,
        desc: str = "enriching",
        mode: str = "auto",
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.desc = total, desc
        self.done = 0
        self.cost = Cost()
        self._lock = threading.Lock()
        self._stream = stream or sys.stderr
        self._started = time.monotonic()
        self._last_line = 0.0
        self._bar: Any = None
        self.mode = self._choose(mode)
        if self.mode == "bar" and total != 0:
            self._bar = self._make_bar()

    def _choose(self, mode: str) -> str:
        if mode not in ("auto", "bar", "text", "off"):
            raise ValueError(f"progress mode must be auto, bar, text or off, not {mode!r}")
        if mode != "auto":
            return mode
        isatty = getattr(self._stream, "isatty", lambda: False)()
        return "bar" if _in_jupyter() or isatty else "text"

    def _make_bar(self) -> Any:
        if _in_jupyter():
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        return tqdm(
            total=self.total,
            desc=self.desc,
            unit="row",
            file=self._stream,
            dynamic_ncols=True,
            leave=True,
        )

    def advance(self, rows: int, cost: Cost | None = None) -> None:
        """``rows`` more rows are done, and Clay charged ``cost`` for them."""
        with self._lock:
            self.done += rows
            if cost is not None:
                self.cost = self.cost + cost
            if self._bar is not None:
                self._bar.update(rows)
                self._bar.set_postfix_str(_describe(self.cost), refresh=False)
            elif self.mode == "text":
                self._maybe_line()

    def _eta(self) -> str:
        elapsed = time.monotonic() - self._started
        if not self.done or not self.total or self.done >= self.total:
            return f"{elapsed:.1f}s elapsed"
        left = elapsed / self.done * (self.total - self.done)
        return f"about {left:.0f}s left"

    def _line(self) -> str:
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        count = f"{self.done}" if self.total is None else f"{self.done}/{self.total}"
        return f"{self.desc}: {count} rows{share}, {_describe(self.cost)}, {self._eta()}"

    def _maybe_line(self) -> None:
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY_S:
            self._last_line = now
            print(self._line(), file=self._stream, flush=True)

    def close(self) -> None:
        """Finish the bar, or print the final line."""
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix_str(_describe(self.cost), refresh=True)
                self._bar.close()
                self._bar = None
            elif self.mode == "text" and self.total != 0:
                print(self._line(), file=self._stream, flush=True)
                self.mode = "off"

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_progress(progress: bool | str | Progress, total: int | None, desc: str) -> Progress:
    """``progress=`` as given to enrich: True (auto), False (off), a mode name, or a Progress."""
    if isinstance(progress, Progress):
        return progress
    if progress is True:
        return Progress(total, desc=desc)
    if progress is False or progress is None:
        return Progress(total, desc=desc, mode="off")
    return Progress(total, desc=desc, mode=str(progress))
