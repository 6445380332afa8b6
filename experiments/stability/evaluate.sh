#!/usr/bin/env bash
# Evaluation of the stability experiment (issue 17), from the repository root:
#   experiments/stability/evaluate.sh ARM SEED    # one finished replicate, its best checkpoint
#   experiments/stability/evaluate.sh baselines   # Keras Adam at the paper's lr 0.005 and a grid
# Every optimizer trains conv_train, mlp_train and conv_avg on the offline digits for the
# paper's 25 epochs, 5 runs with seeds 100-104 (the same models and shuffles for all); the
# 10-epoch figures are the first 10 epochs of these runs (python -m l2o.plot --epochs=10).
# Evaluation files are written atomically with their settings; a rerun refits (the same
# seeds give the same figures), except the grid search, which reuses its finished points.
set -euo pipefail
here=experiments/stability
problems=conv_train,mlp_train,conv_avg
runs=(--repeat=5 --seed=100 --dataset=mnist_5k --epochs=25)
export TF_NUM_INTRAOP_THREADS=${TF_NUM_INTRAOP_THREADS:-1} TF_CPP_MIN_LOG_LEVEL=2
case "${1:-}" in
  baselines)
    python baseline.py --problem="$problems" --optimizer=adam "${runs[@]}" \
      --directory="$here/baseline"
    python gridsearch.py --problem="$problems" --policy=adam \
      --grid=0.001,0.002,0.005,0.01,0.02,0.05 --keras=true "${runs[@]}" \
      --directory="$here/gridsearch" ;;
  none|gaussian|gaussian_rel|pgd|cgd|fgsm)
    folder="$here/$1/${2:?usage: evaluate.sh ARM SEED}"
    python evaluate.py --problem="$problems" --strategy=curriculum --directory="$folder" \
      "${runs[@]}" ;;
  *) echo "usage: experiments/stability/evaluate.sh ARM SEED | baselines" >&2; exit 2 ;;
esac
