#!/usr/bin/env bash
# The whole test suite: lint, types, unit and integration tests, notebooks under nbmake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
. .venv/bin/activate
ruff check claynb tests benchmarks
mypy
pytest -n 3 --dist loadgroup tests notebooks --nbmake "$@"
