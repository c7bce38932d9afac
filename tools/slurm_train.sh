#!/usr/bin/env bash
# Training on a SLURM cluster (mmseg's conventions): one task per GPU, started by srun.
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# GPUS (default 8): all tasks; GPUS_PER_NODE (default 8); CPUS_PER_TASK (default 5);
# SRUN_ARGS: more srun options (e.g. "--time=3-00:00:00 --account=ACC").
# Rank, world size and the master address come from SLURM (SLURM_PROCID, SLURM_NTASKS, the first
# host of SLURM_NODELIST); MASTER_PORT (default 29500) may be set.
set -euo pipefail
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
cd "$(dirname "$0")/.."
# shellcheck disable=SC2086  # SRUN_ARGS holds several options
exec srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    $SRUN_ARGS python -u tools/train.py "$CONFIG" --launcher slurm "$@"
