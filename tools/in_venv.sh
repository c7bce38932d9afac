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
#                                      Versions other than the pinned ones, each in a folder of its
#                                      own (CI tests the oldest and newest supported):
#                                      VITADAPTER_TIMM=X.Y.Z (.venv-core-timmX.Y.Z/),
#                                      VITADAPTER_TORCH=X.Y.Z with VITADAPTER_TORCHVISION=A.B.C
#                                      (-torchX.Y.Z), VITADAPTER_TRANSFORMERS=X.Y.Z (-transformersX.Y.Z).
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
    core) VENV="$ROOT/.venv-core${VITADAPTER_TIMM:+-timm$VITADAPTER_TIMM}${VITADAPTER_TORCH:+-torch$VITADAPTER_TORCH}${VITADAPTER_TRANSFORMERS:+-transformers$VITADAPTER_TRANSFORMERS}"
          CONSTRAINTS="$ROOT/tools/constraints.txt" ;;
    *) echo "VITADAPTER_STACK=$STACK: choose onedl (default), upstream or core" >&2; exit 2 ;;
esac
CACHE="${VITADAPTER_CACHE:-$HOME/.cache/vitadapter}"
PYTHON_FOR_VENV="${PYTHON:-python3.11}"
STAMP="$VENV/.vitadapter-setup"

log() { echo "[in_venv:$STACK] $*" >&2; }

want_stamp() {
    { cat "$CONSTRAINTS" "$ROOT/setup.py" "${BASH_SOURCE[0]}"
      echo "${VITADAPTER_TIMM:-} ${VITADAPTER_TORCH:-} ${VITADAPTER_TORCHVISION:-} ${VITADAPTER_TRANSFORMERS:-}"; } \
        | sha256sum | cut -d' ' -f1
}

setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        command -v "$PYTHON_FOR_VENV" >/dev/null || PYTHON_FOR_VENV=python3
        log "creating $VENV with $($PYTHON_FOR_VENV --version)"
        "$PYTHON_FOR_VENV" -m venv "$VENV"
    fi
    local py="$VENV/bin/python"
    if [ -n "${VITADAPTER_TORCH:-}" ] && [ -z "${VITADAPTER_TORCHVISION:-}" ]; then
        log "VITADAPTER_TORCH=$VITADAPTER_TORCH needs the matching VITADAPTER_TORCHVISION"; exit 2
    fi
    local pins=() name
    [ -n "${VITADAPTER_TIMM:-}" ] && pins+=("timm==$VITADAPTER_TIMM")
    [ -n "${VITADAPTER_TORCH:-}" ] && pins+=("torch==$VITADAPTER_TORCH" "torchvision==$VITADAPTER_TORCHVISION")
    [ -n "${VITADAPTER_TRANSFORMERS:-}" ] && pins+=("transformers==$VITADAPTER_TRANSFORMERS")
    if [ "${#pins[@]}" -gt 0 ]; then  # the pinned versions replaced by the asked ones
        cp "$CONSTRAINTS" "$VENV/constraints.txt"
        for pin in "${pins[@]}"; do
            name="${pin%%==*}"
            grep -v -i "^$name==" "$VENV/constraints.txt" > "$VENV/constraints.tmp"
            echo "$pin" >> "$VENV/constraints.tmp"
            mv "$VENV/constraints.tmp" "$VENV/constraints.txt"
        done
        if [ -n "${VITADAPTER_TORCH:-}${VITADAPTER_TRANSFORMERS:-}" ]; then
            # the rest of the pins were resolved for the pinned torch and transformers: let pip
            # choose what these versions need (huggingface_hub, tokenizers, the CUDA wheels)
            grep -E -i "^(timm|torch|torchvision|transformers|safetensors|numpy|pillow|scipy|pytest)==" \
                "$VENV/constraints.txt" > "$VENV/constraints.tmp"
            mv "$VENV/constraints.tmp" "$VENV/constraints.txt"
        fi
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
# "2.13.0+cu130" -> "cu13": the CUDA major version (PyPI's 2.14.1 is cu130, its torchvision 0.29.2
# cu132; PyPI's older pairs carry no tag at all)
cuda_major = lambda v: v.partition("+")[2][:4]
if "+cpu" in torch.__version__ or cuda_major(torch.__version__) != cuda_major(torchvision.__version__):
    sys.exit(f"torch {torch.__version__} and torchvision {torchvision.__version__} are not a "
             "matching CUDA pair: remove the environment's folder and run again")
import torchvision.ops  # fails (or the call below does) when the pair does not match
torchvision.ops.nms(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([1.0]), 0.5)
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
            # openmim, for `mim train mmsegmentation CONFIG`: it imports pkg_resources (setuptools
            # < 82, pinned here) and finds mmseg by its distribution name, mmsegmentation; on the
            # default stack neither holds (setuptools 84, onedl-mmsegmentation), so it is not there
            "${pip[@]}" -q openmim
            check='import timm, mmcv.ops, mmseg.models, mmdet.models, mmengine, vitadapter.engine, mim'
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
