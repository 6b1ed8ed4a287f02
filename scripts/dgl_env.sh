#!/usr/bin/env bash
# Build .venv-dgl, the separate environment DGL needs: its newest Linux wheel (2.1.0) imports
# only with torch <= 2.2.1 and numpy < 2, and needs torchdata, pandas, pyyaml and pydantic, which
# it does not declare (../shared/ENVIRONMENT.md). The core .venv (torch 2.11) cannot hold it.
#
# PyPI has only CUDA builds of torch for Linux (CPU wheels live on download.pytorch.org); they
# run on the CPU. The whole environment is pinned in requirements/dgl-lock.txt and installed with
# --no-deps, which leaves out triton (420 MB, unused here): about 4.9 GB installed, no pip cache.
# Idempotent: a stamp holding the lock's checksum skips a rebuild.
#
#   scripts/dgl_env.sh            # build or confirm .venv-dgl
#   DGL_VENV=/path scripts/dgl_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${DGL_VENV:-.venv-dgl}"
PYTHON="${PYTHON:-python3.11}"   # dgl 2.1.0 has cp38-cp311 wheels; 3.11 is what the core uses
LOCK=requirements/dgl-lock.txt
STAMP="$VENV/.installed"
SUM="$(sha256sum "$LOCK" | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$SUM" ]]; then
    touch "$STAMP"
    echo "$VENV is up to date ($LOCK)"
    exit 0
fi
if ! command -v "$PYTHON" >/dev/null; then
    echo "error: $PYTHON not found; DGL 2.1.0 wheels need CPython 3.8-3.11: set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
rm -f "$STAMP"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1 DGLBACKEND=pytorch
echo "building $VENV from $LOCK (free disk: $(df -h --output=avail . | tail -1 | tr -d ' '))"
"$VENV/bin/python" -m pip install -q --no-cache-dir --no-deps -r "$LOCK"
"$VENV/bin/python" -c "import dgl, torch; print(f'dgl {dgl.__version__}, torch {torch.__version__} in $VENV')"
echo "$SUM" > "$STAMP"
