"""Meta-training: the meta step, its replicas, and the outer loop over lifetimes.

:class:`MetaTrainer` owns the policy's meta-optimizer and its checkpoints. Each meta step
runs one truncation (:class:`l2o.train.unroll.Unroller`, where the inner steps and the
losses are), takes the meta-gradient of its loss (after the adversarial ascent steps of a
perturbation) and applies it; under ``tf.distribute`` every replica runs its own
truncation and the meta-gradients are summed. :meth:`MetaTrainer.train` runs optimizee
lifetimes of warmup and unrolls; a seeded validation reuses what does not change between
calls (:class:`l2o.train.validation.ValidationCache`).
"""

import functools
import os
import time

import keras
import numpy as np
import tensorflow as tf

from l2o import draws
from l2o.config.schedules import unroll_weights
from l2o.errors import L2OError
from l2o.train.callbacks import get_callback
from l2o.train.losses import get_clipper, get_reduction, loss_weights, IL_MODES
from l2o.train.teachers import build_teacher
from l2o.train.unroll import Unroller, all_finite, initial_state
from l2o.train.validation import ValidationCache

#: Keras optimizer class names as the reference configs spell them.
_OPTIMIZER_NAMES = {"RMSProp": "RMSprop", "Adam": "Adam", "SGD": "SGD", "Adagrad": "Adagrad",
                    "Adadelta": "Adadelta", "Adamax": "Adamax", "Nadam": "Nadam",
                    "AdamW": "AdamW", "RMSprop": "RMSprop"}


def build_meta_optimizer(spec):
    """A Keras optimizer from ``{"class_name": "Adam", "config": {...}}``."""
    spec = spec or {"class_name": "Adam", "config": {"learning_rate": 0.001}}
    name = spec.get("class_name")
    if name not in _OPTIMIZER_NAMES:
        raise L2OError(f"unknown meta-optimizer '{name}'; valid: {', '.join(sorted(_OPTIMIZER_NAMES))}")
    cls = getattr(keras.optimizers, _OPTIMIZER_NAMES[name])
    try:
        return cls(**spec.get("config", {}))
    except (TypeError, ValueError) as e:
        raise L2OError(f"bad meta-optimizer config for {name}: {e}") from None


class _OptimizerState(tf.Module):
    """The meta-optimizer's own variables (step, learning rate, moments) for checkpoints.

    Checkpointing the Keras optimizer object itself would also track the policy weights it
    was built on, under a shorter object path than ``network/...``; TensorFlow saves each
    variable once, under its shortest path, so the policy's weights would leave the
    ``network`` tree that :func:`l2o.saving.read_network_weights` (and the reference) read.
    """

    def __init__(self, optimizer):
        super().__init__(name="meta_optimizer")
        self.slots = list(optimizer.variables)


def _bind(fn, problem):
    def bound(*args):
        return fn(problem, *args)
    return bound


def _replicated(dist, fn, kind, callback_reduce=()):
    """Run ``fn`` on every replica; reduce what the host needs (losses, callbacks, ok).

    The meta-gradients stay per replica: the Keras meta-optimizer sums them across replicas
    when it applies them (in replica context, as tf.distribute requires).
    """
    def run(*args):
        # shared by every replica: the loss weights (train), the warmup rate, the draws' key
        shared = args[-(3 if kind == "train" else 2 if kind.startswith("warmup") else 1):]
        per_replica = args[:len(args) - len(shared)]
        def replica_fn(*replica_args):
            result = fn(*replica_args)
            if kind == "train":  # count the replicas whose loss or gradient is non-finite
                result = dict(result, ok=tf.cast(tf.logical_not(result["ok"]), tf.int32))
            return result

        out = dist.run(replica_fn, args=tuple(per_replica) + tuple(shared))
        if kind.startswith("warmup"):
            return out
        out = dict(out)
        for key in ("meta_loss", "imitation_loss", "teacher_meta_loss", "attack_steps"):
            if key in out:
                out[key] = dist.reduce(tf.distribute.ReduceOp.MEAN, out[key], axis=None)
        out["callbacks"] = tuple(
            dist.reduce(getattr(tf.distribute.ReduceOp, reduce_op), c, axis=None)
            for reduce_op, c in zip(callback_reduce, out["callbacks"]))
        if kind == "train":
            out["ok"] = tf.equal(dist.reduce(tf.distribute.ReduceOp.SUM, out["ok"], axis=None), 0)
        return out
    return run


