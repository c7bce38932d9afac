#!/usr/bin/env bash
# Run a command inside a vitadapter virtual environment, creating or updating it first when needed:
#   bash tools/in_venv.sh python tools/demo.py
#   bash tools/in_venv.sh python -m pytest -q tests
#   VITADAPTER_STACK=upstream bash tools/in_venv.sh python -m pytest -q tests/test_training.py
#
# VITADAPTER_STACK chooses the environment (each its own folder; the stacks share module names, so
# they cannot share one):
#   onedl    (default) .venv/          torch + timm + the maintained OpenMMLab fork (onedl-mmsegmentation
#                                      1.4, onedl-mmcv 2.3 without compiled ops, onedl-mmengine 0.10,
#                                      numpy 2): nothing compiles, a few minutes on 2 cores.
#   upstream           .venv-upstream/ OpenMMLab's last releases (mmsegmentation 1.2.2, mmcv 2.1.0,
#                                      mmengine 0.10.7, numpy 1.26). mmseg 1.2.2 imports mmcv's compiled
#                                      ops and caps mmcv < 2.2, which PyPI has only as source: the
#                                      first set-up compiles it (~30 min on 2 cores), once per machine.
#   core               .venv-core/     the core only: torch + timm + safetensors (no mm* package).
#                                      With VITADAPTER_TIMM=X.Y.Z: .venv-core-timmX.Y.Z/ with that timm
#                                      instead of the pinned one (CI tests the oldest supported).
#
# What the set-up does, and why (each line is a trap somebody fell into):
# * torch and torchvision are a matching CUDA pair from PyPI. The CPU-only torch that a local
#   wheel folder may offer (`torch-...+cpu`) has no matching torchvision: timm imports torchvision
#   and dies with "operator torchvision::nms does not exist". Extra wheel folders (pip's
#   find-links) and pip config files are switched off so the `+cpu` twin is never picked.
# * upstream: mmcv 2.1.0 is built with its ops against the installed torch, with setuptools < 82
#   (its setup.py needs pkg_resources), and the wheel is cached in $VITADAPTER_CACHE (default
#   ~/.cache/vitadapter), keyed by the torch version.
# * Every version comes from the stack's constraints file (tools/constraints.txt for onedl and
#   core, tools/constraints-upstream.txt). A stamp file records the hash of that file, setup.py
#   and this script; when none changed, the set-up is skipped and the command runs at once.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${VITADAPTER_STACK:-onedl}"
case "$STACK" in
    onedl) VENV="$ROOT/.venv"; CONSTRAINTS="$ROOT/tools/constraints.txt" ;;
    upstream) VENV="$ROOT/.venv-upstream"; CONSTRAINTS="$ROOT/tools/constraints-upstream.txt" ;;
    core) VENV="$ROOT/.venv-core${VITADAPTER_TIMM:+-timm$VITADAPTER_TIMM}"
          CONSTRAINTS="$ROOT/tools/constraints.txt" ;;
    *) echo "VITADAPTER_STACK=$STACK: choose onedl (default), upstream or core" >&2; exit 2 ;;
esac
CACHE="${VITADAPTER_CACHE:-$HOME/.cache/vitadapter}"
PYTHON_FOR_VENV="${PYTHON:-python3.11}"
STAMP="$VENV/.vitadapter-setup"

log() { echo "[in_venv:$STACK] $*" >&2; }

want_stamp() {
    { cat "$CONSTRAINTS" "$ROOT/setup.py" "${BASH_SOURCE[0]}"; echo "${VITADAPTER_TIMM:-}"; } \
        | sha256sum | cut -d' ' -f1
}

setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PYTHON_FOR_VENV" >/dev/null || PYTHON_FOR_VENV=python3
        log "creating $VENV with $($PYTHON_FOR_VENV --version)"
        "$PYTHON_FOR_VENV" -m venv "$VENV"
    fi
    local py="$VENV/bin/python"
    if [ -n "${VITADAPTER_TIMM:-}" ]; then  # the pinned timm replaced by the asked one
        grep -v '^timm==' "$CONSTRAINTS" > "$VENV/constraints.txt"
        echo "timm==$VITADAPTER_TIMM" >> "$VENV/constraints.txt"
        CONSTRAINTS="$VENV/constraints.txt"
    fi
    # pip with the package index only: no local wheel folders (they may hold torch's +cpu twin)
    # and no config files; the CA bundle is passed on explicitly.
    local pip=(env -u PIP_FIND_LINKS -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null
               "$py" -m pip install --disable-pip-version-check -c "$CONSTRAINTS")
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        pip+=(--cert /etc/ssl/certs/ca-certificates.crt)
    fi

    log "torch + torchvision (matching CUDA pair from the package index, never a +cpu wheel)"
    if [ "$STACK" = upstream ]; then
        "${pip[@]}" -q setuptools wheel ninja numpy  # mmcv's build runs in this environment
    fi
    "${pip[@]}" -q torch torchvision
    "$py" - <<'PY'
import sys
import torch, torchvision
suffix = lambda v: v.partition("+")[2]  # "2.13.0+cu130" -> "cu130"
if suffix(torch.__version__) in ("", "cpu") or suffix(torch.__version__) != suffix(torchvision.__version__):
    sys.exit(f"torch {torch.__version__} and torchvision {torchvision.__version__} are not a "
             "matching CUDA pair: remove the environment's folder and run again")
import torchvision.ops  # the import that fails when the pair does not match
print(f"[in_venv] torch {torch.__version__} cuda {torch.version.cuda}, "
      f"torchvision {torchvision.__version__}", file=sys.stderr)
PY

    local check='import timm, vitadapter'
    case "$STACK" in
        core)
            log "vitadapter (core: torch + timm + safetensors) and the test tools"
            "${pip[@]}" -q -e "$ROOT[test]"
            ;;
        onedl)
            log "vitadapter with the mmseg extra (the onedl-mm* fork, nothing compiled), the test tools and ONNX export"
            "${pip[@]}" -q -e "$ROOT[mmseg,test,onnx]" onedl-mmpretrain
            check='import timm, mmseg.models, mmengine, mmpretrain.models, vitadapter.engine'
            ;;
        upstream)
            local torch_tag wheel_dir
            torch_tag="$("$py" -c 'import torch; print(torch.__version__)')"
            wheel_dir="$CACHE/wheels/torch-$torch_tag"
            if ! "$py" -c 'import mmcv.ops' 2>/dev/null; then
                if ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
                    log "building mmcv 2.1.0 with ops against torch $torch_tag (once per machine)"
                    mkdir -p "$wheel_dir"
                    # "pip wheel" takes the same options as "pip install": reuse the array.
                    # The environment's bin/ first on PATH: torch's extension builder compiles in
                    # parallel (MAX_JOBS) only when it finds the ninja installed there, else one
                    # file at a time. CFLAGS=-g0: no debug information (python's own CFLAGS ask
                    # for -g), which roughly halves each file's compile time.
                    PATH="$VENV/bin:$PATH" CFLAGS="-g0" MMCV_WITH_OPS=1 MAX_JOBS="$(nproc)" \
                        "${pip[@]/install/wheel}" --no-build-isolation --no-deps -w "$wheel_dir" \
                        mmcv==2.1.0 >&2
                fi
                "${pip[@]}" -q "$wheel_dir"/mmcv-2.1.0-*.whl
            fi
            log "vitadapter with OpenMMLab's mmsegmentation 1.2.2, mmdet 3.3.0, the test tools and ONNX export"
            # the onnx extra under the numpy-1.26 pins (ml_dtypes 0.5: a newer one pulls numpy 2)
            "${pip[@]}" -q -e "$ROOT[mmseg-upstream,test,onnx]"
            # No mmpretrain here: mmdet brings pycocotools, which makes mmpretrain 1.2.0 import its
            # BLIP models, written for transformers < 4.40 (TypeError at `import mmseg.models`
            # through mmdet). The mmpretrain parity test runs on the default stack.
            "$py" -m pip uninstall -y -q mmpretrain 2>/dev/null || true
            check='import timm, mmcv.ops, mmseg.models, mmdet.models, mmengine, vitadapter.engine'
            ;;
    esac
    "$py" -c "$check" || { log "import check failed: $check"; exit 1; }
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
