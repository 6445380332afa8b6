"""The Keras 3 optimizer that runs any l2o policy.

``LearnedOptimizer`` is a thin adapter over the policy contract: ``build`` creates, for each
trained variable, one optimizer variable per leaf of ``policy.init_state(variable)``, and
``update_step`` calls ``policy.step`` and assigns the results. It is a real
``keras.optimizers.Optimizer``: it works in ``model.compile``/``model.fit``, inside
``tf.distribute`` strategies, and round-trips through ``.keras`` files (its config carries
the policy's class, hyperparameters and weights; its variables carry the per-variable
state and the iteration counter).

It trains variables of every float dtype: the policy computes in :func:`compute_dtype` of
the variable (float32 for float16, bfloat16 and float32; float64 for float64), its state
variables are made in that dtype, and the update is cast to the variable's dtype when it is
applied.
"""

import keras
import numpy as np
import tensorflow as tf

from l2o.errors import L2OError
from l2o.policies.base import Policy, build_policy


def compute_dtype(variable_dtype):
    """The dtype a policy computes in, and keeps its state in, for a variable of this dtype.

    float64 variables: float64. The float32 learned weights widen to it exactly, so the
    policy is the same function evaluated without rounding the variable's gradients to
    float32 (which would flush gradients below about 1e-45 to zero, overflow ``g**2`` above
    about 1e19, and make the analytical rules differ from Keras's own float64 optimizers).
    float16 and bfloat16 variables: float32, as Keras's mixed precision keeps float32 master
    weights. 16-bit arithmetic breaks the rules: ``epsilon = 1e-10`` is zero in float16 and
    ``g**2`` overflows it above 256, and bfloat16's 8-bit mantissa stalls the moment averages
    (``0.999 * v`` rounds back to ``v``). float32: float32, the meta-trained arithmetic.
    """
    dtype = tf.as_dtype(variable_dtype)
    if not dtype.is_floating:
        raise L2OError(f"LearnedOptimizer trains float variables (float16, bfloat16, float32, "
                       f"float64), not {dtype.name} ones")
    return tf.float64 if dtype == tf.float64 else tf.float32


@keras.saving.register_keras_serializable(package="l2o")
class LearnedOptimizer(keras.optimizers.Optimizer):
    """A Keras optimizer whose update rule is an l2o policy.

    Parameters
    ----------
    policy : a :class:`l2o.policies.Policy`, or its serialised form
        ``{"class_name", "config", "weights"}`` (as written by ``get_config``).
    warmup : number of initial ``apply_gradients`` calls that use plain SGD,
        ``delta = warmup_rate * grad``, instead of the policy. During them the policy still
        consumes the gradients to advance its state (through ``policy.warmup_mask``), as in
        the meta-training warmup unrolls.
    warmup_rate : SGD learning rate of the warmup.
    **kwargs : the generic Keras optimizer options (``clipnorm``, ``use_ema``, ...).
    """

    def __init__(self, policy, warmup=0, warmup_rate=0.01, name=None, **kwargs):
        if isinstance(policy, dict):
            policy = _policy_from_config(policy)
        if not isinstance(policy, Policy):
            raise L2OError(f"LearnedOptimizer needs an l2o policy, got {type(policy).__name__}")
        if int(warmup) < 0:
            raise L2OError(f"warmup must be >= 0 iterations, got {warmup}")
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=1.0, name=name or policy.name, **kwargs)
        self.policy = policy
        self.warmup = int(warmup)
        self.warmup_rate = float(warmup_rate)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._state_structure = []
        self._state_slots = []
        for var in variables:
            dtype = compute_dtype(var.dtype)
            initial = self.policy.init_state(tf.zeros(var.shape, dtype))
            # float leaves in the compute dtype, whatever dtype the policy made them in
            leaves = [tf.cast(leaf, dtype) if leaf.dtype.is_floating else leaf
                      for leaf in tf.nest.flatten(initial)]
            slots = []
            for i, leaf in enumerate(leaves):
                slot = self.add_variable(
                    shape=leaf.shape, dtype=leaf.dtype,
                    name=f"{_clean(var.path if hasattr(var, 'path') else var.name)}_state{i}")
                slot.assign(leaf)
                slots.append(slot)
            self._state_structure.append(initial)
            self._state_slots.append(slots)

    def _state_of(self, variable):
        index = self._get_variable_index(variable)
        slots = self._state_slots[index]
        values = [tf.convert_to_tensor(s) for s in slots]
        return tf.nest.pack_sequence_as(self._state_structure[index], values), slots

    def update_step(self, gradient, variable, learning_rate):
        state, slots = self._state_of(variable)
        dtype = compute_dtype(variable.dtype)
        param = tf.cast(tf.convert_to_tensor(variable), dtype)
        gradient = tf.cast(tf.convert_to_tensor(gradient), dtype)
        delta, new_state = self.policy.step(param, gradient, state, training=False)
        if self.warmup > 0:
            in_warmup = self.iterations < self.warmup
            masked = self.policy.warmup_mask(state, new_state)
            new_state = tf.nest.map_structure(
                lambda w, n: tf.where(in_warmup, w, n), masked, new_state)
            delta = tf.where(in_warmup, self.warmup_rate * gradient, delta)
        for slot, value in zip(slots, tf.nest.flatten(new_state)):
            self.assign(slot, value)
        self.assign_sub(variable, tf.cast(delta, variable.dtype))

    def debug_summary(self, variables):
        """``{"<key>_<variable>": value}`` of the policy's debug state (choice logging)."""
        out = {}
        for var in variables:
            state, _ = self._state_of(var)
            for key, value in self.policy.debug_summary(state, var).items():
                out[f"{key}_{_clean(var.path if hasattr(var, 'path') else var.name)}"] = value
        return out

    def get_config(self):
        config = super().get_config()
        config.pop("learning_rate", None)
        config.update({
            "policy": policy_to_config(self.policy),
            "warmup": self.warmup,
            "warmup_rate": self.warmup_rate,
        })
        return config


def _clean(name):
    return str(name).replace("/", "_").replace(":", "_")


def policy_to_config(policy):
    """``{"class_name", "config", "weights"}``: a policy with its current weights."""
    return {
        "class_name": type(policy).__name__,
        "config": policy.get_config(),
        "weights": {k: v.tolist() for k, v in policy.get_weights().items()},
    }


def _policy_from_config(spec):
    policy = build_policy(spec["class_name"], spec.get("config", {}))
    if spec.get("weights"):
        policy.set_weights({k: np.asarray(v, np.float32) for k, v in spec["weights"].items()},
                           source="optimizer config")
    return policy


def build_analytical_optimizer(class_name, config=None, **kwargs):
    """A Keras optimizer running an analytical l2o rule, e.g. ``("AddSign", {...})``.

    ``class_name`` is the short name (``Adam``, ``AddSign``, ...) or the policy class name.
    """
    name = class_name if class_name.endswith("Optimizer") else class_name + "Optimizer"
    return LearnedOptimizer(build_policy(name, config or {}), **kwargs)
