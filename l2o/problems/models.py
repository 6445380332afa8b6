"""Keras 3 classifier builders shared by meta-training and evaluation.

Meta-training drives these models through ``model.stateless_call`` with parameters held as
plain tensors; evaluation trains them with ordinary fit loops. Either way the architecture and
the initialisers (Glorot-uniform kernels, zero biases: the Keras defaults) are the same.

Layer spec syntax used by :func:`conv_classifier`: an ``int`` p is a p x p max-pool with stride
p; a ``[filters, kernel, stride]`` triple is a VALID convolution with the configured activation.
"""

import functools
import inspect

import keras

from l2o.errors import L2OError, unknown


def get_activation(activation):
    """A Keras activation from a name, a callable, or ``{"class_name": ..., "config": {...}}``.

    The dict form binds ``config`` as keyword arguments of the named activation, e.g.
    ``{"class_name": "leaky_relu", "config": {"negative_slope": 0.1}}``.
    """
    if isinstance(activation, dict):
        if set(activation) - {"class_name", "config"} or "class_name" not in activation:
            raise L2OError(f"activation dict needs keys class_name and optional config, got "
                           f"{sorted(activation)}")
        fn = get_activation(activation["class_name"])
        config = activation.get("config") or {}
        if not isinstance(config, dict):
            raise L2OError(f"activation config must be a dict, got {config!r}")
        return functools.partial(fn, **config) if config else fn
    if callable(activation):
        return activation
    if not isinstance(activation, str):
        raise L2OError(f"activation must be a name or a dict, got {activation!r}")
    try:
        return keras.activations.get(activation)
    except (ValueError, TypeError):
        raise L2OError(f"unknown activation '{activation}'; use a keras.activations name such "
                       "as relu, sigmoid, tanh, elu, gelu, leaky_relu") from None


def _as_conv_spec(spec, index):
    """(filters, kernel, stride) from a list/tuple spec, or None for an int (max-pool) spec."""
    if isinstance(spec, bool):
        pass
    elif isinstance(spec, int):
        if spec < 1:
            raise L2OError(f"layer {index}: pool size must be >= 1, got {spec}")
        return None
    elif (isinstance(spec, (list, tuple)) and len(spec) == 3
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in spec)):
        return tuple(spec)
    raise L2OError(f"layer {index}: bad spec {spec!r}; use an int p (max-pool p x p) or "
                   "[filters, kernel, stride] with positive ints (VALID convolution)")


def _check_layer_specs(layers, input_shape, head_type):
    """Validate conv specs against the image size; name the layer that does not fit."""
    if not isinstance(layers, (list, tuple)) or not layers:
        raise L2OError(f"conv_classifier layers must be a non-empty list, got {layers!r}")
    if len(input_shape) != 3:
        raise L2OError(f"conv_classifier needs images [H, W, C], got input shape {input_shape}")
    height, width = input_shape[0], input_shape[1]
    layers = list(layers)
    last = layers[-1]
    if (head_type == "average" and isinstance(last, (list, tuple)) and len(last) == 3
            and last[0] == 0):
        # the average head ignores the last spec's filter count (conv_avg writes 0)
        layers[-1] = [1] + list(last[1:])
    for i, spec in enumerate(layers):
        conv = _as_conv_spec(spec, i)
        if conv is None:
            size, stride = spec, spec
            what = f"max-pool {spec}"
        else:
            _, size, stride = conv
            what = f"conv {list(spec)}"
        if size > height or size > width:
            raise L2OError(f"layer {i} ({what}) needs at least a {size}x{size} input but gets "
                           f"{height}x{width}; the layers shrink the image below 1x1")
        height = (height - size) // stride + 1
        width = (width - size) // stride + 1
    if head_type == "average" and _as_conv_spec(layers[-1], len(layers) - 1) is None:
        raise L2OError(f"head_type 'average' needs the last layer to be a convolution "
                       f"[filters, kernel, stride], got {layers[-1]!r}")


def conv_classifier(input_shape, num_classes, layers=((16, 3, 1), 2, (32, 5, 1), 2),
                    head_type="dense", activation="relu"):
    """Conv/max-pool stack then a classifier head.

    ``head_type="dense"``: Flatten + Dense(num_classes, softmax). ``head_type="average"``: the
    last spec becomes Conv(num_classes, kernel, stride, softmax) (its filter count is ignored)
    and the class probabilities are averaged over spatial positions.
    """
    if head_type not in ("dense", "average"):
        raise unknown("head_type", head_type, ("dense", "average"))
    input_shape = tuple(int(d) for d in input_shape)
    _check_layer_specs(layers, input_shape, head_type)
    act = get_activation(activation)
    body = list(layers[:-1]) if head_type == "average" else list(layers)

    inputs = keras.Input(shape=input_shape)
    h = inputs
    for spec in body:
        if _as_conv_spec(spec, 0) is None:
            h = keras.layers.MaxPooling2D(pool_size=spec, strides=spec, padding="valid")(h)
        else:
            filters, kernel, stride = spec
            h = keras.layers.Conv2D(filters, kernel, strides=stride, padding="valid",
                                    activation=act)(h)
    if head_type == "dense":
        h = keras.layers.Flatten()(h)
        outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
    else:
        _, kernel, stride = layers[-1]
        h = keras.layers.Conv2D(num_classes, kernel, strides=stride, padding="valid",
                                activation="softmax")(h)
        outputs = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inputs, outputs, name="conv_classifier")


