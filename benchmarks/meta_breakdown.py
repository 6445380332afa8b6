"""Where one meta-training inner step goes: each part timed alone, against its FLOPs.

For the conv_train optimizee (batch 128, 18,122 parameters in 6 tensors) on the offline MNIST
sample, every part of an inner step of meta-training RNNProp is compiled on its own
(``tf.function``) and timed in steady state, in rounds interleaved with a plain Keras Adam
training step (the yardstick):

- learner forward: the optimizee's loss (also what the truncation-start loss f0 costs);
- learner forward + backward: the loss and its gradient (also what each teacher costs);
- second-order backward: the gradient, w.r.t. the parameters, of the loss plus a linear
  function of its gradient, minus the forward + backward above: what the meta-gradient
  pays to go back through one inner gradient;
- RNNProp step, forward and forward + backward (w.r.t. its weights, the gradient and the
  state, as the meta-gradient needs), on all coordinates at once and tensor by tensor;
- one analytical teacher rule (Adam) on all coordinates;
- the whole inner step as meta-training runs it (unroll 20): training with two teachers,
  training without teachers, validation with two teachers scored; the time is the
  ``step_ms`` that ``MetaTrainer.train`` reports (and train.py writes to summary.csv),
  beside the sum of the parts it is made of.

FLOPs are the multiply-adds of the convolutions, dense layers and LSTM matmuls (x2), with
backward = 2x forward; elementwise work is left out. Then, with ``--memory``, the peak
resident memory (Linux ``VmHWM``) of one training unroll for unroll lengths 20, 50 and 100
(one subprocess each; see :func:`memory_child`).

    PYTHONPATH=. python benchmarks/meta_breakdown.py [--rounds 5] [--memory]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from meta_step import CONV_TRAIN, TEACHERS, adam_step_time, make_trainer  # noqa: E402
from l2o.policies.rnnprop import RNNPropOptimizer  # noqa: E402
from l2o.problems import build_problem  # noqa: E402


class PerTensorRNNProp(RNNPropOptimizer):
    """RNNProp stepped tensor by tensor, as meta-training did before batching coordinates."""

    coordinatewise = False


def forward_flops(model, batch):
    """Multiply-add FLOPs (x2) of one forward pass of a Conv2D / Dense Keras model."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            kh, kw, cin, _ = layer.kernel.shape
            total += 2 * h * w * c * kh * kw * cin
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total * batch


def rnnprop_flops(policy, coordinates):
    """Matmul FLOPs of one RNNProp forward step: per layer ``[K; R; b]^T @ [x; h; 1]``."""
    total, width = 0, 2
    for layer in policy.recurrent:
        total += 2 * (width + layer.units + 1) * 4 * layer.units
        width = layer.units
    return (total + 2 * width) * coordinates


