"""Steady-state cost of a learned optimizer step relative to Adam inside ``model.fit``.

For each network of ``--models`` two identical models are compiled, one with the released
RNNProp ``choice-large/7`` (our ``pre-trained/choice-large/1`` where the released ones are
absent) and one with ``keras.optimizers.Adam``, and each gets a warm-up fit (tracing and
compilation). The networks (all on 28x28 MNIST digits, 10 classes):

* ``conv_train``: Conv 16x3, pool 2, Conv 32x5, pool 2, Dense 10 (18,122 parameters);
* ``mlp_train``: the 784-20-10 sigmoid MLP of the mlp_train problem (15,910);
* ``mlp_128``: a 784-128-128-10 ReLU MLP (118,282);
* ``mlp_512``: a 784-512-512-10 ReLU MLP (669,706).

RNNProp runs its LSTM on every parameter, so its cost grows with the parameter count while
a convolution's forward and backward pass grows with the activations: the dense networks,
many parameters per FLOP, show a much larger ratio than conv_train. Then, per network:

* steps: ``--steps`` single training steps of each, alternated step by step (ABBA order),
  each a call of the model's compiled ``train_function`` (what ``fit`` runs per batch) on
  a shuffled batch-128 stream of the 4,000 ``mnist_5k`` training digits. Printed: the
  ratio (learned over Adam) of the fastest step, of the 10th percentile and of the median.
  Alternating single steps and reading the fast end of the distribution keeps the figure
  steady on a machine shared with other jobs, where any one step may be slowed down.
* epochs: ``--rounds`` rounds of ``model.fit`` over one epoch (32 steps) each, alternated;
  printed: the median per-round wall-clock ratio with its interquartile range, and the
  ratio of median process CPU time. Closer to a user's view, noisier under load.

``--apply-only`` also times ``optimizer.apply_gradients`` alone on fixed gradients (inside
a ``tf.function``), isolating the optimizer from the forward/backward pass.

    PYTHONPATH=. python benchmarks/step_overhead.py [--models conv_train,mlp_train,...]
        [--steps 300] [--rounds 12] [--jit-compile false|true|both] [--apply-only]
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import l2o  # noqa: E402
from l2o.problems import load_dataset  # noqa: E402
from l2o.problems.models import build_model  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PRETRAINED = os.path.normpath(os.path.join(REPO, "..", "shared", "reference", "pretrained"))
CONV_TRAIN = dict(layers=[[16, 3, 1], 2, [32, 5, 1], 2], head_type="dense", activation="relu")
#: name -> (l2o.problems.models target, its config, a short description)
MODELS = {
    "conv_train": ("conv_classifier", CONV_TRAIN, "conv_train CNN"),
    "mlp_train": ("mlp_classifier", dict(layers=[20], activation="sigmoid"),
                  "784-20-10 sigmoid MLP"),
    "mlp_128": ("mlp_classifier", dict(layers=[128, 128], activation="relu"),
                "784-128-128-10 ReLU MLP"),
    "mlp_512": ("mlp_classifier", dict(layers=[512, 512], activation="relu"),
                "784-512-512-10 ReLU MLP"),
}
KEYS = ("learned", "adam")
OURS = os.path.join(REPO, "pre-trained")


def _make_optimizer(key, path):
    if key == "learned":
        return l2o.load(path)
    return keras.optimizers.Adam(learning_rate=0.005, epsilon=1e-10)


def _model(data, seed, name="conv_train"):
    target, config, _ = MODELS[name]
    keras.utils.set_random_seed(seed)
    return build_model(target, data.x.shape[1:], data.num_classes, **config)


def _alternate(fns, rounds, per_call):
    """Call ``fns`` alternately (ABBA) ``rounds`` times; ms per unit, wall and process CPU."""
    wall = {key: [] for key in fns}
    cpu = {key: [] for key in fns}
    for r in range(rounds):
        for key in (KEYS if r % 2 == 0 else KEYS[::-1]):
            start, start_cpu = time.perf_counter(), time.process_time()
            fns[key]()
            wall[key].append(1000.0 * (time.perf_counter() - start) / per_call)
            cpu[key].append(1000.0 * (time.process_time() - start_cpu) / per_call)
    return wall, cpu


def compiled_models(path, data, batch_size, jit_compile, seed=0, name="conv_train"):
    """``{key: model}`` of network ``name``, compiled and warmed up by one fit epoch each."""
    models = {}
    for key in KEYS:
        model = _model(data, seed, name)
        model.compile(optimizer=_make_optimizer(key, path),
                      loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
        model.fit(data.x, data.y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
        models[key] = model
    return models


def time_steps(models, data, batch_size, steps, seed=0):
    """Alternating single calls of each model's ``train_function``: ``(wall, cpu)`` ms."""
    fns = {}
    for key, model in models.items():
        stream = (tf.data.Dataset.from_tensor_slices((data.x, data.y))
                  .shuffle(data.size, seed=seed).batch(batch_size, drop_remainder=True)
                  .repeat().prefetch(4))
        iterator = iter(stream)
        train = model.make_train_function()
        for _ in range(5):
            train(iterator)

        def one_step(train=train, iterator=iterator):
            float(train(iterator)["loss"])
        fns[key] = one_step
    return _alternate(fns, steps, 1)


