"""Attribution maps per lead over time (docs/PROTOCOL.md "Metrics": interpretability).

Two methods, both explaining one class *logit* of a model (models output logits):

* ``"ig"`` — integrated gradients (Sundararajan et al. 2017): attribution =
  (x - x0) * mean over the straight path from x0 to x of d logit / d input, trapezoidal rule with
  ``steps`` intervals (default 64), computed in batches by a ``tf.function``. The baseline x0 is
  the all-zero signal in mV (0 mV after standardisation: ``(0 - mean) / std``), i.e. "no ECG".
  Completeness holds up to the quadrature error: the attributions sum to
  logit(x) - logit(x0).
* ``"lrp"`` — layer-wise relevance propagation with the epsilon rule (epsilon 0.1, as in the
  paper), see :func:`lrp_epsilon` for the rules and the supported layers (convolutional models:
  Conv/Dense/BatchNorm/pooling/ReLU/Add/Concatenate; not the recurrent models).

A whole record (e.g. 10 s = 1000 samples at 100 Hz) is explained window by window on the
evaluation windows of the protocol (2.5 s, stride half a window, :func:`ecg_keras.windows.window_index`)
and the window maps are combined per time step (:func:`attribute_record`):
``combine="max"`` (default) takes, at each time step, the attribution of the covering window
with the largest class logit — the window that determines the record's prediction under the
protocol's max aggregation; ``combine="mean"`` averages the covering windows.

The library functions take arrays, a Keras model and a :class:`~ecg_keras.standardize.Standardizer`
and do not depend on the dataset readers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

METHODS = ("ig", "lrp")
COMBINE = ("max", "mean")
LRP_EPSILON = 0.1


# --------------------------------------------------------------------------- integrated gradients

def _trapezoid(steps: int) -> tuple[np.ndarray, np.ndarray]:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] = 0.5 / steps
    return alphas, weights


def _grad_fn(model, length, leads):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, length, leads], tf.float32),
                                  tf.TensorSpec([], tf.int32)], reduce_retracing=True)
    def grad(inp, class_index):
        with tf.GradientTape() as tape:
            tape.watch(inp)
            out = model(inp, training=False)
            target = tf.gather(out, class_index, axis=1)
        return tape.gradient(target, inp)

    return grad


def integrated_gradients(model, x, class_index: int, baseline=0.0, steps: int = 64,
                         batch_size: int = 256) -> np.ndarray:
    """Integrated gradients of logit ``class_index`` for the model inputs ``x`` (m, length, leads)
    (already standardised, i.e. exactly what the model sees); ``baseline`` is a scalar or an array
    broadcastable to ``x`` in the same space. Returns (m, length, leads) float64 attributions.

    All ``m * (steps + 1)`` path points are evaluated in batches of ``batch_size``.
    """
    import tensorflow as tf

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be (windows, length, leads), got {x.shape}")
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float32), x.shape)
    n_out = int(model.outputs[0].shape[-1])
    if not 0 <= int(class_index) < n_out:
        raise ValueError(f"class index {class_index} out of range for {n_out} outputs")
    alphas, weights = _trapezoid(steps)
    grad = _grad_fn(model, x.shape[1], x.shape[2])
    m, k = len(x), len(alphas)
    total = np.zeros(x.shape, dtype=np.float64)
    win = np.repeat(np.arange(m), k)          # path point -> window
    step = np.tile(np.arange(k), m)           # path point -> alpha index
    delta = x - base
    c = tf.constant(int(class_index), tf.int32)
    for s in range(0, m * k, batch_size):
        w, a = win[s:s + batch_size], step[s:s + batch_size]
        inp = base[w] + alphas[a].astype(np.float32)[:, None, None] * delta[w]
        g = grad(tf.constant(inp), c).numpy().astype(np.float64)
        np.add.at(total, w, g * weights[a][:, None, None])
    return delta.astype(np.float64) * total


# --------------------------------------------------------------------------- whole records

@dataclass
class RecordAttribution:
    """Attribution of one record for one class (see :func:`attribute_record`)."""

    attribution: np.ndarray          # (T, leads), logit units
    signal: np.ndarray               # (T, leads), as given (mV)
    class_index: int
    method: str
    combine: str
    window: int                      # window length (samples)
    offsets: np.ndarray              # (m,) window starts
    window_logits: np.ndarray        # (m,) class logit per window
    window_attributions: np.ndarray = field(repr=False, default=None)  # (m, window, leads)
    baseline_logits: np.ndarray | None = None  # (m,) class logit of the baseline (IG only)

    @property
    def probability(self) -> float:
        """Record-level probability of the class (sigmoid of the max window logit)."""
        return float(1.0 / (1.0 + np.exp(-float(np.max(self.window_logits)))))

    @property
    def best_window(self) -> int:
        return int(np.argmax(self.window_logits))


def combine_windows(window_attr, offsets, scores, length: int, how: str = "max") -> np.ndarray:
    """Per-time-step combination of overlapping window maps (m, window, leads) into (length, leads):
    ``"max"`` = the map of the covering window with the highest score, ``"mean"`` = average of the
    covering windows. Time steps covered by no window (a tail shorter than the stride) are 0."""
    if how not in COMBINE:
        raise ValueError(f"combine must be one of {COMBINE}, got {how!r}")
    window_attr = np.asarray(window_attr, dtype=np.float64)
    m, w, leads = window_attr.shape
    out = np.zeros((length, leads))
    if how == "max":
        for i in np.argsort(np.asarray(scores), kind="stable"):   # best window written last
            o = int(offsets[i])
            out[o:o + w] = window_attr[i][:max(0, min(w, length - o))]
        return out
    count = np.zeros(length)
    for i in range(m):
        o = int(offsets[i])
        n = max(0, min(w, length - o))
        out[o:o + n] += window_attr[i][:n]
        count[o:o + n] += 1
    return out / np.maximum(count, 1)[:, None]


def attribute_record(model, signal, class_index: int, standardizer=None, sampling_rate: int = 100, *,
                     method: str = "ig", combine: str = "max", steps: int = 64, stride: int | None = None,
                     epsilon: float = LRP_EPSILON, batch_size: int = 256) -> RecordAttribution:
    """Attribution map (T, leads) of logit ``class_index`` for one record ``signal`` (T, leads) in mV.

    The record is standardised with ``standardizer`` (None: used as given), cut into the
    protocol's evaluation windows (model input length, else 2.5 s; stride half a window; a record
    shorter than a window is zero-padded after standardisation, like ``ecg_keras.windows``), every
    window is explained with ``method`` ("ig" or "lrp") and the maps are combined with
    ``combine`` ("max" or "mean", see :func:`combine_windows`).
    """
    from ecg_keras.windows import model_window, window_index

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    sig = np.asarray(signal, dtype=np.float32)
    if sig.ndim != 2:
        raise ValueError(f"signal must be (time, leads), got {sig.shape}")
    x = standardizer.transform(sig) if standardizer is not None else sig.copy()
    zero_mv = (standardizer.transform(np.zeros((1, 1), np.float32))[0, 0]
               if standardizer is not None else np.float32(0.0))
    w = model_window(model, sampling_rate)
    length = len(x)
    if length < w:
        x = np.pad(x, ((0, w - length), (0, 0)))
    _, offsets = window_index([len(x)], w, stride or w // 2)
    windows = np.stack([x[o:o + w] for o in offsets]).astype(np.float32)
    logits = np.asarray(model.predict(windows, verbose=0, batch_size=batch_size), dtype=np.float64)
    window_logits = logits[:, int(class_index)]
    base_logits = None
    if method == "ig":
        attr = integrated_gradients(model, windows, class_index, baseline=zero_mv, steps=steps,
                                    batch_size=batch_size)
        base = np.full((1,) + windows.shape[1:], zero_mv, np.float32)
        base_logits = np.repeat(np.asarray(model.predict(base, verbose=0), np.float64)[:, int(class_index)],
                                len(windows))
    else:
        attr = lrp_epsilon(model, windows, class_index, epsilon=epsilon)
    full = combine_windows(attr, offsets, window_logits, len(x), combine)[:length]
    return RecordAttribution(full, sig, int(class_index), method, combine, w, offsets, window_logits,
                             attr, base_logits)


# --------------------------------------------------------------------------- LRP (epsilon rule)

def _layer_kinds():
    from keras import layers as L

    affine = (L.Conv1D, L.Dense, L.BatchNormalization, L.AveragePooling1D, L.GlobalAveragePooling1D)
    linear = (L.Dropout, L.ZeroPadding1D, L.Identity, L.Reshape, L.Flatten, L.Cropping1D)
    route = linear + (L.ReLU, L.MaxPooling1D, L.GlobalMaxPooling1D, L.Concatenate)
    return affine, linear, route


def _is_relu_activation(op) -> bool:
    from keras import layers as L

    if not isinstance(op, L.Activation):
        return False
    name = getattr(op.activation, "__name__", str(op.activation))
    return name in ("relu", "linear")


def _call(op, args, kwargs):
    if getattr(op, "_call_has_training_arg", False):
        kwargs = {**kwargs, "training": False}
    return op(*args, **kwargs)


def lrp_epsilon(model, x, class_index: int, epsilon: float = LRP_EPSILON) -> np.ndarray:
    """Epsilon-LRP relevance (m, length, leads) of logit ``class_index`` for the model inputs ``x``
    (standardised windows). The relevance at the output is the class logit itself.

    Rules (Montavon et al. 2019, "Layer-wise relevance propagation: an overview"):

    * affine layers (Conv1D, Dense, BatchNormalization, average pooling) — epsilon rule
      ``R_j = a_j * sum_k w_jk R_k / (z_k + eps * sign(z_k))`` (sign(0) = +1), computed with the
      gradient trick. A chain of affine layers without a nonlinearity in between (Conv -> BN,
      BN -> Dropout -> Dense, padding included) is treated as ONE fused affine layer, i.e. batch
      norm is merged into its neighbouring linear layer (the usual canonisation) before the rule.
    * ReLU, dropout, padding, reshape, concatenation: relevance passes through (split by
      position); max pooling: winner takes all.
    * Add (residual sums): relevance split in proportion to the summands (epsilon rule).

    Other layers (recurrent, inception's branches work; LSTM/GRU/TimeStep do not) raise
    ``NotImplementedError``: use integrated gradients. With ``epsilon -> 0`` this is LRP-0, which
    for ReLU networks equals gradient x input (used as a test).
    """
    import tensorflow as tf
    from keras import layers as L

    affine, linear, route = _layer_kinds()
    x = np.asarray(x, dtype=np.float32)
    nodes = [n for d in sorted(model._nodes_by_depth, reverse=True) for n in model._nodes_by_depth[d]]
    consumers: dict[int, int] = {}
    producer: dict[int, object] = {}
    for n in nodes:
        for t in n.input_tensors:
            consumers[id(t)] = consumers.get(id(t), 0) + 1
        for t in n.outputs:
            producer[id(t)] = n
    # forward pass, keeping every intermediate value
    values = {id(t): tf.constant(x) for t in model.inputs}
    for n in nodes:
        if n.is_input or not n.operation:
            continue
        args, kwargs = n.arguments.fill_in(values)
        out = _call(n.operation, args, kwargs)
        outs = out if isinstance(out, (list, tuple)) else [out]
        for t, v in zip(n.outputs, outs):
            values[id(t)] = v
    out_t = model.outputs[0]
    logits = values[id(out_t)]
    mask = tf.one_hot(int(class_index), int(logits.shape[-1]), dtype=logits.dtype)
    relevance = {id(out_t): logits * mask}
    eps = float(epsilon)

    def add(t, r):
        relevance[id(t)] = relevance[id(t)] + r if id(t) in relevance else r

    def stab(z):
        return z + eps * tf.where(z >= 0, tf.ones_like(z), -tf.ones_like(z))

    done = set()
    for n in reversed(nodes):                           # output first
        op = n.operation
        if n.is_input or id(n) in done or not any(id(t) in relevance for t in n.outputs):
            continue
        if len(n.outputs) != 1:
            raise NotImplementedError(f"LRP: layer {op.name} has several outputs; use method='ig'")
        r = relevance[id(n.outputs[0])]
        if isinstance(op, affine):
            chain = [n]                                 # fuse affine/linear producers into n
            while True:
                t_in = chain[-1].input_tensors[0]
                p = producer.get(id(t_in))
                if (p is None or p.is_input or consumers.get(id(t_in), 0) != 1 or len(p.input_tensors) != 1
                        or not isinstance(p.operation, affine + linear)):
                    break
                chain.append(p)
            a = values[id(chain[-1].input_tensors[0])]
            with tf.GradientTape() as tape:
                tape.watch(a)
                z = a
                for c in reversed(chain):
                    z = _call(c.operation, (z,), {})
            grad = tape.gradient(z, a, output_gradients=r / stab(z))
            add(chain[-1].input_tensors[0], a * grad)
            done.update(id(c) for c in chain)
        elif isinstance(op, route) or _is_relu_activation(op):
            ins = list(n.input_tensors)
            a = [values[id(t)] for t in ins]
            with tf.GradientTape() as tape:
                for v in a:
                    tape.watch(v)
                args, kwargs = n.arguments.fill_in({id(t): v for t, v in zip(ins, a)})
                z = _call(op, args, kwargs)
            grads = tape.gradient(z, a, output_gradients=r)
            for t, g in zip(ins, grads):
                if isinstance(op, (L.ReLU, L.Activation)):
                    g = r                               # pass-through (R is 0 where the unit is off)
                add(t, g)
        elif isinstance(op, L.Add):
            ins = list(n.input_tensors)
            s = r / stab(values[id(n.outputs[0])])
            for t in ins:
                add(t, values[id(t)] * s)
        else:
            raise NotImplementedError(f"LRP: layer {op.name} ({type(op).__name__}) is not supported; "
                                      "use method='ig'")
    r_in = relevance.get(id(model.inputs[0]))
    if r_in is None:
        return np.zeros(x.shape)
    return np.asarray(r_in, dtype=np.float64)
