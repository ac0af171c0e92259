#!/usr/bin/env bash
# torch 2.13.0, CPU build: `bash scripts/torch_cpu.sh install` (or `download -d DIR --no-deps`).
#
# From PyPI the same pin pulls the CUDA build on Linux: ~900 MB of torch plus ~3 GB of nvidia-*
# packages. PyTorch's CPU index ($TORCH_INDEX_URL, default https://download.pytorch.org/whl/cpu;
# empty = PyPI and pip's own settings only) serves torch-2.13.0+cpu: ~190 MB to download,
# ~750 MB installed; pip prefers it to PyPI's 2.13.0 because +cpu sorts higher. Where the index
# cannot be reached (offline CI with a local wheel folder) pip gives up on it after
# $TORCH_INDEX_TIMEOUT seconds (default 15) without retries and takes what else it finds.
# An installed CPU torch 2.13.0 is kept as it is.
set -euo pipefail
action="${1:?usage: torch_cpu.sh install|download [pip options]}"
shift
if [ "$action" = install ] && python3 -c \
    'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.13.0" or bool(torch.version.cuda))' \
    2>/dev/null; then
  exit 0
fi
index="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
extra=()
if [ -n "$index" ]; then
  extra=(--extra-index-url "$index" --timeout "${TORCH_INDEX_TIMEOUT:-15}" --retries 0)
fi
python3 -m pip "$action" --disable-pip-version-check "${extra[@]}" "$@" "torch==2.13.0"
if [ "$action" = install ] && ! python3 -c 'import sys, torch; sys.exit(bool(torch.version.cuda))'; then
  echo "install: got a CUDA build of torch; set TORCH_INDEX_URL to an index with the CPU build" >&2
fi