def seconds_per_call(fn, calls=20):
    """Median seconds of ``calls`` calls of a compiled function (traced beforehand)."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        out = fn()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def part_functions(problem, trainer):
    """The compiled parts, each a no-argument callable returning tensors."""
    from l2o.train.unroll import initial_state

    rng = np.random.default_rng(0)
    params = problem.init_params(seed=0)
    scale = [tf.ones_like(p) for p in params]
    x, y = (tf.constant(a[0]) for a in problem.sample(1, rng))
    probes = [tf.constant(rng.normal(size=p.shape).astype(np.float32)) for p in params]

    forward = tf.function(lambda: problem.loss(params, x, y))
    forward_backward = tf.function(
        lambda: trainer.unroller.loss_and_grads(problem, params, scale, x, y))

    @tf.function
    def second_order():
        with tf.GradientTape() as tape:
            tape.watch(params)
            f, grads = trainer.unroller.loss_and_grads(problem, params, scale, x, y)
            total = f + tf.add_n([tf.reduce_sum(g * r) for g, r in zip(grads, probes)])
        return tape.gradient(total, params)

    grads = forward_backward()[1]
    policy = trainer.policy
    per_tensor = PerTensorRNNProp(**{k: v for k, v in policy.get_config().items()
                                     if k not in ("name", "perturbation")})
    per_tensor.set_weights(policy.get_weights())

    def rnnprop(p, fwd_only):
        state = initial_state(p, params)  # warm states: a few steps in
        for _ in range(3):
            _, state = trainer.unroller.step(p, params, grads, state, True, scale, False)
        weights = p.trainable_variables

        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch([grads, state])
                deltas, new_state = trainer.unroller.step(p, params, grads, state, True, scale,
                                                          False)
                if fwd_only:
                    return deltas
                total = tf.add_n([tf.reduce_sum(d * r) for d, r in zip(deltas, probes)] +
                                 [tf.reduce_sum(leaf) for leaf in tf.nest.flatten(new_state)])
            return tape.gradient(total, [weights, grads, state])
        return run

    teacher = trainer.teachers[0]
    teacher_state = initial_state(teacher, params)
    teacher_rule = tf.function(
        lambda: trainer.unroller.step(teacher, params, grads, teacher_state, False, scale, True))
    return {"forward": forward, "forward_backward": forward_backward,
            "second_order": second_order,
            "rnnprop_forward": rnnprop(policy, True), "rnnprop_fb": rnnprop(policy, False),
            "rnnprop_forward_per_tensor": rnnprop(per_tensor, True),
            "rnnprop_fb_per_tensor": rnnprop(per_tensor, False),
            "teacher_rule": teacher_rule}


def inner_step(trainer, problem, unroll, validation, depth=2):
    """Seconds per inner step of ``depth`` unrolls, as ``train`` reports it (``step_ms``)."""
    out = trainer.train([problem], unroll, 0.2, epochs=1, depth=depth, validation=validation,
                        progress=False)
    return out["mean"]["step_ms"] / 1e3


def measure(rounds, unroll):
    problem = build_problem(CONV_TRAIN)
    with_teachers, no_teachers = make_trainer(TEACHERS), make_trainer([])
    parts = part_functions(problem, with_teachers)
    steps = {"train, 2 teachers": lambda: inner_step(with_teachers, problem, unroll, False),
             "train, no teachers": lambda: inner_step(no_teachers, problem, unroll, False),
             "validation, 2 teachers scored": lambda: inner_step(with_teachers, problem, unroll,
                                                                 True)}
    for fn in list(parts.values()):
        fn()  # trace
    for fn in steps.values():
        fn()
    times = {k: [] for k in ["adam", *parts, *steps]}
    for _ in range(rounds):  # interleaved: machine noise hits every part alike
        times["adam"].append(adam_step_time(problem, steps=30))
        for key, fn in parts.items():
            times[key].append(seconds_per_call(fn))
        for key, fn in steps.items():
            times[key].append(fn())
    return problem, with_teachers, times


def report(problem, trainer, times):
    fwd = forward_flops(problem.model, problem.batch_size)
    rnn = rnnprop_flops(trainer.policy, problem.num_params)
    med = {k: float(np.median(v)) for k, v in times.items()}
    # ratios within each round, then the median: the yardstick moves with the load
    ratio = {k: float(np.median(np.array(v) / np.array(times["adam"]))) for k, v in times.items()}
    second = [s - f for s, f in zip(times["second_order"], times["forward_backward"])]
    med["second_order_only"] = float(np.median(second))
    ratio["second_order_only"] = float(np.median(np.array(second) / np.array(times["adam"])))
    rows = [
        ("Adam step (Keras train_on_batch, the yardstick)", "adam", 3 * fwd),
        ("learner forward (= truncation-start loss f0)", "forward", fwd),
        ("learner forward + backward (= one teacher)", "forward_backward", 3 * fwd),
        ("second-order backward", "second_order_only", 6 * fwd),
        ("RNNProp forward, all coordinates at once", "rnnprop_forward", rnn),
        ("RNNProp forward + backward, at once", "rnnprop_fb", 3 * rnn),
        ("RNNProp forward, tensor by tensor", "rnnprop_forward_per_tensor", rnn),
        ("RNNProp forward + backward, tensor by tensor", "rnnprop_fb_per_tensor", 3 * rnn),
        ("teacher rule (Adam), all coordinates", "teacher_rule", 0),
    ]
    print(f"conv_train: {problem.num_params} parameters, forward {fwd / 1e6:.0f} MFLOP "
          f"(batch {problem.batch_size}); RNNProp forward {rnn / 1e6:.0f} MFLOP\n")
    print("| part | ms | Adam steps | MFLOP | GFLOP/s |")
    print("| - | - | - | - | - |")
    for label, key, flops in rows:
        rate = f"{flops / med[key] / 1e9:.1f}" if flops else "-"
        mflop = f"{flops / 1e6:.0f}" if flops else "-"
        print(f"| {label} | {med[key] * 1e3:.1f} | {ratio[key]:.2f} | {mflop} | {rate} |")
    # what an inner step should cost if it were only the sum of its parts
    parts_train = (ratio["forward_backward"] * 3 + ratio["forward"] + ratio["second_order_only"]
                   + ratio["rnnprop_fb"] + 2 * ratio["teacher_rule"])
    parts_solo = (ratio["forward_backward"] + ratio["forward"] + ratio["second_order_only"]
                  + ratio["rnnprop_fb"])
    parts_valid = (ratio["forward_backward"] * 3 + ratio["forward"] * 3
                   + ratio["rnnprop_forward"] + 2 * ratio["teacher_rule"])
    flops_train = (3 * fwd * 3 + fwd + 6 * fwd + 3 * rnn)
    flops_solo = (3 * fwd + fwd + 6 * fwd + 3 * rnn)
    flops_valid = (3 * fwd * 3 + 3 * fwd + rnn)
    print("\n| inner step (unroll 20) | ms | Adam steps | sum of its parts (Adam steps) | "
          "MFLOP | GFLOP/s |")
    print("| - | - | - | - | - | - |")
    for key, parts, flops in (("train, 2 teachers", parts_train, flops_train),
                              ("train, no teachers", parts_solo, flops_solo),
                              ("validation, 2 teachers scored", parts_valid, flops_valid)):
        print(f"| {key} | {med[key] * 1e3:.1f} | {ratio[key]:.2f} | {parts:.2f} | "
              f"{flops / 1e6:.0f} | {flops / med[key] / 1e9:.1f} |")


def _status_mb(field):
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, in MB.

    ``VmHWM`` belongs to the process image, unlike ``getrusage``'s ``ru_maxrss``, which a
    process started by ``subprocess`` inherits from its (larger) parent at exec.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(unroll, cap_mb):
    """Peak resident memory (MB, ``VmHWM``) after a validation unroll, then after a training
    unroll, of length ``unroll``.

    Both are compiled and run once (two teachers, min-max). The peak after validation holds
    the runtime, the data and both traced graphs' constants; a validation unroll keeps no
    activations. What a training unroll adds on top is what its meta-gradient keeps: every
    inner step's activations (the gradient tape of the while loop), the only part that grows
    with the unroll length. A watchdog ends the process above ``cap_mb`` rather than let it
    push other jobs into swap or the OOM killer.
    """
    def watchdog():
        while True:
            if _status_mb("VmRSS") > cap_mb:
                print(json.dumps({"unroll": unroll, "capped": cap_mb}), flush=True)
                os._exit(3)
            time.sleep(0.02)
    threading.Thread(target=watchdog, daemon=True).start()
    problem = build_problem(CONV_TRAIN)
    trainer = make_trainer(TEACHERS)
    trainer.train([problem], unroll, 0.2, epochs=1, depth=1, validation=True, progress=False)
    validation = _status_mb("VmHWM")
    trainer.train([problem], unroll, 0.2, epochs=1, depth=1, progress=False)
    training = _status_mb("VmHWM")
    print(json.dumps({"unroll": unroll, "validation_mb": validation, "training_mb": training}),
          flush=True)


def memory(lengths, cap_mb):
    print("\n| unroll | peak resident after validation (MB) | after training (MB) | training adds (MB) "
          "| per inner step (MB) |")
    print("| - | - | - | - | - |")
    for unroll in lengths:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child",
                              str(unroll), "--cap-mb", str(cap_mb)],
                             capture_output=True, text=True, env=os.environ)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            print(f"| {unroll} | failed: {out.stderr.strip().splitlines()[-1:]} | | | |")
            continue
        row = json.loads(lines[-1])
        if "capped" in row:
            print(f"| {unroll} | stopped above {cap_mb} MB | | | |")
            continue
        added = row["training_mb"] - row["validation_mb"]
        print(f"| {unroll} | {row['validation_mb']:.0f} | {row['training_mb']:.0f} | {added:.0f} "
              f"| {added / unroll:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--unroll", type=int, default=20)
    parser.add_argument("--memory", action="store_true",
                        help="also the peak memory of one unroll of length 20, 50, 100")
    parser.add_argument("--cap-mb", type=float, default=6000,
                        help="stop a memory measurement above this resident size")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args.memory_child, args.cap_mb)
    if args.rounds:
        report(*measure(args.rounds, args.unroll))
    if args.memory:
        memory((20, 50, 100), args.cap_mb)


if __name__ == "__main__":
    main()