def time_epochs(models, data, batch_size, rounds):
    """Alternating one-epoch ``fit`` calls: ``(wall, cpu)`` ms per step."""
    steps = -(-data.size // batch_size)
    fns = {key: (lambda m=model: m.fit(data.x, data.y, batch_size=batch_size, epochs=1,
                                       shuffle=True, verbose=0))
           for key, model in models.items()}
    return _alternate(fns, rounds, steps)


def _apply_loop(opt, grads, variables, repeats, jit_compile):
    @tf.function(jit_compile=jit_compile)
    def apply():
        for _ in tf.range(repeats):
            opt.apply_gradients(zip(grads, variables))
    return apply


def time_apply(path, data, repeats, rounds, jit_compile, seed=0, name="conv_train"):
    """``apply_gradients`` alone, ``repeats`` calls per round: ``(wall, cpu)`` ms per call."""
    fns = {}
    for key in KEYS:
        variables = _model(data, seed, name).trainable_variables
        opt = _make_optimizer(key, path)
        opt.build(variables)
        grads = [tf.random.normal(v.shape, stddev=1e-3, seed=i) for i, v in enumerate(variables)]
        fns[key] = _apply_loop(opt, grads, variables, repeats, jit_compile)
        fns[key]()
    return _alternate(fns, rounds, repeats)


def _ms(values):
    return f"{np.min(values):.2f} / {np.percentile(values, 10):.2f} / {np.median(values):.2f}"


def report_steps(title, wall, _cpu):
    """Print the step ratios; returns the p10 ratio."""
    learned, adam = np.array(wall["learned"]), np.array(wall["adam"])
    ratio = [np.min(learned) / np.min(adam),
             np.percentile(learned, 10) / np.percentile(adam, 10),
             np.median(learned) / np.median(adam)]
    print(f"{title}: ratio {ratio[0]:.2f} (fastest) / {ratio[1]:.2f} (p10) / {ratio[2]:.2f} "
          f"(median); ms/step fastest / p10 / median: learned {_ms(learned)}, "
          f"Adam {_ms(adam)}", flush=True)
    return ratio[1], np.percentile(learned, 10), np.percentile(adam, 10)


def report_rounds(title, wall, cpu):
    ratios = [a / b for a, b in zip(wall["learned"], wall["adam"])]
    q1, q3 = np.percentile(ratios, [25, 75])
    cpu_ratio = np.median(cpu["learned"]) / np.median(cpu["adam"])
    print(f"{title}: wall ratio median {np.median(ratios):.2f} (IQR {q1:.2f}-{q3:.2f}), "
          f"CPU-time ratio {cpu_ratio:.2f}; ms/step wall median: learned "
          f"{np.median(wall['learned']):.2f}, Adam {np.median(wall['adam']):.2f}", flush=True)


def _model_names(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(MODELS)
    wrong = [n for n in names if n not in MODELS]
    if not names or wrong:
        raise argparse.ArgumentTypeError(
            f"must be 'all' or a comma list of {', '.join(MODELS)}; got '{text}'")
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", default=None,
                        help=f"folder of the released optimizers (default: {DEFAULT_PRETRAINED}"
                             f", or where it is absent our {OURS})")
    parser.add_argument("--optimizer", default=None,
                        help="optimizer to time, relative to --pretrained (default: "
                             "choice-large/7, or choice-large/1 of ours)")
    parser.add_argument("--models", type=_model_names, default=list(MODELS),
                        help=f"'all' (default) or a comma list of {', '.join(MODELS)}")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300,
                        help="alternating single steps per optimizer (0: skip)")
    parser.add_argument("--rounds", type=int, default=12,
                        help="alternating one-epoch fit rounds per optimizer (0: skip)")
    parser.add_argument("--jit-compile", choices=("false", "true", "both"), default="false",
                        help="model.compile jit_compile; 'both' reports each (default false)")
    parser.add_argument("--apply-only", action="store_true",
                        help="also time apply_gradients alone on fixed gradients")
    args = parser.parse_args(argv)

    if args.pretrained is None:  # the paper's choice-large/7, else our choice-large/1
        ours = not os.path.isdir(DEFAULT_PRETRAINED)
        args.pretrained = OURS if ours else DEFAULT_PRETRAINED
        if args.optimizer is None:
            args.optimizer = "choice-large/1" if ours else "choice-large/7"
    if args.optimizer is None:
        args.optimizer = "choice-large/7"
    path = os.path.join(args.pretrained, args.optimizer)
    if not os.path.isdir(path):
        print(f"error: no optimizer at {path} (pass --pretrained DIR and --optimizer KIND/N)",
              file=sys.stderr)
        return 2
    data = load_dataset("mnist_5k", "train")
    modes = {"false": [False], "true": [True], "both": [False, True]}[args.jit_compile]
    print(f"{path} vs Adam, batch {args.batch_size}, {data.size} digits, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, TF {tf.__version__}, "
          f"Keras {keras.__version__}")
    summary = []
    for name in args.models:
        for jit in modes:
            models = compiled_models(path, data, args.batch_size, jit, name=name)
            params = models["adam"].count_params()
            label = f"{name} ({MODELS[name][2]}, {params:,} params)"
            if args.steps > 0:
                p10 = report_steps(f"{label}: train step, jit_compile={jit}, "
                                   f"{args.steps} steps each",
                                   *time_steps(models, data, args.batch_size, args.steps))
                summary.append((name, params, jit) + tuple(p10))
            if args.rounds > 0:
                report_rounds(f"{label}: fit epochs, jit_compile={jit}, {args.rounds} rounds "
                              "each", *time_epochs(models, data, args.batch_size, args.rounds))
            if args.apply_only:
                report_rounds(f"{label}: apply_gradients alone, jit_compile={jit}",
                              *time_apply(path, data, 20, max(args.rounds, 5), jit, name=name))
    if summary:
        print(f"\ntrain step p10, load average now {os.getloadavg()[0]:.1f}:\n"
              "| network | parameters | jit_compile | learned / Adam | ms: learned, Adam |\n"
              "|---|---|---|---|---|")
        for name, params, jit, ratio, learned, adam in summary:
            print(f"| {name} ({MODELS[name][2]}) | {params:,} | {jit} | {ratio:.2f} | "
                  f"{learned:.1f}, {adam:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
