"""Is one seeded meta-step repeatable? The same start, the same seed, K times in one process.

The CPU min-max recipe's meta-step (conv_train on the offline MNIST sample, RNNProp learning
from the Adam and RMSProp teachers, one lifetime: the SGD warmup unroll, then one meta-step
of ``--unroll`` inner steps): the policy and its meta-optimizer are restored to one saved
state before every call of ``trainer.train(..., seed=...)``, so every call starts from the
same weights and draws the same data, lifetime and noise. A deterministic step gives one
meta-loss and one set of updated weights for all calls; the script prints how many distinct
ones there were, the largest weight difference from the first call and each call's digest
(the initial weights are seeded too, so two processes can be compared by their digests).

``--arithmetic=off`` (the default) runs as a seeded ``train.py`` run does: TensorFlow's
deterministic kernels on and Grappler's arithmetic optimizer off. ``--arithmetic=on`` leaves
the optimizer on (TensorFlow's default). Measured on the 2-core CPU machine
(benchmarks/README.md): with it on, the meta-loss is the same in every call but the updated
weights differ in their last bits (2-4 distinct sets in 4-5 calls, and other digests in
another process); with it off, every call and every process gives the same weights.

    python benchmarks/determinism.py [--unroll=100] [--calls=6] [--perturbation=gaussian]
                                     [--arithmetic=off|on]
"""

import argparse
import hashlib
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_name, "1")  # as the experiments run: one thread, one order

import numpy as np  # noqa: E402

from perturbation_cost import trainer_for  # noqa: E402  (same recipe, same construction)

from l2o.problems import build_problem  # noqa: E402


def digest(arrays):
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unroll", type=int, default=100)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--perturbation", default=None, help="e.g. gaussian (default: none)")
    parser.add_argument("--arithmetic", choices=("on", "off"), default="off",
                        help="Grappler's arithmetic optimizer (off: as a seeded train.py "
                             "run; on: TensorFlow's default)")
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()  # as a seeded train.py run does
    tf.config.optimizer.set_experimental_options(  # off: as a seeded train.py run does
        {"arithmetic_optimization": args.arithmetic == "on"})
    keras.utils.set_random_seed(args.seed)  # the same start in every process
    trainer, spec = trainer_for(args.perturbation, {})
    problem = build_problem(spec)
    start = os.path.join(tempfile.mkdtemp(), "start")
    saved = trainer.checkpoint.write(start)
    losses, weights, seconds = [], [], []
    for call in range(args.calls):
        trainer.checkpoint.read(saved).assert_consumed()
        started = time.perf_counter()
        out = trainer.train([problem], args.unroll, 1.0, epochs=1, depth=1, seed=args.seed,
                            warmup=1, warmup_rate=0.05, progress=False)
        seconds.append(time.perf_counter() - started)
        losses.append(float(out["mean"]["meta_loss"]))
        weights.append([w.numpy() for w in trainer.weights])
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(weights[0], weights[-1]))
        print(f"call {call}: meta-loss {losses[-1]!r}, weights {digest(weights[-1])}, "
              f"largest difference from call 0: {diff:.3g}", flush=True)
    print(f"{len(set(losses))} distinct meta-loss(es), "
          f"{len({digest(w) for w in weights})} distinct set(s) of updated weights "
          f"in {args.calls} calls")
    if len(seconds) > 1:  # the first call traces
        print(f"median {np.median(seconds[1:]):.2f} s per call after the first "
              f"(arithmetic optimizer {args.arithmetic})")


if __name__ == "__main__":
    main()
