#!/bin/bash
# One Slurm array task per (configuration, fold): 2 configurations x 5 folds = 10 independent jobs.
# Each job trains one fold on one node with all its GPUs (torchrun, DDP); when every task is
# done, merge the folds of one configuration with:
#   neometer eval runs/multitask-f0 ... runs/multitask-f4 --out reports/multitask
# Submit: sbatch docs/slurm_folds.sh     (requeued/preempted tasks resume: --resume)
#SBATCH --job-name=neometer-folds
#SBATCH --array=0-9
#SBATCH --nodes=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x-%A_%a.out
set -euo pipefail

TASKS=(multitask height+regression)
FOLDS=5
TASK=${TASKS[$((SLURM_ARRAY_TASK_ID / FOLDS))]}
FOLD=$((SLURM_ARRAY_TASK_ID % FOLDS))
OUT=runs/${TASK/+/_}-f${FOLD}
RESUME=$([ -f "$OUT/config.json" ] && echo --resume || true)   # a requeued task continues its fold

# the frame cache on a shared filesystem: decoded once (by rank 0 of the first job to reach a
# recording), then only read; per-recording .npy files (or `neometer data pack` shards), and each
# rank reads only its own frames
export NEOMETER_CACHE=${NEOMETER_CACHE:-$PWD/.cache/neometer}

# restarts (--max-restarts) must not reuse the dead attempt's rendezvous store (pytorch#135712)
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1

srun torchrun --standalone --nproc_per_node "${SLURM_GPUS_PER_NODE:-4}" --max-restarts 3 \
  train.py --data data/study --task "$TASK" --folds $FOLDS --fold $FOLD \
  --batch-size 256 --epochs 30 --seed 0 --out "$OUT" --no-report $RESUME
