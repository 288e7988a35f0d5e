"""Where claynb keeps its state: one answer for every reader.

The journal, the cache, the ledger and the dead-letter list (SQLite), the webhook sources'
submission counts and the event tier's receiver claims all live under one directory:
``home`` when a caller passes one, else ``$CLAYNB_HOME``, else ``./.claynb``, with ``~``
expanded. Every reader asks :func:`state_home`, so two parts of claynb never disagree on
where a file is (one reading ``~/x`` literally while another expands it).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "CLAYNB_HOME"
DEFAULT_HOME = ".claynb"


def state_home(home: str | Path | None = None) -> Path:
    """``home``, else ``$CLAYNB_HOME``, else ``./.claynb``; ``~`` expanded."""
    return Path(home or os.environ.get(ENV_HOME) or DEFAULT_HOME).expanduser()
