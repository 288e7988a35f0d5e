#!/usr/bin/env bash
# JupyterLab on notebooks/ with claynb's kernel (ipywidgets included): the README's third command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh all      # the notebook extra (JupyterLab, ipywidgets) and the tiers' services
args=(--ServerApp.root_dir=notebooks --ServerApp.ip=127.0.0.1)
if [ "$(id -u)" = 0 ]; then args+=(--allow-root); fi   # containers often run as root
exec .venv/bin/jupyter lab "${args[@]}" "$@"
