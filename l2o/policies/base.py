"""The policy contract and the registry of policies by their reference class names.

A policy is an update rule written as a pure function of tensors::

    state = policy.init_state(param)
    delta, new_state = policy.step(param, grad, state, training)
    param <- param - delta

States are nested dicts/lists of tensors, never variables, so meta-training can unroll
``step`` inside a ``tf.function`` and differentiate through it. The learned weights (and
the trainable hyperparameters of analytical rules) are ``tf.Variable`` attributes of the
policy, a ``tf.Module``, so ``tf.train.Checkpoint(network=policy)`` saves them under the
reference names (``network/recurrent/0/kernel`` ...).
"""

import json

import numpy as np
import tensorflow as tf

from l2o.errors import L2OError, unknown

_REGISTRY = {}


def register(cls):
    """Class decorator: make a policy constructible by its class name."""
    _REGISTRY[cls.__name__] = cls
    return cls


def policy_names():
    return sorted(_REGISTRY)


def get_policy_class(name):
    """The policy class registered under ``name`` (e.g. ``"RNNPropOptimizer"``)."""
    if isinstance(name, type) and issubclass(name, Policy):
        return name
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown("policy", name, _REGISTRY) from None


def build_policy(class_name, config=None, **kwargs):
    """Construct a policy from its class name and constructor kwargs."""
    cls = get_policy_class(class_name)
    config = dict(config or {})
    try:
        return cls(**config, **kwargs)
    except (TypeError, ValueError) as e:
        raise L2OError(f"bad arguments for policy {class_name}: {e}") from None


def _is_variable(x):
    return isinstance(x, tf.Variable)


class Policy(tf.Module):
    """Base class of every update rule.

    Parameters
    ----------
    name : display name (defaults to the class name).
    perturbation : None or ``{"class_name": ..., "config": {...}}``; only policies with
        ``perturbable = True`` accept one (their weight reads go through it when training).
    debug : record ``_``-prefixed debug entries in the state (choice logging).
    **config : the rule's hyperparameters; kept verbatim as the policy's config.
    """

    #: True for policies whose weight reads go through the perturbation hook.
    perturbable = False

    #: True when ``step`` treats every coordinate alike and on its own, so that one step on
    #: the coordinates of several parameters concatenated is exactly the steps of each;
    #: meta-training then steps all tensors at once (a few large ops instead of many small
    #: ones). Such a policy's state of a 1-D parameter holds the coordinates along the last
    #: axis of every leaf, and the state of any parameter reshapes into that layout.
    coordinatewise = False

    def __init__(self, name=None, perturbation=None, debug=False, **config):
        super().__init__(name=name or type(self).__name__)
        self._config_json = json.dumps(dict(config, name=name or type(self).__name__, perturbation=perturbation))
        self.debug = bool(debug)
        if perturbation is not None and not self.perturbable:
            raise L2OError(
                f"policy {type(self).__name__} has no perturbable weights; perturbations apply to "
                "RNNPropOptimizer, AdamLROptimizer and RMSPropLROptimizer")
        from l2o.perturbations import get_perturbation
        self.perturbation = get_perturbation(perturbation)
        self.init_layers(**config)
        if self.perturbable:
            self.perturbation.build(list(self.named_weights().values()))

    # -- construction -------------------------------------------------------------------

    def init_layers(self, **config):
        """Create the weights; subclasses declare their hyperparameters here."""
        if config:
            raise TypeError(f"unexpected arguments {sorted(config)}")

    def get_config(self):
        """Constructor kwargs that rebuild this policy (JSON-serialisable)."""
        return json.loads(self._config_json)

    # -- the contract -------------------------------------------------------------------

    def init_state(self, param):
        """Initial per-parameter state: a nested structure of tensors."""
        return {}

    def step(self, param, grad, state, training=False):
        """One update: returns ``(delta, new_state)``; the caller applies ``param - delta``."""
        raise NotImplementedError

    def warmup_mask(self, state, new_state):
        """State to keep while the SGD warmup drives the parameter (default: all updates)."""
        return new_state

    def debug_summary(self, state, param):
        """Debug values of a state: its ``_`` entries averaged over the coordinates."""
        size = tf.size(param)
        return {k: v / tf.cast(size, v.dtype) for k, v in state.items()
                if isinstance(k, str) and k.startswith("_")}

    # -- weights ------------------------------------------------------------------------

    def reader(self, training):
        """The function every weight read goes through: perturbed when training."""
        if training and self.perturbable:
            return self.perturbation.add
        return tf.convert_to_tensor

    def named_weights(self):
        """``{"recurrent/0/kernel": variable, ...}``: the policy's own weights by path."""
        out = {}
        for path, var in self._flatten(predicate=_is_variable, with_path=True):
            if path and path[0] == "perturbation":
                continue
            out["/".join(str(p) for p in path)] = var
        return dict(sorted(out.items()))

    @property
    def weights(self):
        return list(self.named_weights().values())

    def get_weights(self):
        return {k: v.numpy() for k, v in self.named_weights().items()}

    def set_weights(self, values, source="weights"):
        """Assign ``{path: array}``; names and shapes must match exactly."""
        mine = self.named_weights()
        missing = sorted(set(mine) - set(values))
        if missing:
            raise L2OError(f"{source} lacks weights {missing} of policy {type(self).__name__}")
        extra = sorted(set(values) - set(mine))
        if extra:
            raise L2OError(f"{source} holds weights {extra} that policy {type(self).__name__} "
                           "with this config does not have (was it trained with another config?)")
        for path, var in mine.items():
            value = np.asarray(values[path])
            if tuple(value.shape) != tuple(var.shape):
                raise L2OError(
                    f"{source}: weight '{path}' has shape {list(value.shape)} but policy "
                    f"{type(self).__name__} with this config needs {var.shape.as_list()}")
            var.assign(value.astype(var.dtype.as_numpy_dtype))

    def as_optimizer(self, **kwargs):
        """This policy as a Keras optimizer (see :class:`l2o.optimizer.LearnedOptimizer`)."""
        from l2o.optimizer import LearnedOptimizer
        return LearnedOptimizer(self, **kwargs)


def moments(grad, m, v, beta_1, beta_2):
    """EMA update of the first and second moments (no first-step special case)."""
    m = beta_1 * m + (1.0 - beta_1) * grad
    v = beta_2 * v + (1.0 - beta_2) * tf.square(grad)
    return m, v


def corrected(m, v, beta_1, beta_2):
    """The reference's time-independent "bias correction": m/(1-b1), v/(1-b2)."""
    return m / (1.0 - beta_1), v / (1.0 - beta_2)


def rnnprop_features(grad, m, v, beta_1, beta_2, epsilon):
    """New moments and RNNProp's normalised features: ``(m, v, m~, g~)``.

    ``m~ = m^ / sqrt(v^ + eps)`` and ``g~ = g / sqrt(v^ + eps)`` with the time-independent
    correction; shared by RNNProp, its LR variants and the legacy choice policies.
    """
    m, v = moments(grad, m, v, beta_1, beta_2)
    m_hat, v_hat = corrected(m, v, beta_1, beta_2)
    rms = tf.sqrt(v_hat + epsilon)
    return m, v, m_hat / rms, grad / rms
