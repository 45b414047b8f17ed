"""A/B in one process: main-like inference (BN unfolded, ONNX loop state as exported, default ORT session)
vs this branch (BN folded, loop invariants hoisted, export.onnx.session_options), for the three engines of
benchmarks/run.py (whole 10-s records, 7 windows, max). Calls alternate A, B, B, A, ... per round.

PYTHONPATH=$PWD python -m benchmarks.bnfold_ab ARCH ROUNDS     (from the repository root)

"main" switches the three changes off in this process (fold_batchnorm and hoist_loop_invariants
replaced by no-ops, logits_function without the 2-D form, a default InferenceSession).
"""
import sys, time, statistics, tempfile, numpy as np, keras, tensorflow as tf, onnxruntime as ort
sys.path.insert(0, "tests")
import ecg_keras.export.signatures as sig
import ecg_keras.export.onnx as eo
from test_bnfold import trained_like, ecg_like
from ecg_keras import models
from ecg_keras.export import export_savedmodel
from ecg_keras.export.signatures import ServingSpec, record_probabilities
from ecg_keras.models.bnfold import fold_batchnorm
from ecg_keras.standardize import Standardizer
arch, rounds = sys.argv[1], int(sys.argv[2])
keras.utils.set_random_seed(0)
m = trained_like(models.get(arch, num_classes=71, input_shape=(250, 12)), ecg_like((32, 250, 12)))
std = Standardizer(0.0, 1.0)
classes = [f"c{i}" for i in range(71)]
spec = ServingSpec.create(m, classes=classes, standardizer=std)
x = np.concatenate([ecg_like((32, 1000, 12), seed=s) for s in (2, 3)])
tmp = tempfile.mkdtemp()
calls, keep = {}, []
fold, hoist, conv2d = sig.fold_batchnorm, eo.hoist_loop_invariants, sig.as_conv2d
for variant in ("main", "branch"):
    new = variant == "branch"
    model = fold_batchnorm(m) if new else m
    f = tf.function(lambda z, model=model: record_probabilities(model, z, None, spec, refuse_invalid=False)[0],
                    input_signature=[tf.TensorSpec([None, 1000, 12], tf.float32)])
    calls[f"keras/{variant}"] = lambda z, f=f: f(tf.constant(z)).numpy()
    sig.fold_batchnorm = fold if new else (lambda mm: mm)
    eo.hoist_loop_invariants = hoist if new else (lambda g: 0)
    sig.as_conv2d = conv2d if new else (lambda mm: None)
    t = time.perf_counter()
    s = tf.saved_model.load(str(export_savedmodel(m, f"{tmp}/{variant}", classes=classes, standardizer=std)))
    keep.append(s); s = s.signatures["predict_record"]
    calls[f"savedmodel/{variant}"] = lambda z, s=s: s(ecg=tf.constant(z))["probabilities"].numpy()
    p = eo.export_onnx(m, f"{tmp}/{variant}.onnx", standardizer=std, classes=classes, whole_record=True)
    sess = eo.inference_session(p) if new else ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    calls[f"onnx/{variant}"] = lambda z, sess=sess: sess.run(["probabilities"], {"ecg": z})[0]
    print(variant, "exports", round(time.perf_counter() - t, 1), "s", flush=True)
sig.fold_batchnorm, eo.hoist_loop_invariants, sig.as_conv2d = fold, hoist, conv2d
# parity: unfolded Keras model per window, max over windows
windows = np.stack([x[:, o:o + 250] for o in range(0, 751, 125)], 1).reshape(-1, 250, 12)
ref = (1 / (1 + np.exp(-m.predict(windows, verbose=0, batch_size=256).astype(np.float64)))).reshape(64, 7, -1).max(1)
print(f"reference probabilities: mean {ref.mean():.3f}, share in (0.01, 0.99): {np.mean((ref > .01) & (ref < .99)):.2f}")
for k, c in calls.items():
    y = c(x); c(x[:1])
    print(f"{k:18s} max |p - unfolded Keras model| = {np.abs(y - ref).max():.2e}", flush=True)
times = {(k, b): [] for k in calls for b in (64, 1)}
for r in range(rounds):
    for engine in ("keras", "savedmodel", "onnx"):
        pair = [f"{engine}/main", f"{engine}/branch"]
        for k in (pair if r % 2 == 0 else pair[::-1]):
            t0 = time.perf_counter(); calls[k](x); times[(k, 64)].append(time.perf_counter() - t0)
            for _ in range(3):
                t0 = time.perf_counter(); calls[k](x[:1]); times[(k, 1)].append(time.perf_counter() - t0)
print(f"{arch}, {rounds} rounds; windows/s at batch 64 (best / median call), ms per record at batch 1 (min / median)")
for engine in ("keras", "savedmodel", "onnx"):
    a, b = f"{engine}/main", f"{engine}/branch"
    for k in (a, b):
        t64, t1 = times[(k, 64)], times[(k, 1)]
        print(f"  {k:18s} b64 {448/min(t64):6.0f} / {448/statistics.median(t64):6.0f} windows/s | "
              f"b1 {1e3*min(t1):6.1f} / {1e3*statistics.median(t1):6.1f} ms")
    print(f"  {engine}: branch/main speed ratio b64 {min(times[(a,64)])/min(times[(b,64)]):.2f} (min) "
          f"{statistics.median(times[(a,64)])/statistics.median(times[(b,64)]):.2f} (median); "
          f"b1 {min(times[(a,1)])/min(times[(b,1)]):.2f} (min) {statistics.median(times[(a,1)])/statistics.median(times[(b,1)]):.2f} (median)")
