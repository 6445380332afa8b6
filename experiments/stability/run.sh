#!/usr/bin/env bash
# The stability-aware amalgamation experiment (issue 17): min-max amalgamation with the CPU
# recipe in three arms (no perturbation, gaussian, pgd), seeded replicates 1-4 of each, the
# same seeds in every arm. Usage: experiments/stability/run.sh ARM SEED (from the repository
# root). Rerunning a command resumes its folder from the last complete period.
set -euo pipefail
arm=$1 seed=$2
case "$arm" in
  none) extra="" ;;
  gaussian|gaussian_rel|pgd|cgd|fgsm) extra=",$arm" ;;
  *) echo "error: unknown arm '$arm'; valid: none, gaussian, gaussian_rel, pgd, cgd, fgsm" >&2; exit 2 ;;
esac
# one intra-op thread per run: several runs side by side use 2 cores best
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=2
exec python train.py --strategy=curriculum --policy=rnnprop \
  --presets=conv_train,adam,rmsprop,il_more,offline,cpu$extra --seed="$seed" \
  --directory="experiments/stability/$arm/$seed"
