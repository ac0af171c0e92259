#!/usr/bin/env bash
# Install the bot and its test tools into the current Python environment.
# torch goes first, pinned: the local CPU build. An unpinned torch would pull GBs of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
