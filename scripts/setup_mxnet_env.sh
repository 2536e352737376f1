#!/usr/bin/env bash
# Create .venv-mxnet in the repository root from envs/mxnet-requirements.txt: the optional
# MXNet 1.9.1 environment that tests/test_mxnet_compat.py and benchmarks/bench_pack.py use
# as the reference implementation of RecordIO and im2rec.
#
# Needs Python 3.8-3.11 (numpy 1.23.5 has no wheel for newer); set PYTHON to choose one.
# libmxnet.so links the system's libgomp.so.1 and libquadmath.so.0 (it ships its own
# libopenblas and libgfortran); on Debian/Ubuntu: apt-get install libgomp1 libquadmath0.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-mxnet"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if ! "$python" -c 'import sys; sys.exit(not (3, 8) <= sys.version_info[:2] <= (3, 11))'; then
    echo "error: $python is Python $("$python" -c 'import platform; print(platform.python_version())');" \
         "MXNet 1.9.1 with numpy 1.23.5 needs Python 3.8-3.11 (set PYTHON=...)" >&2
    exit 1
fi

rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-deps -r "$root/envs/mxnet-requirements.txt"
"$venv/bin/python" -m pip check

lib="$("$venv/bin/python" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("mxnet").origin))')/libmxnet.so"
missing="$(ldd "$lib" | grep 'not found' || true)"
if [ -n "$missing" ]; then
    echo "error: libmxnet.so needs system libraries that are missing:" >&2
    echo "$missing" >&2
    echo "install them, e.g. apt-get install libgomp1 libquadmath0, and run this again" >&2
    exit 1
fi

"$venv/bin/python" - <<'PY'
import os

import cv2
import mxnet as mx
import numpy as np

im2rec = os.path.join(os.path.dirname(mx.__file__), "tools", "im2rec.py")
assert os.path.isfile(im2rec), f"im2rec.py is not in the wheel at {im2rec}"
print(f"mxnet {mx.__version__}, numpy {np.__version__}, opencv {cv2.__version__}; im2rec: {im2rec}")
PY
echo "ready: $venv"