def teacher_labels(teachers):
    """Short unique names of teacher policies: ``adam``, ``rmsprop``, ``morechoice``, ``adam_2``."""
    labels = []
    for teacher in teachers:
        name = str(getattr(teacher, "name", None) or type(teacher).__name__)
        base = (name[:-len("Optimizer")] if name.endswith("Optimizer") else name).lower() or "teacher"
        label, k = base, 1
        while label in labels:
            k += 1
            label = f"{base}_{k}"
        labels.append(label)
    return labels


class MetaTrainer:
    """Trains ``policy`` on optimizee problems; the arguments are the config's ``training`` keys.

    The non-finite guard: a non-finite inner delta leaves that parameter and its policy
    state unchanged; a non-finite unroll loss or meta-gradient skips the meta-update (counted
    as ``skipped``); non-finite weights are never checkpointed.
    """

    def __init__(self, policy, optimizer=None, teachers=(), use_log_objective=True,
                 scale_objective=True, parameter_scale_spread=3.0,
                 do_teacher_parameter_scale=False, loss_reduce="reduce_max", il_mode="sum",
                 unroll_weight="mean", obj_train_max_multiplier=-1, huber_delta=-1,
                 gradient_clipping=None, epsilon=1e-10, step_callbacks=(),
                 pbar_values=("meta_loss", "imitation_loss"),
                 mean_stats=("meta_loss", "imitation_loss"),
                 stack_stats=("meta_loss", "imitation_loss"), validation_noise=True):
        self.policy = policy
        self.teachers = [t if not isinstance(t, dict) else build_teacher(t) for t in teachers]
        self.parameter_scale_spread = float(parameter_scale_spread)
        if il_mode not in IL_MODES:
            raise L2OError(f"unknown il_mode '{il_mode}'; valid: {', '.join(IL_MODES)}")
        self.il_mode = il_mode
        self.clip = get_clipper(gradient_clipping)
        self.callbacks = [get_callback(c) for c in step_callbacks]
        self.unroller = Unroller(
            policy, self.teachers, use_log_objective=bool(use_log_objective),
            scale_objective=bool(scale_objective),
            do_teacher_parameter_scale=bool(do_teacher_parameter_scale),
            reduce=get_reduction(loss_reduce), unroll_weight=unroll_weights(unroll_weight),
            obj_train_max_multiplier=float(obj_train_max_multiplier),
            huber_delta=float(huber_delta), epsilon=float(epsilon), callbacks=self.callbacks)
        self.pbar_values = list(pbar_values)
        self.mean_stats = list(mean_stats)
        self.stack_stats = list(stack_stats)
        self.validation_noise = bool(validation_noise)
        known = {"meta_loss", "imitation_loss", "meta_loss_weight", "imitation_loss_weight",
                 "skipped", "attack_steps"} | {c.key for c in self.callbacks}
        for name in set(self.mean_stats) | set(self.stack_stats) | set(self.pbar_values):
            if name not in known:
                raise L2OError(f"unknown statistic '{name}'; valid: {', '.join(sorted(known))} "
                               "(teacher_counts / teacher_loss need the log_teachers / log_losses presets)")

        self.teacher_labels = teacher_labels(self.teachers)
        self.weights = [v for v in policy.named_weights().values() if v.trainable]
        if not self.weights:
            raise L2OError(f"policy {type(policy).__name__} has no trainable weights to meta-train "
                           "(analytical policies need trainable=True)")
        self.optimizer = build_meta_optimizer(optimizer)
        self.optimizer.build(self.weights)
        self.checkpoint = tf.train.Checkpoint(network=policy,
                                              optimizer=_OptimizerState(self.optimizer))
        self._rng = np.random.default_rng()
        self._compiled = {}
        self.validation_cache = ValidationCache()

    # ------------------------------------------------------------------ compiled steps

    def _train_step(self, problem, x, y, scale, learner, teachers, w_meta, w_imit, key):
        key = draws.for_replica(key)
        perturbation = self.policy.perturbation
        with draws.seeded(key):
            perturbation.reset(True)
        # the ascent steps that really ran (summary.csv): each one's own flag
        ascents = tf.constant(0)
        for _ in range(perturbation.adversarial_attack_steps):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(perturbation.attack_variables)
                meta, imit = self.unroller.unroll(problem, x, y, scale, learner, teachers,
                                                  True, key=key)[:2]
                loss = w_meta * meta + w_imit * imit
            ran = perturbation.apply_gradients(tape.gradient(loss, perturbation.attack_variables))
            ascents += tf.cast(ran, tf.int32)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.weights)
            meta, imit, learner, teachers, cb_states, steps, _ = self.unroller.unroll(
                problem, x, y, scale, learner, teachers, True, key=key)
            loss = w_meta * meta + w_imit * imit
        grads = tape.gradient(loss, self.weights)
        grads = [tf.zeros_like(w) if g is None else tf.convert_to_tensor(g)
                 for g, w in zip(grads, self.weights)]
        perturbation.reset(False)
        ok = tf.reduce_all([all_finite(loss)] + [all_finite(g) for g in grads])
        grads = self.clip(grads, self.weights)
        return {"meta_loss": meta, "imitation_loss": imit, "ok": ok, "grads": grads,
                "learner": learner, "teachers": teachers, "callbacks": cb_states,
                "steps": steps, "attack_steps": ascents}

    def _validation_step(self, problem, x, y, scale, learner, teachers, key,
                         score_teachers=True):
        meta, imit, learner, teachers, cb_states, steps, teacher_meta = self.unroller.unroll(
            problem, x, y, scale, learner, teachers, self.validation_noise,
            score_teachers=score_teachers and bool(self.teachers), imitation=False,
            key=draws.for_replica(key))
        return {"meta_loss": meta, "imitation_loss": imit, "learner": learner,
                "teachers": teachers, "callbacks": cb_states, "steps": steps,
                "teacher_meta_loss": teacher_meta}

    def _apply_meta_gradients(self, grads):
        # In replica context, tf.identity places each gradient on this replica's device: the
        # Keras optimizer all-reduces to the gradients' devices, and a gradient passed in from
        # outside has none under MultiWorkerMirroredStrategy ("destinations can not be empty").
        if tf.distribute.has_strategy():
            grads = [tf.identity(g) for g in grads]
        self.optimizer.apply_gradients(zip(grads, self.weights))

    def _compiled_fn(self, kind, problem):
        """The compiled train / validation / warmup step of ``problem``.

        Under a ``tf.distribute`` strategy scope the step runs through ``strategy.run``: on
        every replica with its own optimizee, data and trajectories (per-replica arguments);
        the losses come back averaged and the meta-gradients are summed when applied.
        """
        key = (kind, id(problem))
        if key not in self._compiled:
            fn = _bind({"train": self._train_step, "validation": self._validation_step,
                        "validation_learner": functools.partial(self._validation_step,
                                                                score_teachers=False),
                        "warmup": self.unroller.warmup,
                        "warmup_record": functools.partial(self.unroller.warmup, record=True),
                        "warmup_replay": self.unroller.replay}[kind], problem)
            if tf.distribute.has_strategy():
                fn = _replicated(tf.distribute.get_strategy(), fn, kind,
                                 [getattr(c, "replica_reduce", "SUM") for c in self.callbacks])
            self._compiled[key] = tf.function(fn)
        return self._compiled[key]

    @property
    def _apply_fn(self):
        """Apply meta-gradients; per-replica ones are summed by the Keras optimizer."""
        if "apply" not in self._compiled:
            dist = tf.distribute.get_strategy()
            if tf.distribute.has_strategy():  # Keras applies in replica context only
                self._compiled["apply"] = tf.function(
                    lambda grads: dist.run(self._apply_meta_gradients, args=(grads,)))
            else:
                self._compiled["apply"] = tf.function(self._apply_meta_gradients)
        return self._compiled["apply"]

    # ------------------------------------------------------------------ lifetimes

    def _new_lifetime(self, problem, rng):
        """Fresh optimizee parameters, random scale, and fresh trajectories for everyone."""
        params = problem.init_params(seed=int(rng.integers(2 ** 31 - 1)))
        spread = self.parameter_scale_spread
        if spread > 0:
            scale = [tf.constant(np.exp(rng.uniform(-spread, spread, p.shape)), tf.float32)
                     for p in params]
        else:
            scale = [tf.ones_like(p) for p in params]
        theta = [p / s for p, s in zip(params, scale)]
        learner = (theta, initial_state(self.policy, theta))
        teachers = tuple((theta, initial_state(t, theta)) for t in self.teachers)
        return scale, learner, teachers

    def train(self, problems, unroll_len, p_teacher, epochs, depth, validation=False, seed=None,
              warmup=0, warmup_rate=0.01, progress=True, score_teachers=True):
        """Run ``epochs`` optimizee lifetimes of ``warmup + depth`` unrolls on every problem.

        Returns ``{"mean": {stat: float}, "stack": {stat: array [n_problems, epochs*depth, ...]}}``
        for the configured ``mean_stats`` / ``stack_stats`` (validation reports only
        ``meta_loss`` of them: it computes no imitation distances, which it would not use,
        and so feeds no teacher to the callbacks); ``mean["skipped"]`` counts the
        meta-steps skipped by the non-finite guard and, in training, ``mean["attack_steps"]``
        the adversarial ascent steps that ran on the perturbation (K per meta-step, less any
        whose attack gradient was not finite). In
        validation with teachers, ``mean["teacher_meta_loss"]`` is ``{label: meta-loss}``:
        each teacher's own score on the same unrolls (see :attr:`teacher_labels`); a seeded
        call computes them once per setting and reuses them after, and replays its SGD warmup
        (:class:`l2o.train.validation.ValidationCache`). With
        ``score_teachers=False`` validation runs no teacher at all (nothing else in it reads
        them).

        ``mean["step_ms"]`` is the wall time per inner step of the meta-training unrolls
        (the compiled unroll and, in training, the meta-update; warmup, data sampling and
        calls that traced a new graph left out; NaN when every call traced), the figure
        ``benchmarks/meta_step.py`` measures.

        ``seed`` fixes the lifetimes, minibatches, scales and the policies' random draws
        (input noise, weight perturbations, Gumbel choices: stateless ops keyed by the seed,
        the problem, the unroll and the inner step, see :mod:`l2o.draws`) and, in training,
        the loss-weight draws too; None draws fresh entropy.
        """
        unroll_len, epochs, depth, warmup = int(unroll_len), int(epochs), int(depth), int(warmup)
        if min(unroll_len, epochs, depth) < 1 or warmup < 0:
            raise L2OError("unroll_len, epochs and depth must be >= 1 and warmup >= 0")
        if seed is not None and not validation:
            # a seeded training call also fixes its loss-weight draws (il_mode="switch")
            self._rng = np.random.default_rng(seed)
        scores_teachers = validation and score_teachers and bool(self.teachers)
        per_problem = []
        for index, problem in enumerate(problems):
            if progress:
                print(f"[#{index}] {problem.spec}", flush=True)
            run = functools.partial(self._train_problem, problem, index, unroll_len, p_teacher,
                                    epochs, depth, validation, seed, warmup, warmup_rate,
                                    progress)
            per_problem.append(self.validation_cache.scored(run, problem, unroll_len, epochs,
                                                            depth, seed, warmup, warmup_rate)
                               if scores_teachers else run(False))
        mean_stats, stack_stats = (self._reported(k, validation)
                                   for k in (self.mean_stats, self.stack_stats))
        mean = {k: float(np.mean([np.mean(p[k]) for p in per_problem])) for k in mean_stats}
        mean["skipped"] = int(sum(np.sum(p["skipped"]) for p in per_problem))
        timed = [t for p in per_problem for t in p["step_ms"]]
        mean["step_ms"] = float(np.mean(timed)) if timed else float("nan")
        if scores_teachers:
            scores = np.mean([np.mean(p["teacher_meta_loss"], axis=0) for p in per_problem],
                             axis=0)
            mean["teacher_meta_loss"] = dict(zip(self.teacher_labels, map(float, scores)))
        if not validation:
            mean["attack_steps"] = int(sum(np.sum(p["attack_steps"]) for p in per_problem))
        stack = {k: np.stack([np.stack(p[k]) for p in per_problem]) for k in stack_stats}
        return {"mean": mean, "stack": stack}

    @staticmethod
    def _reported(stats, validation):
        """The statistics a training (all) or validation (the meta-loss) call reports."""
        return [k for k in stats if not validation or k == "meta_loss"]

    def _train_problem(self, problem, index, unroll_len, p_teacher, epochs, depth, validation,
                       seed, warmup, warmup_rate, progress, scores_teachers):
        dist = tf.distribute.get_strategy()
        replicas = dist.num_replicas_in_sync
        # replica 0 draws exactly as a single-device run; the others get their own streams
        rngs = [np.random.default_rng(seed)] + [
            np.random.default_rng(None if seed is None else (seed, r)) for r in range(1, replicas)]
        # the policies' draws in unroll i: keyed by (seed, problem, i), then step and replica
        entropy = np.random.SeedSequence(seed).entropy

        def per_replica(make):
            """``make(r)`` for each replica ``r`` of this process (all replicas are local
            except under MultiWorkerMirroredStrategy, where each worker draws its own)."""
            if replicas == 1:
                return make(0)
            return dist.experimental_distribute_values_from_function(
                lambda ctx: make(ctx.replica_id_in_sync_group))

        stats = {k: [] for k in ("meta_loss", "imitation_loss", "meta_loss_weight",
                                 "imitation_loss_weight", "skipped", "attack_steps")}
        for c in self.callbacks:
            stats[c.key] = []
        stats["step_ms"] = []  # per timed unroll; calls that traced are not timed
        if scores_teachers:
            stats["teacher_meta_loss"] = []
        bar = keras.utils.Progbar(epochs * depth, unit_name="step") if progress else None
        cycle = depth + warmup
        replay = self.validation_cache.warmup_store(
            problem, unroll_len, epochs, depth, warmup, warmup_rate, seed,
            replicas) if validation else None
        for i in range(epochs * cycle):
            if i % cycle == 0:
                scale, learner, teachers = per_replica(
                    lambda r: self._new_lifetime(problem, rngs[r]))
                if validation and not scores_teachers:
                    teachers = ()  # nothing reads them: not even their warmup runs
            key = (i // cycle, i % cycle)  # (lifetime, unroll)
            replayed = i % cycle < warmup and replay is not None and key in replay
            if replayed:
                problem.sample(unroll_len, rngs[0])  # unused, but keeps the draws in step
            else:
                x, y = per_replica(
                    lambda r: tuple(tf.constant(a) for a in problem.sample(unroll_len, rngs[r])))
            draws_key = tf.constant(draws.root_key(entropy, index, i))
            if i % cycle < warmup:
                args = (scale, learner[0], learner[1], tuple(t[1] for t in teachers),
                        tf.constant(float(warmup_rate)), draws_key)
                if replayed:
                    theta, ls, ts = self._compiled_fn("warmup_replay", problem)(replay[key],
                                                                               *args)
                elif replay is not None:
                    theta, ls, ts, replay[key] = self._compiled_fn("warmup_record", problem)(
                        x, y, *args)
                else:
                    theta, ls, ts = self._compiled_fn("warmup", problem)(x, y, *args)
                learner = (theta, ls)
                teachers = tuple((theta, s) for s in ts)
                continue
            fn = self._compiled_fn(
                "train" if not validation else "validation" if scores_teachers
                else "validation_learner", problem)
            traces = fn.experimental_get_tracing_count()
            start = time.perf_counter()
            if validation:
                w_meta, w_imit = 1.0, 0.0
                out = fn(x, y, scale, learner, teachers, draws_key)
                skipped = 0
            else:
                w_meta, w_imit = loss_weights(self.il_mode, p_teacher, self._rng)
                out = fn(x, y, scale, learner, teachers, tf.constant(w_meta), tf.constant(w_imit),
                         draws_key)
                skipped = 0 if bool(out["ok"]) else 1
                if not skipped:
                    self._apply_fn(out["grads"])
            learner, teachers = out["learner"], out["teachers"]
            step = {"meta_loss": float(out["meta_loss"]),
                    "imitation_loss": float(out["imitation_loss"]),
                    "meta_loss_weight": w_meta, "imitation_loss_weight": w_imit,
                    "skipped": skipped,
                    "attack_steps": 0 if validation else int(out["attack_steps"])}
            if fn.experimental_get_tracing_count() == traces:
                stats["step_ms"].append(1e3 * (time.perf_counter() - start) / unroll_len)
            teacher_values = []
            if scores_teachers:
                scores = np.asarray(out["teacher_meta_loss"], dtype=np.float64)
                stats["teacher_meta_loss"].append(scores)
                teacher_values = list(zip(self.teacher_labels, scores))
            for c, s in zip(self.callbacks, out["callbacks"]):
                step[c.key] = c.summary(s).numpy()
            for k, v in step.items():
                stats[k].append(v)
            if bar is not None:
                bar.add(1, values=[(k, step[k]) for k in self._reported(self.pbar_values,
                                                                         validation)
                                   if np.ndim(step[k]) == 0] + teacher_values)
        return stats

    # ------------------------------------------------------------------ checkpoints

    def save(self, prefix):
        """Write the policy and meta-optimizer atomically; refuse non-finite weights."""
        for name, value in self.policy.get_weights().items():
            if not np.all(np.isfinite(value)):
                raise L2OError(f"refusing to checkpoint non-finite policy weights ({name})")
        folder = os.path.dirname(os.path.abspath(prefix))
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{os.path.basename(prefix)}-{os.getpid()}")
        self.checkpoint.write(tmp)
        os.replace(tmp + ".data-00000-of-00001", prefix + ".data-00000-of-00001")
        os.replace(tmp + ".index", prefix + ".index")
        return prefix

    def restore(self, prefix):
        """Restore the policy weights and the meta-optimizer state from a checkpoint."""
        if not os.path.exists(prefix + ".index"):
            raise L2OError(f"no checkpoint at {prefix}")
        self.checkpoint.read(prefix).expect_partial()
        return prefix
