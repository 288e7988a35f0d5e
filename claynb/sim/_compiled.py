"""Whether the engine's loops run compiled: numba where it is installed, unless told not to.

The two loops that walk jobs one at a time (the multi-server queue and the batching
workers) have compiled twins in ``_kernels`` that make the same runs to the last bit, tens
of times faster: what lets a dashboard re-simulate its whole grid while a person waits.
numba is an optional extra (``pip install claynb[fast]``, part of ``notebook``); without it,
or with ``CLAYNB_SIM_ENGINE=python``, the pure-Python loops run, with the same answers.
"""

from __future__ import annotations

import os
from types import ModuleType

ENV_ENGINE = "CLAYNB_SIM_ENGINE"


def kernels() -> ModuleType | None:
    """The compiled loops, or ``None`` when numba is missing or the pure loops are asked for.

    Read at every call, so a test or a session can switch engines without a restart; the
    import itself happens once (Python keeps the module), and numba keeps its compiled code
    on disk beside the module.
    """
    if os.environ.get(ENV_ENGINE, "").strip().lower() == "python":
        return None
    try:
        from claynb.sim import _kernels
    except ImportError:
        return None
    return _kernels


def engine_name() -> str:
    """``compiled`` or ``python``: which loops a simulation run now would use."""
    return "compiled" if kernels() is not None else "python"
