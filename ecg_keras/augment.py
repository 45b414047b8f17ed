"""Training-time augmentations of standardised window batches (``ecg-keras train --augment ...``).

Off by default (the paper's protocol trains without them). Each is a pure TensorFlow function
of a batch ``x`` (b, window, leads) and a stateless RNG key; ``apply`` keys every batch on
``(seed, global step)``, so a run (and a resumed run) sees the same augmented batches for a
given seed. Magnitudes are physical (mV, Hz): ``scale`` is the standardiser's mV per unit.

* ``amplitude``: gain per example (log-uniform 0.5-2) times gain per lead (log-normal, sd 0.25):
  body habitus, electrode placement and per-lead automatic gain of some devices.
* ``baseline``: per-lead offset (sd 0.1 mV) plus two sinusoids of 0.05-0.5 Hz (up to 0.25 mV):
  respiration and electrode drift (MIT-BIH Noise Stress Test "bw").
* ``noise``: white noise (sd up to 40 uV) plus mains hum at 50 or 60 Hz (up to 30 uV).
* ``timewarp``: uniform time stretch by 0.97-1.03 about the window centre (the heart rate
  moves by at most 3 %, within the 50-60 / 90-100 bpm spans of the synthetic rate thresholds).
* ``leaddrop``: each lead set to zero (the standardised mean) with probability 0.1.
"""
from __future__ import annotations

import math

NAMES = ("amplitude", "baseline", "noise", "timewarp", "leaddrop")


def parse(text) -> tuple[str, ...]:
    """``"amplitude,noise"`` (or a sequence of names; ``""``/``"none"`` = none) -> names in NAMES order."""
    items = text.split(",") if isinstance(text, str) else list(text or ())
    names = {str(n).strip().lower() for n in items} - {"", "none"}
    if "all" in names:
        names = (names - {"all"}) | set(NAMES)
    unknown = sorted(names - set(NAMES))
    if unknown:
        raise ValueError(f"unknown augmentation(s) {', '.join(unknown)}; choose from {', '.join(NAMES)} (or all)")
    return tuple(n for n in NAMES if n in names)


def augment_batch(x, key, names, *, sampling_rate: int, scale: float = 1.0):
    """``x`` (b, window, leads) float32 augmented by ``names`` with the int64 stateless ``key`` (2,)."""
    import tensorflow as tf

    names = parse(names)
    shape = tf.shape(x)
    b, w, leads = shape[0], shape[1], shape[2]
    mv = 1.0 / float(scale)  # standardised units per mV

    def u(i, dims, lo=0.0, hi=1.0):
        return tf.random.stateless_uniform(dims, seed=key + tf.constant([0, 7919], tf.int64) * i, minval=lo,
                                           maxval=hi, dtype=tf.float32)

    def n(i, dims):
        return tf.random.stateless_normal(dims, seed=key + tf.constant([0, 7919], tf.int64) * i, dtype=tf.float32)

    t = tf.cast(tf.range(w), tf.float32)[None, :, None] / float(sampling_rate)  # (1, w, 1) s
    if "timewarp" in names:
        factor = u(1, [b, 1], 0.97, 1.03)
        centre = tf.cast(w - 1, tf.float32) / 2.0
        pos = tf.clip_by_value(centre + (tf.cast(tf.range(w), tf.float32)[None, :] - centre) * factor,
                               0.0, tf.cast(w - 1, tf.float32))  # (b, w)
        lo = tf.floor(pos)
        frac = (pos - lo)[:, :, None]
        lo = tf.cast(lo, tf.int32)
        hi = tf.minimum(lo + 1, w - 1)
        x = (1.0 - frac) * tf.gather(x, lo, batch_dims=1) + frac * tf.gather(x, hi, batch_dims=1)
    if "amplitude" in names:
        gain = tf.exp(u(2, [b, 1, 1], math.log(0.5), math.log(2.0)) + 0.25 * n(3, [b, 1, leads]))
        x = x * gain
    if "baseline" in names:
        freq = u(4, [b, 2, leads], 0.05, 0.5)
        amp = u(5, [b, 2, leads], 0.0, 0.25) * mv
        phase = u(6, [b, 2, leads], 0.0, 2 * math.pi)
        wander = tf.reduce_sum(amp[:, :, None, :] * tf.sin(2 * math.pi * freq[:, :, None, :] * t[:, None] +
                                                           phase[:, :, None, :]), axis=1)
        x = x + wander + 0.1 * mv * n(7, [b, 1, leads])
    if "noise" in names:
        sd = u(8, [b, 1, 1], 0.0, 0.04) * mv
        hum_f = tf.where(u(9, [b, 1, 1]) < 0.5, 50.0, 60.0)
        hum = u(10, [b, 1, leads], 0.0, 0.03) * mv * tf.sin(2 * math.pi * hum_f * t + u(11, [b, 1, leads], 0, 6.3))
        x = x + sd * n(12, shape) + hum
    if "leaddrop" in names:
        x = x * tf.cast(u(13, [b, 1, leads]) >= 0.1, tf.float32)
    return x


def apply(ds, names, *, seed: int, first_step: int, sampling_rate: int, scale: float = 1.0):
    """``ds`` of (x, y) batches with ``names`` applied to ``x``; batch ``i`` is keyed on
    ``(seed, first_step + i)`` (pass the global step of the first batch when resuming)."""
    names = parse(names)
    if not names:
        return ds
    import tensorflow as tf

    def fn(step, batch):
        x, y = batch
        key = tf.stack([tf.cast(seed, tf.int64), 1_000_000_007 + tf.cast(step, tf.int64)])
        return augment_batch(x, key, names, sampling_rate=sampling_rate, scale=scale), y

    return ds.enumerate(first_step).map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
