#!/usr/bin/env bash
# The main job: the quickstart notebook on the embedded emulator, exported to HTML.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh all
.venv/bin/claynb demo "$@"
