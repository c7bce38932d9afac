#!/usr/bin/env bash
# Run a command inside vitadapter's virtual environment (.venv/ at the repo root), creating or
# updating it first when needed. Examples:
#   bash tools/in_venv.sh python tools/demo.py
#   bash tools/in_venv.sh python -m pytest -q tests
#
# What the set-up does, and why (each line is a trap somebody fell into):
# * torch and torchvision are a matching CUDA pair from PyPI. The CPU-only torch that a local
#   wheel folder may offer (`torch-...+cpu`) has no matching torchvision: timm imports torchvision
#   and dies with "operator torchvision::nms does not exist". Extra wheel folders (pip's
#   find-links) are switched off for that step so the `+cpu` twin is never picked.
# * mmcv 2.1.0 exists on PyPI only as source. It is built once with its ops (mmseg imports
#   mmcv.ops) against the installed torch, with setuptools < 82 (its setup.py needs
#   pkg_resources), and the wheel is cached in $VITADAPTER_CACHE (default ~/.cache/vitadapter),
#   keyed by the torch version: the ~12 minute build happens once per machine.
# * Every version comes from tools/constraints.txt. A stamp file records the hash of that file
#   and setup.py; when neither changed, the set-up is skipped and the command runs at once.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
CONSTRAINTS="$ROOT/tools/constraints.txt"
CACHE="${VITADAPTER_CACHE:-$HOME/.cache/vitadapter}"
PYTHON_FOR_VENV="${PYTHON:-python3.11}"
STAMP="$VENV/.vitadapter-setup"

log() { echo "[in_venv] $*" >&2; }

want_stamp() {
    cat "$CONSTRAINTS" "$ROOT/setup.py" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1
}

setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PYTHON_FOR_VENV" >/dev/null || PYTHON_FOR_VENV=python3
        log "creating $VENV with $($PYTHON_FOR_VENV --version)"
        "$PYTHON_FOR_VENV" -m venv "$VENV"
    fi
    local py="$VENV/bin/python"
    # pip with the package index only: no local wheel folders (they may hold torch's +cpu twin)
    # and no config files; the CA bundle is passed on explicitly.
    local pip=(env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null
               "$py" -m pip install --disable-pip-version-check -c "$CONSTRAINTS")
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        pip+=(--cert /etc/ssl/certs/ca-certificates.crt)
    fi

    log "build tools (setuptools with pkg_resources, wheel, ninja)"
    "${pip[@]}" -q setuptools wheel ninja numpy

    log "torch + torchvision (matching CUDA pair from the package index, never a +cpu wheel)"
    "${pip[@]}" -q torch torchvision
    "$py" - <<'PY'
import sys
import torch, torchvision
suffix = lambda v: v.partition("+")[2]  # "2.13.0+cu130" -> "cu130"
if suffix(torch.__version__) in ("", "cpu") or suffix(torch.__version__) != suffix(torchvision.__version__):
    sys.exit(f"torch {torch.__version__} and torchvision {torchvision.__version__} are not a "
             "matching CUDA pair: remove .venv and run again")
import torchvision.ops  # the import that fails when the pair does not match
print(f"[in_venv] torch {torch.__version__} cuda {torch.version.cuda}, "
      f"torchvision {torchvision.__version__}", file=sys.stderr)
PY

    local torch_tag
    torch_tag="$("$py" -c 'import torch; print(torch.__version__)')"
    local wheel_dir="$CACHE/wheels/torch-$torch_tag"
    if ! "$py" -c 'import mmcv.ops' 2>/dev/null; then
        if ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
            log "building mmcv 2.1.0 with ops against torch $torch_tag (once per machine, ~12 min)"
            mkdir -p "$wheel_dir"
            # "pip wheel" takes the same options as "pip install": reuse the array.
            MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" "${pip[@]/install/wheel}" \
                --no-build-isolation --no-deps -w "$wheel_dir" mmcv==2.1.0 >&2
        fi
        "${pip[@]}" -q "$wheel_dir"/mmcv-2.1.0-*.whl
    fi

    log "vitadapter and the rest (timm, mmengine, mmsegmentation, test tools)"
    "${pip[@]}" -q -e "$ROOT[test]"
    "$py" -c 'import timm, mmcv.ops, mmseg, mmengine, vitadapter' \
        || { log "import check failed"; exit 1; }
    want_stamp > "$STAMP"
    log "environment ready"
}

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(want_stamp)" ]; then
    # One set-up at a time: a second caller waits, then finds the stamp current.
    mkdir -p "$VENV"
    exec 9>"$VENV.lock"
    flock 9
    if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(want_stamp)" ]; then
        setup_venv
    fi
    flock -u 9
fi

export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
cd "$ROOT"
exec "$@"
