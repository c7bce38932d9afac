#!/usr/bin/env bash
# Distributed training with torchrun: bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# On a machine without GPUs the processes use the gloo backend (CPU DDP).
set -euo pipefail
CONFIG=$1
NPROCS=$2
shift 2
PORT=${PORT:-29500}
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run --nnodes=1 --nproc_per_node="$NPROCS" --master_port="$PORT" \
    tools/train.py "$CONFIG" --launcher pytorch "$@"
