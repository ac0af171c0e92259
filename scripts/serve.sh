#!/usr/bin/env bash
# One command from a fresh checkout to a running bot: install, convert the default model,
# build the index from knowledge/ and serve the webhook (settings: config.toml or $BOT_CONFIG).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
python3 -m bot index
exec python3 -m bot serve
