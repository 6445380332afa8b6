#!/usr/bin/env bash
# Choice-large students of the shipped large-pool teacher (issue 18): the README's CPU recipe,
# "Choice-large, step 2", seeded. Usage: experiments/choice-large/run.sh SEED (from the
# repository root). Rerunning a command resumes its folder from the last complete period.
set -euo pipefail
seed=$1
# one intra-op thread per run: several runs side by side use 2 cores best
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2
exec python train.py --strategy=curriculum --policy=rnnprop \
  --presets=conv_train,more_choice_cpu,il_more,offline,cpu --seed="$seed" \
  --directory="experiments/choice-large/$seed"
