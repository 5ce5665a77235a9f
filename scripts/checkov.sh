#!/usr/bin/env bash
# Run checkov over terraform/ from its own virtualenv (.venv-checkov).
# checkov pins many dependencies; keeping it apart keeps the project venv clean.
# Usage: scripts/checkov.sh [--install-only] [extra checkov args]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${CHECKOV_VENV:-$root/.venv-checkov}"
version="${CHECKOV_VERSION:-3.3.30}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/checkov" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "checkov==$version"
fi

if [ "${1:-}" = "--install-only" ]; then
    exit 0
fi

# Offline: no Bridgecrew platform, no version check, no module downloads.
export BC_SKIP_MAPPING=TRUE
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
export ENABLE_SCA_PACKAGE_SCAN=false

exec "$venv/bin/checkov" \
    --directory "$root/terraform" \
    --framework terraform \
    --quiet \
    --compact \
    --skip-download \
    --download-external-modules false \
    "$@"
