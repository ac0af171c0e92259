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
# Debian packages the tests drive, installed only as root with apt (CI); elsewhere their tests
# are skipped while the programs are missing. The admin pages' browser test: Chromium and a CJK
# font so Chinese is not boxes. The multi-instance tests: real PostgreSQL and Redis servers
# (the tests start throwaway ones on free ports; the packages' own services are not used).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver fonts-wqy-microhei)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
