#!/usr/bin/env bash
# Build component.wasm from app.py. componentize-py (PyPI) bundles CPython, the standard
# library and app.py into one WebAssembly component that implements wit/ (the host's
# contract, as `host wit` writes it). No Rust toolchain is needed.
set -euo pipefail
cd "$(dirname "$0")"
version={{componentize_py_version}}
cpy=${COMPONENTIZE_PY:-}
if [ -z "$cpy" ]; then
    # The host's setup installs the same version; else a private .venv gets it from PyPI.
    for candidate in "{{host_root}}/.deps/venv/bin/componentize-py" .venv/bin/componentize-py; do
        if [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -qx "componentize-py $version"; then
            cpy=$candidate
            break
        fi
    done
fi
if [ -z "$cpy" ]; then
    command -v python3 >/dev/null || { echo "error: python3 is needed (apt-get install python3 python3-venv)" >&2; exit 1; }
    echo "installing componentize-py $version into .venv (PyPI)"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "componentize-py==$version"
    cpy=.venv/bin/componentize-py
fi
"$cpy" -q -d wit -w {{world}} componentize app -o component.wasm.tmp
mv component.wasm.tmp component.wasm
echo "built component.wasm ($(stat -c %s component.wasm) bytes)"
