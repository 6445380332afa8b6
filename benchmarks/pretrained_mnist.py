"""The paper's released RNNProp optimizers against Adam and RMSprop on conv_train / MNIST.

Trains the conv_train network (Conv 16x3, pool 2, Conv 32x5, pool 2, Dense 10 softmax) on
the 4,000 training digits of the offline ``mnist_5k`` sample with ``model.fit`` (batch 128,
shuffled, 10 epochs) and prints a markdown table of the final-epoch training loss (mean and
std over seeds) and accuracy. Every optimizer starts from the same initial weights for a
given seed.

    PYTHONPATH=. python benchmarks/pretrained_mnist.py [--seeds 3] [--replicate 1] [--warmup]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import l2o  # noqa: E402
from l2o.problems import load_dataset  # noqa: E402
from l2o.problems.models import build_model  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PRETRAINED = os.path.normpath(os.path.join(REPO, "..", "shared", "reference", "pretrained"))
RELEASED = ("choice-large", "mean", "min-max", "choice-small")
CONV_TRAIN = dict(layers=[[16, 3, 1], 2, [32, 5, 1], 2], head_type="dense", activation="relu")


def optimizer_factories(pretrained, replicate, warmup):
    """``[(label, zero-arg factory)]``: the released optimizers then the baselines."""
    kwargs = dict(warmup=100, warmup_rate=0.05) if warmup else {}
    picks = [(kind, replicate) for kind in RELEASED]
    if ("choice-large", 7) not in picks:
        picks.append(("choice-large", 7))
    out = []
    for kind, rep in picks:
        path = os.path.join(pretrained, kind, str(rep))
        out.append((f"{kind}/{rep}", lambda path=path: l2o.load(path, **kwargs)))
    out.append(("Adam(lr=0.005, eps=1e-10)",
                lambda: keras.optimizers.Adam(learning_rate=0.005, epsilon=1e-10)))
    out.append(("RMSprop(lr=0.005, rho=0.9)",
                lambda: keras.optimizers.RMSprop(learning_rate=0.005, rho=0.9)))
    return out


def train_once(make_optimizer, data, seed, epochs, batch_size, jit_compile):
    keras.utils.set_random_seed(seed)
    model = build_model("conv_classifier", data.x.shape[1:], data.num_classes, **CONV_TRAIN)
    model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile)
    history = model.fit(data.x, data.y, batch_size=batch_size, epochs=epochs, shuffle=True,
                        verbose=0)
    return history.history["loss"][-1], history.history["accuracy"][-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", default=DEFAULT_PRETRAINED,
                        help="folder of the released optimizers (default: %(default)s)")
    parser.add_argument("--replicate", type=int, default=1, choices=range(1, 9),
                        help="which of the 8 replicates of each configuration (default 1)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", action="store_true",
                        help="load the learned optimizers with the paper's evaluation warmup "
                             "(100 SGD steps at 0.05)")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), default="auto",
                        help="model.compile jit_compile (default: Keras' auto)")
    args = parser.parse_args(argv)

    if not os.path.isdir(args.pretrained):
        print(f"error: no released optimizers at {args.pretrained} (pass --pretrained DIR)",
              file=sys.stderr)
        return 2
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    data = load_dataset("mnist_5k", "train")
    factories = optimizer_factories(args.pretrained, args.replicate, args.warmup)

    results = {label: [] for label, _ in factories}
    for seed in range(args.seeds):
        for label, make in factories:
            start = time.perf_counter()
            loss, acc = train_once(make, data, seed, args.epochs, args.batch_size, jit)
            results[label].append((loss, acc))
            print(f"  seed {seed} {label:28s} loss {loss:.5f} acc {acc:.4f} "
                  f"({time.perf_counter() - start:.1f}s)", file=sys.stderr, flush=True)

    print(f"\nconv_train on mnist_5k train ({data.size} digits), batch {args.batch_size}, "
          f"{args.epochs} epochs, {args.seeds} seeds, learned warmup: "
          f"{'100 x SGD 0.05' if args.warmup else 'none'}\n")
    print("| optimizer | final train loss (mean) | std | final train accuracy |")
    print("|---|---|---|---|")
    for label, _ in factories:
        values = np.array(results[label], dtype=np.float64)
        print(f"| {label} | {values[:, 0].mean():.4f} | {values[:, 0].std():.4f} "
              f"| {values[:, 1].mean():.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
