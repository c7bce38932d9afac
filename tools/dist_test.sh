#!/usr/bin/env bash
# Distributed evaluation with torchrun, mmseg's conventions:
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS_PER_NODE [test.py options]
# Several machines: NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT as for tools/dist_train.sh.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROCS=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-${PORT:-29500}}
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --nproc_per_node="$NPROCS" \
    tools/test.py "$CONFIG" "$CHECKPOINT" --launcher pytorch "$@"
