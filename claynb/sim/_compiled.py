"""Whether the engine's loops run compiled: numba where it is installed, unless told not to.

The two loops that walk jobs one at a time (the multi-server queue and the batching
workers) have compiled twins in ``_kernels`` that make the same runs to the last bit, tens
of times faster: what lets a dashboard re-simulate its whole grid while a person waits.
numba is an optional extra (``pip install claynb[fast]``, part of ``notebook``); without it,
or with ``CLAYNB_SIM_ENGINE=python``, the pure-Python loops run, with the same answers.

Loading numba and the compiled code costs about half a second, once per process: more than
the pure loops take for one simulation of a few tens of thousands of leads. So a small
simulation uses the compiled loops only once something bigger has loaded them (a decision
grid, a threshold search, a simulation of ``LOAD_AT_LEADS`` leads or more); which loops ran
never changes an answer.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from types import ModuleType

ENV_ENGINE = "CLAYNB_SIM_ENGINE"
LOAD_AT_LEADS = 100_000
_KERNELS = "claynb.sim._kernels"


class Engine(StrEnum):
    """Which loops simulate: ``CLAYNB_SIM_ENGINE`` takes these values."""

    COMPILED = "compiled"
    PYTHON = "python"


def kernels(leads: int | None = None) -> ModuleType | None:
    """The compiled loops, or ``None`` for the pure ones.

    ``None`` when numba is missing, when ``CLAYNB_SIM_ENGINE=python``, or when a job of
    ``leads`` leads is too small to be worth loading them and nothing has loaded them yet;
    ``leads=None`` loads them if it can (a caller about to run many simulations). Read at
    every call, so a test or a session can switch engines without a restart; numba keeps
    its compiled code on disk beside the module, so only the first process compiles.
    """
    if os.environ.get(ENV_ENGINE, "").strip().lower() == Engine.PYTHON:
        return None
    loaded = sys.modules.get(_KERNELS)
    if loaded is not None or (leads is not None and leads < LOAD_AT_LEADS):
        return loaded
    try:
        from claynb.sim import _kernels
    except ImportError:
        return None
    return _kernels


def engine() -> Engine:
    """Which loops a large simulation run now would use."""
    return Engine.COMPILED if kernels() is not None else Engine.PYTHON
