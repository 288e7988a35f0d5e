#!/usr/bin/env bash
# claynb supports pandas 2.2 as well as 3.x: the frame-building tests run again on pandas 2.2
# in a venv of their own (.venv-pandas2), since the main venv carries pandas 3.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-pandas2
.venv-pandas2/bin/python -m pip install --quiet --upgrade pip
.venv-pandas2/bin/python -m pip install --quiet -e . "pandas>=2.2,<2.3" pytest pytest-timeout pytest-xdist hypothesis
env -u CLAY_API_KEY -u CLAY_BASE_URL -u CLAYNB_ALLOW_SPEND \
  .venv-pandas2/bin/python -m pytest -q -n 2 -p no:cacheprovider \
  tests/test_enrich_frame.py tests/test_enrich_normalise.py tests/test_enrich_budget.py \
  tests/test_enrich_failures.py tests/test_estimate.py tests/test_ledger.py tests/test_cache.py \
  tests/test_share_leads.py tests/test_search.py tests/test_tables_read.py \
  tests/test_enrich_output_same.py tests/test_normalise_columns.py tests/test_normalise_keys.py \
  tests/test_merge_columns.py
