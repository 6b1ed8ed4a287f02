#!/usr/bin/env bash
# Build .venv-dgl, the separate environment DGL needs: its newest Linux wheel (2.1.0) imports
# only with torch <= 2.2.1 and numpy < 2, and needs torchdata, pandas, pyyaml and pydantic, which
# it does not declare (../shared/ENVIRONMENT.md). The core .venv (torch 2.11) cannot hold it.
#
# PyPI has only CUDA builds of torch for Linux (CPU wheels live on download.pytorch.org); they
# run on the CPU. About 5 GB installed. Idempotent: a stamp holding the pins skips a rebuild.
#
#   scripts/dgl_env.sh            # build or confirm .venv-dgl
#   DGL_VENV=/path scripts/dgl_env.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${DGL_VENV:-.venv-dgl}"
PYTHON="${PYTHON:-python3.11}"   # dgl 2.1.0 has cp38-cp311 wheels; 3.11 is what the core uses
PINS=(torch==2.2.1 numpy==1.26.4 dgl==2.1.0 torchdata==0.7.1 pandas==3.0.6 pyyaml==6.0.4 pydantic==2.14.4 pytest==9.2.0)
STAMP="$VENV/.installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "${PINS[*]}" ]]; then
    touch "$STAMP"
    echo "$VENV is up to date (${PINS[*]})"
    exit 0
fi
if ! command -v "$PYTHON" >/dev/null; then
    echo "error: $PYTHON not found; DGL 2.1.0 wheels need CPython 3.8-3.11: set PYTHON=/path/to/python3.11" >&2
    exit 2
fi
rm -f "$STAMP"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1 DGLBACKEND=pytorch
"$VENV/bin/python" -m pip install -q --no-cache-dir "${PINS[@]}"
"$VENV/bin/python" -c "import dgl, torch; print(f'dgl {dgl.__version__}, torch {torch.__version__} in $VENV')"
echo "${PINS[*]}" > "$STAMP"
