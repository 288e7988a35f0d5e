#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests, notebooks under nbmake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
. .venv/bin/activate
ruff check claynb tests benchmarks scripts
ruff format --check claynb tests benchmarks scripts
mypy
bash scripts/test_pandas2.sh   # the frame code on pandas 2.2 too
# Notebooks run under nbmake, which bypasses tests/conftest.py: a developer's real key and
# spend permission are removed here so the suite can never spend real credits.
env -u CLAY_API_KEY -u CLAY_BASE_URL -u CLAYNB_ALLOW_SPEND \
  pytest -n 3 tests notebooks --nbmake "$@"
