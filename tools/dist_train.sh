#!/usr/bin/env bash
# Distributed training with torchrun, mmseg's conventions:
#   bash tools/dist_train.sh CONFIG GPUS_PER_NODE [train.py options]
# Several machines: run the same command on each, with the environment saying where it stands:
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 bash tools/dist_train.sh CONFIG 8
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 bash tools/dist_train.sh CONFIG 8
# NNODES (default 1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), MASTER_PORT (29500; PORT is also
# read, as in earlier versions). Without GPUs the processes use the gloo backend (CPU).
set -euo pipefail
CONFIG=$1
NPROCS=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-${PORT:-29500}}
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --nproc_per_node="$NPROCS" \
    tools/train.py "$CONFIG" --launcher pytorch "$@"
