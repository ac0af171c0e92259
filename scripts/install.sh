#!/usr/bin/env bash
# Install the bot and its test tools into the current Python environment.
# torch goes first, pinned: the local CPU build. An unpinned torch would pull GBs of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"
# The admin pages' browser test drives Debian's Chromium; a CJK font so Chinese is not boxes.
# Only as root with apt (CI); elsewhere that test is skipped while /usr/bin/chromium is missing.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    chromium chromium-driver fonts-wqy-microhei >/dev/null
fi
