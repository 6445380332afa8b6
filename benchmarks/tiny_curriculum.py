"""End to end on a laptop: min-max amalgamation of Adam + RMSProp with the ``tiny`` curriculum.

Trains RNNProp on the offline MNIST sample (presets ``conv_train,adam,rmsprop,il_more,offline,
tiny``, curriculum strategy), prints the wall time and the results tree, then compares the
meta-trained RNNProp with the untrained one (same initial policy weights, seeded) and Adam
on the conv_train network: mean training loss over the last 20 of 200 steps, 3 seeds.

    python benchmarks/tiny_curriculum.py [--directory=results/rnnprop/tiny/1]
"""

import argparse
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import l2o  # noqa: E402
from l2o.config import apply_presets, default_config  # noqa: E402
from l2o.problems import load_dataset  # noqa: E402
from l2o.problems.models import build_model  # noqa: E402
from l2o.strategy import build  # noqa: E402

PRESETS = "conv_train,adam,rmsprop,il_more,offline,tiny"


def conv_train_loss(optimizer, seed, steps=200, batch=128):
    data = load_dataset("mnist_5k", "train")
    keras.utils.set_random_seed(seed)
    model = build_model("conv_classifier", data.input_shape, data.num_classes,
                        layers=[[16, 3, 1], 2, [32, 5, 1], 2], activation="relu")
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        index = rng.choice(data.size, batch, replace=False)
        losses.append(float(model.train_on_batch(data.x[index], data.y[index])))
    return float(np.mean(losses[-20:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", default="results/rnnprop/tiny/1")
    parser.add_argument("--fresh", action="store_true", help="delete the directory first")
    args = parser.parse_args()
    if args.fresh and os.path.exists(args.directory):
        shutil.rmtree(args.directory)

    config = apply_presets(default_config("curriculum", "rnnprop"), PRESETS)
    keras.utils.set_random_seed(0)
    strategy = build(config, directory=args.directory, info=False)
    untrained = {k: v.copy() for k, v in strategy.trainer.policy.get_weights().items()}
    start = time.perf_counter()
    strategy.train()
    minutes = (time.perf_counter() - start) / 60
    print(f"\nmeta-training wall time: {minutes:.1f} min")
    for root, _, files in sorted(os.walk(args.directory)):
        for name in sorted(files):
            print("  ", os.path.relpath(os.path.join(root, name), args.directory))

    results = {}
    for label in ("untrained", "meta-trained"):
        losses = []
        for seed in range(3):
            policy = l2o.build_policy(config["policy_constructor"], config["policy"])
            if label == "untrained":
                policy.set_weights(untrained)
            else:
                l2o.saving.restore_policy(policy, strategy.experiment.checkpoint_prefix(
                    strategy.default_metadata()))
            losses.append(conv_train_loss(l2o.LearnedOptimizer(policy), seed))
        results[label] = losses
    results["Adam (lr 0.005)"] = [
        conv_train_loss(keras.optimizers.Adam(0.005, epsilon=1e-10), seed) for seed in range(3)]
    print("\nconv_train (mnist_5k), mean training loss over steps 181-200, 3 seeds:")
    for label, losses in results.items():
        print(f"  {label:>15}: {np.mean(losses):.4f} (per seed {', '.join(f'{v:.4f}' for v in losses)})")


if __name__ == "__main__":
    main()