def mlp_classifier(input_shape, num_classes, layers=(32,), activation="relu"):
    """Flatten, Dense hidden layers with ``activation``, then Dense(num_classes, softmax)."""
    if not isinstance(layers, (list, tuple)) or not all(
            isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in layers):
        raise L2OError(f"mlp_classifier layers must be a list of positive ints, got {layers!r}")
    act = get_activation(activation)
    inputs = keras.Input(shape=tuple(int(d) for d in input_shape))
    h = keras.layers.Flatten()(inputs)
    for units in layers:
        h = keras.layers.Dense(units, activation=act)(h)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
    return keras.Model(inputs, outputs, name="mlp_classifier")


def nas_classifier(input_shape, num_classes, filters=16, activation="relu"):
    """A small NAS-style cell of 3x3 SAME convolutions, global average pooling, softmax.

    a = conv(x); b = conv(a); c = avgpool(b) + conv(a); d = a + conv(conv(b)) + c.
    The reference hard-codes 10 output classes; here the head has ``num_classes`` outputs
    (identical for every 10-class dataset).
    """
    act = get_activation(activation)

    def conv(t):
        return keras.layers.Conv2D(filters, 3, strides=1, padding="same", activation=act)(t)

    inputs = keras.Input(shape=tuple(int(d) for d in input_shape))
    a = conv(inputs)
    b = conv(a)
    pooled = keras.layers.AveragePooling2D(pool_size=2, strides=1, padding="same")(b)
    c = keras.layers.Add()([pooled, conv(a)])
    d = keras.layers.Add()([a, conv(conv(b)), c])
    h = keras.layers.GlobalAveragePooling2D()(d)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
    return keras.Model(inputs, outputs, name="nas_classifier")


def resnet(input_shape, num_classes, depth=28, width=1):
    """Wide-ResNet-like classifier: (depth - 4) // 6 blocks per stage, stages 16w, 32w, 64w.

    Stem conv-BN-ReLU, max-pool 2x2 between stages, blocks ``shortcut + 2 x (conv-BN-ReLU)``
    with a 1x1 linear shortcut conv when the channel count changes, global average pooling and
    a Dense softmax head.
    """
    if not isinstance(depth, int) or (depth - 4) // 6 < 1:
        raise L2OError(f"resnet depth must be an int >= 10 (blocks per stage = (depth-4)//6), "
                       f"got {depth!r}")
    if not isinstance(width, int) or width < 1:
        raise L2OError(f"resnet width must be a positive int, got {width!r}")
    blocks = (depth - 4) // 6

    def conv_bn_relu(t, channels):
        t = keras.layers.Conv2D(channels, 3, padding="same")(t)
        t = keras.layers.BatchNormalization()(t)
        return keras.layers.ReLU()(t)

    inputs = keras.Input(shape=tuple(int(d) for d in input_shape))
    h = conv_bn_relu(inputs, 16)
    for stage, channels in enumerate((16 * width, 32 * width, 64 * width)):
        if stage > 0:
            h = keras.layers.MaxPooling2D(pool_size=2)(h)
        for _ in range(blocks):
            shortcut = h
            if h.shape[-1] != channels:
                shortcut = keras.layers.Conv2D(channels, 1)(h)
            main = conv_bn_relu(conv_bn_relu(h, channels), channels)
            h = keras.layers.Add()([shortcut, main])
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(h)
    return keras.Model(inputs, outputs, name="resnet")


MODELS = {
    "conv_classifier": conv_classifier,
    "mlp_classifier": mlp_classifier,
    "nas_classifier": nas_classifier,
    "resnet": resnet,
}


def build_model(target, input_shape, num_classes, **config):
    """Build model ``target`` (a key of :data:`MODELS`) for images ``input_shape``."""
    if target not in MODELS:
        raise unknown("model", target, MODELS)
    builder = MODELS[target]
    accepted = [p for p in inspect.signature(builder).parameters
                if p not in ("input_shape", "num_classes")]
    extra = sorted(set(config) - set(accepted))
    if extra:
        raise L2OError(f"unknown argument(s) {', '.join(extra)} for model '{target}'; valid: "
                       f"{', '.join(accepted)}")
    return builder(input_shape, num_classes, **config)
