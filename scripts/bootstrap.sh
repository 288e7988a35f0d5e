#!/usr/bin/env bash
# Make .venv and install claynb into it with the given extras (default: dev).
# Idempotent: a second run only re-checks the install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
# The notebooks run on this kernel under nbmake and in `claynb share`.
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
# numba (the fast extra) compiles claynb.sim's loops once and keeps them beside the module:
# a tiny decision grid does it here, once, not in every process of a parallel test run at once.
.venv/bin/python -c "from claynb import sim; sim.decision_grid((1000,), (300,))"
