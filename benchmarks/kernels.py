"""Convolution kernel throughput: one Conv1D forward + both gradients, in GFLOP/s.

Isolates the kernels that dominate every conv model's training step from everything else in the
step (BatchNorm, activations, optimizer, Keras), so that the whole-step GFLOP/s of
``python -m benchmarks`` can be compared with what the kernels themselves reach on this machine.
``benchmarks/torch_peer.py --kernels`` times the same shapes in PyTorch.

    python -m benchmarks.kernels                  # prints a table; --json for machine-readable output
    python -m benchmarks.kernels --alternatives   # also Conv1D as im2col + matmul and as per-tap matmuls
"""
from __future__ import annotations

import argparse
import json
import time

from benchmarks.run import work_matmul

#: (length, in channels, out channels, kernel size) at batch 128: the main convolutions of
#: resnet1d_wang / fcn_wang (128 ch, k 5/3, 12->128 k 8, 128->256 k 5), xresnet1d101's later
#: stages (64 ch at 125 samples, 128 ch at 63) and inception1d (32 ch, k 39/19/9, 1x1 bottleneck).
SHAPES = ((250, 128, 128, 5), (250, 128, 128, 3), (250, 12, 128, 8), (250, 128, 256, 5), (125, 64, 64, 5),
          (63, 128, 128, 5), (250, 32, 32, 39), (250, 32, 32, 19), (250, 32, 32, 9), (250, 128, 32, 1))
BATCH = 128


def conv_flops(length: int, cin: int, cout: int, k: int, batch: int = BATCH) -> float:
    """Forward + input gradient + kernel gradient: 3 x 2 x batch x length x cin x cout x k."""
    return 3.0 * 2.0 * batch * length * cin * cout * k


def _conv(x, w):
    import tensorflow as tf

    return tf.nn.conv1d(x, w, 1, "SAME")


def _shifted(x, w):
    """The k shifted copies of the zero-padded input, as "SAME" padding places them."""
    import tensorflow as tf

    k = w.shape[0]
    xp = tf.pad(x, [[0, 0], [(k - 1) // 2, k // 2], [0, 0]])
    return [xp[:, j:j + x.shape[1], :] for j in range(k)]


def _im2col(x, w):
    """Conv1D as one matmul over the (batch x length, k x cin) patch matrix."""
    import tensorflow as tf

    k, cin, cout = w.shape
    patches = tf.concat(_shifted(x, w), axis=-1)
    return tf.reshape(tf.reshape(patches, [-1, k * cin]) @ tf.reshape(w, [k * cin, cout]), [x.shape[0], x.shape[1], cout])


def _shift_matmul(x, w):
    """Conv1D as a sum of k matmuls, one per kernel tap."""
    import tensorflow as tf

    return tf.add_n([tf.einsum("btc,cd->btd", xs, w[j]) for j, xs in enumerate(_shifted(x, w))])


#: Conv1D implementations; the alternatives express every pass as matmuls (tried, see RESULTS §8)
IMPLEMENTATIONS = {"conv1d": _conv, "im2col": _im2col, "shift_matmul": _shift_matmul}


def measure(shape, repeats: int = 5, impl: str = "conv1d") -> float:
    """Best-of-``repeats`` seconds of one Conv1D forward + backward ("same" padding)."""
    import tensorflow as tf

    length, cin, cout, k = shape
    x = tf.random.normal([BATCH, length, cin], seed=0)
    w = tf.random.normal([k, cin, cout], seed=1) * 0.05
    conv = IMPLEMENTATIONS[impl]

    @tf.function
    def step(x, w):
        with tf.GradientTape() as tape:
            tape.watch([x, w])
            y = conv(x, w)
            loss = tf.reduce_sum(y * y) * 1e-6
        return tape.gradient(loss, [x, w])

    step(x, w)[1].numpy()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step(x, w)[1].numpy()
        times.append(time.perf_counter() - t)
    return min(times)


def run(shapes=SHAPES, impls=("conv1d",)) -> dict:
    rows = []
    for shape in shapes:
        for impl in impls:
            sec = measure(shape, impl=impl)
            rows.append({"shape": list(shape), "impl": impl, "ms": round(1e3 * sec, 1),
                         "gflops": round(conv_flops(*shape) / sec / 1e9, 1)})
    return {"engine": "tensorflow", "batch": BATCH, "matmul_gflops": work_matmul()["gflops_best"], "convs": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--alternatives", action="store_true",
                   help="also time Conv1D as im2col + one matmul and as a sum of per-tap matmuls")
    args = p.parse_args(argv)
    result = run(impls=tuple(IMPLEMENTATIONS) if args.alternatives else ("conv1d",))
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"tf.matmul 2048x2048 float32: {result['matmul_gflops']} GFLOP/s")
    print("length  cin  cout   k   ms (fwd+bwd, batch 128)   GFLOP/s   implementation")
    for r in result["convs"]:
        length, cin, cout, k = r["shape"]
        print(f"{length:6d} {cin:4d} {cout:5d} {k:3d}   {r['ms']:10.1f}               {r['gflops']:7.1f}   {r['impl']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
