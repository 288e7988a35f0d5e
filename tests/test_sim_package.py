"""claynb.sim as a package: reachable from claynb, sorted exports, and no slow imports."""

from __future__ import annotations

import subprocess
import sys

import claynb
from claynb import sim


def test_sim_is_re_exported() -> None:
    assert "sim" in claynb.__all__
    assert claynb.sim is sim
    for name in (
        "simulate",
        "decision_matrix",
        "plot_decision_matrix",
        "recommend",
        "optimise_waterfall",
    ):
        assert callable(getattr(sim, name))


def test_exports_are_sorted_and_exist() -> None:
    assert sim.__all__ == sorted(sim.__all__)
    for name in sim.__all__:
        assert hasattr(sim, name), name


def test_importing_claynb_does_not_import_matplotlib_or_widgets() -> None:
    code = (
        "import sys, claynb; from claynb import sim; "
        "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'simpy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
