#!/usr/bin/env bash
# Install the bot into the current Python environment; with --test also what the tests need.
# torch goes first, the CPU build (scripts/torch_cpu.sh): the project's torch==2.13.0 is then
# satisfied, where from PyPI it would pull GBs of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
pip=(python3 -m pip install --quiet --disable-pip-version-check)
bash scripts/torch_cpu.sh install --quiet
if [ "${1:-}" != "--test" ]; then
  "${pip[@]}" -e .
  exit 0
fi
"${pip[@]}" -e ".[test]"
# The admin pages' browser test drives Debian's Chromium; a CJK font so Chinese is not boxes.
# Only as root with apt (CI); elsewhere that test is skipped while /usr/bin/chromium is missing.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    chromium chromium-driver fonts-wqy-microhei >/dev/null
fi
