#!/usr/bin/env bash
# Lint and render the chart with real Helm, without a helm binary: the
# helm-python-sdk package from PyPI ships Helm v4 compiled as a shared
# library. Installs it (and PyYAML) into a virtualenv under the Cargo target
# directory on first use, then runs charts/check.py.
#
#   charts/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CARGO_TARGET_DIR:-target}/helm-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import helm_python, yaml" 2>/dev/null ||
  "$venv/bin/pip" install -q "helm-python-sdk==0.2.2" "PyYAML>=6"
exec "$venv/bin/python" charts/check.py charts/kubemirror
