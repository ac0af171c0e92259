#!/usr/bin/env bash
# One command that installs what the tests need and runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
exec python3 -m pytest "$@"
