"""Export: SavedModel (TF Serving layout, window + whole-record signatures) and ONNX, with parity.

Parity is checked on real LUDB records (500 Hz, resampled to 100 Hz) against the Python
pipeline (``ecg_keras.windows``): window signature vs Keras ``model.predict`` + sigmoid, and
whole-record signature vs ``predict_records`` (TTA, max/mean). TF Serving itself cannot be
installed here: the REST JSON examples of docs/SERVING.md are decoded
the way TF Serving decodes them and fed to ``tf.saved_model.load(...).signatures``; its
onnxruntime snippet is run on an exported model.

Default suite: fcn_wang (through the CLI on a run directory), xresnet1d18 and lstm (untrained).
``-m slow``: every architecture in the registry, briefly trained and exported from its run directory.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf

from conftest import REPO, data_root, make_synthetic, shared_path
from ecg_keras import models
from ecg_keras.export import ServingSpec, export_onnx, export_savedmodel, read_metadata
from ecg_keras.export import onnx as export_onnx_module
from ecg_keras.runs import resolve
from ecg_keras.standardize import Standardizer
from ecg_keras.training import TrainConfig, train
from ecg_keras.windows import eval_windows, predict_records

TOL = 1e-5
CLASSES = ["CD", "HYP", "MI", "NORM", "STTC"]  # superdiagnostic
LUDB_RECORDS = ("1", "2", "3", "4")
SERVING_DOC = REPO / "docs" / "SERVING.md"


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def ludb() -> list[np.ndarray]:
    """Four real 10-s LUDB records resampled 500 -> 100 Hz: (1000, 12) float32 in mV."""
    import wfdb
    from scipy.signal import resample_poly

    root = shared_path("ludb-1.0.1", "data")
    out = []
    for rec in LUDB_RECORDS:
        x, fields = wfdb.rdsamp(str(root / rec))
        assert fields["fs"] == 500 and x.shape == (5000, 12)
        out.append(resample_poly(x, 1, 5, axis=0).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def standardizer(ludb) -> Standardizer:
    return Standardizer.fit(ludb)


def _batch_norms(layer) -> list:
    found = [layer] if isinstance(layer, keras.layers.BatchNormalization) else []
    for sub in getattr(layer, "layers", []):
        found += _batch_norms(sub)
    return found


def build(arch: str, n_classes: int = len(CLASSES), calibration: np.ndarray | None = None) -> keras.Model:
    """Untrained model; with ``calibration`` (standardised windows) its BN statistics are set to them.

    Untrained deep models in inference mode (BN moving mean 0, variance 1) blow activations up
    (xresnet1d101 logits ~1e6): every sigmoid saturates to exactly 0 or 1 and parity would be
    vacuous. One training-mode pass with momentum 0 gives realistic statistics, as training does.
    """
    keras.utils.set_random_seed(0)
    model = models.get(arch, num_classes=n_classes)
    if calibration is not None:
        bns = _batch_norms(model)
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.momentum = 0.0
        model(calibration, training=True)
        for bn, m in zip(bns, momenta):
            bn.momentum = m
    return model


@pytest.fixture(scope="module")
def calibration(ludb, standardizer) -> np.ndarray:
    windows, _ = eval_windows(ludb, standardizer=standardizer)
    return windows


# --------------------------------------------------------------------------- references
def keras_window_probs(model, windows_raw: np.ndarray, st: Standardizer) -> np.ndarray:
    logits = model.predict(st.transform(windows_raw), verbose=0, batch_size=64).astype(np.float64)
    return 1.0 / (1.0 + np.exp(-logits))


def parity(model, sm_dir: Path, onnx_window: Path | None, onnx_record: Path | None, records, st, how) -> dict:
    """Max abs differences of every exported path against the Python pipeline."""
    windows, _ = eval_windows(records)  # raw mV windows, 7 per 10-s record
    ref_windows = keras_window_probs(model, windows, st)
    ref_records = predict_records(model, records, standardizer=st, how=how)
    unsaturated = np.mean((ref_windows > 1e-3) & (ref_windows < 1 - 1e-3))
    assert unsaturated > 0.5, f"only {unsaturated:.0%} of the probabilities are away from 0/1: parity would be vacuous"
    sigs = tf.saved_model.load(str(sm_dir)).signatures
    out = sigs["serving_default"](ecg=tf.constant(windows))
    rec = sigs["predict_record"](ecg=tf.constant(np.stack(records)))
    assert rec["n_windows"].numpy().tolist() == [7] * len(records)
    assert [c.decode() for c in out["classes"].numpy()[0]] == CLASSES[: ref_windows.shape[1]]
    diffs = {"savedmodel_window": np.abs(out["probabilities"].numpy() - ref_windows).max(),
             "savedmodel_record": np.abs(rec["probabilities"].numpy() - ref_records).max()}
    if onnx_window is not None:
        got = ort.InferenceSession(str(onnx_window)).run(["probabilities"], {"ecg": windows})[0]
        diffs["onnx_window"] = np.abs(got - ref_windows).max()
    if onnx_record is not None:
        got = ort.InferenceSession(str(onnx_record)).run(["probabilities"], {"ecg": np.stack(records)})[0]
        diffs["onnx_record"] = np.abs(got - ref_records).max()
    return {k: float(v) for k, v in diffs.items()}


def export_all(model, out: Path, st: Standardizer, how: str, *, whole_record_onnx: bool = True):
    kw = dict(classes=CLASSES[: model.output_shape[-1]], standardizer=st, aggregation=how)
    sm = export_savedmodel(model, out / "serving", **kw)
    ow = export_onnx(model, out / "window.onnx", **kw)
    orec = export_onnx(model, out / "record.onnx", whole_record=True, **kw) if whole_record_onnx else None
    return sm, ow, orec


# --------------------------------------------------------------------------- run dir + CLI (fcn_wang)
def make_run(path: Path, model, st: Standardizer, task: str = "superdiagnostic", classes=CLASSES) -> Path:
    path.mkdir(parents=True)
    model.save(path / "model.keras")
    (path / "classes.json").write_text(json.dumps(list(classes)))
    st.save(path / "standardizer.json")
    (path / "config.json").write_text(json.dumps({"arch": model.name, "task": task, "dataset": "ptbxl",
                                                  "sampling_rate": 100, "seed": 0}))
    return path


@pytest.fixture(scope="module")
def fcn(tmp_path_factory, standardizer, calibration):
    """fcn_wang exported through ``python -m export`` (in-process) from a run directory."""
    from export.__main__ import main

    tmp = tmp_path_factory.mktemp("fcn")
    model = build("fcn_wang", calibration=calibration)
    run = make_run(tmp / "run", model, standardizer)
    assert main(["savedmodel", str(run), "--out", str(tmp / "serving"), "--model-name", "ecg", "--version", "3"]) == 0
    assert main(["onnx", str(run), "--out", str(tmp / "window.onnx")]) == 0
    assert main(["onnx", str(run), "--out", str(tmp / "record.onnx"), "--whole-record"]) == 0
    sm = tmp / "serving" / "ecg" / "3"
    return {"model": model, "run": run, "sm": sm, "window": tmp / "window.onnx", "record": tmp / "record.onnx",
            "loaded": tf.saved_model.load(str(sm))}


def test_cli_export_matches_python_pipeline(fcn, ludb, standardizer):
    diffs = parity(fcn["model"], fcn["sm"], fcn["window"], fcn["record"], ludb, standardizer, "max")
    assert max(diffs.values()) < TOL, diffs


def test_savedmodel_has_tf_serving_layout_and_assets(fcn, standardizer):
    sm = fcn["sm"]
    assert (sm / "saved_model.pb").is_file() and (sm / "variables" / "variables.index").is_file()
    assert (sm / "assets" / "classes.txt").read_text().split() == CLASSES
    card = (sm / "assets" / "model_card.md").read_text()
    assert "fcn_wang" in card and "superdiagnostic" in card and "100 Hz" in card
    meta = read_metadata(sm)
    assert meta["classes"] == CLASSES and meta["window"] == 250 and meta["stride"] == 125
    assert meta["aggregation"] == "max" and meta["activation"] == "sigmoid"
    assert meta["mean"] == pytest.approx(standardizer.mean) and meta["std"] == pytest.approx(standardizer.std)
    loaded = fcn["loaded"]
    assert set(loaded.signatures) == {"serving_default", "predict_record", "predict_record_padded"}
    assert json.loads(loaded.metadata().numpy())["classes"] == CLASSES
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["ecg"]
    assert spec.shape.as_list() == [None, 250, 12] and spec.dtype == tf.float32
    spec = loaded.signatures["predict_record"].structured_input_signature[1]["ecg"]
    assert spec.shape.as_list() == [None, None, 12]


def test_onnx_metadata_and_opset(fcn):
    import onnx

    proto = onnx.load(str(fcn["record"]))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    sess = ort.InferenceSession(str(fcn["record"]))
    assert [(i.name, i.shape) for i in sess.get_inputs()] == [("ecg", ["batch", "length", 12])]
    assert json.loads(sess.get_modelmeta().custom_metadata_map["classes"]) == CLASSES
    assert export_onnx_module.read_metadata(fcn["window"])["whole_record"] is False


def test_padded_record_signature_handles_different_lengths(fcn, ludb, standardizer):
    """Records of 1000, 700, 400 and 120 (< one window) samples in one zero-padded batch."""
    lengths = [1000, 700, 400, 120]
    records = [r[:n] for r, n in zip(ludb, lengths)]
    batch = np.zeros((4, 1000, 12), np.float32)
    for i, r in enumerate(records):
        batch[i, : len(r)] = r
    out = fcn["loaded"].signatures["predict_record_padded"](ecg=tf.constant(batch), length=tf.constant(lengths))
    assert out["n_windows"].numpy().tolist() == [7, 4, 2, 1]
    ref = predict_records(fcn["model"], records, standardizer=standardizer, how="max")
    np.testing.assert_allclose(out["probabilities"].numpy(), ref, atol=TOL, rtol=0)
    # one record shorter than a window through predict_record (zero-padded after standardisation)
    short = fcn["loaded"].signatures["predict_record"](ecg=tf.constant(records[3][None]))
    np.testing.assert_allclose(short["probabilities"].numpy(), ref[3:], atol=TOL, rtol=0)
    got = ort.InferenceSession(str(fcn["record"])).run(["probabilities"], {"ecg": records[3][None]})[0]
    np.testing.assert_allclose(got, ref[3:], atol=TOL, rtol=0)


# --------------------------------------------------------------------------- wrong inputs
@pytest.mark.parametrize("signature, shape, message", [
    ("serving_default", (2, 250, 8), r"expected 12 leads, got shape\] \[2 250 8\]"),
    ("serving_default", (2, 300, 12), r"expected windows of 250 samples .*got\] \[300\]"),
    ("predict_record", (1, 1000, 8), r"expected 12 leads, got shape\] \[1 1000 8\]"),
    ("predict_record", (1, 0, 12), r"no samples"),
    ("serving_default", (250, 12), r"expected 12 leads, got shape\] \[250 12\]"),  # no batch axis
    ("predict_record", (1000, 12), r"expected 12 leads, got shape\] \[1000 12\]"),
])
def test_savedmodel_rejects_wrong_shapes_clearly(fcn, signature, shape, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        fcn["loaded"].signatures[signature](ecg=tf.zeros(shape))


def test_padded_signature_rejects_bad_lengths(fcn):
    sig = fcn["loaded"].signatures["predict_record_padded"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"must not exceed the padded length\] \[500\]"):
        sig(ecg=tf.zeros((2, 500, 12)), length=tf.constant([500, 600]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"one entry per record"):
        sig(ecg=tf.zeros((2, 500, 12)), length=tf.constant([500]))


def test_onnx_rejects_wrong_lead_count(fcn):
    sess = ort.InferenceSession(str(fcn["window"]))
    with pytest.raises(Exception, match=r"invalid dimensions for input: ecg(.|\n)*index: 2 Got: 8 Expected: 12"):
        sess.run(None, {"ecg": np.zeros((2, 250, 8), np.float32)})


def test_export_refuses_mismatched_classes_and_existing_version(fcn, tmp_path, standardizer):
    with pytest.raises(ValueError, match="5 outputs but 3 class names"):
        export_savedmodel(fcn["model"], tmp_path, classes=["a", "b", "c"], standardizer=standardizer)
    with pytest.raises(FileExistsError, match="pass overwrite=True to replace it, or choose another version"):
        export_savedmodel(fcn["model"], fcn["sm"].parents[1], model_name="ecg", version=3, classes=CLASSES,
                          standardizer=standardizer)


# --------------------------------------------------------------------------- REST JSON of docs/SERVING.md
def rest_predict(loaded, request: dict) -> dict:
    """TF Serving's REST predict API (row "instances" / columnar "inputs") over loaded signatures."""
    fn = loaded.signatures[request.get("signature_name", "serving_default")]
    specs = fn.structured_input_signature[1]
    if "instances" in request:
        rows = request["instances"]
        if isinstance(rows[0], dict):
            feeds = {k: np.asarray([r[k] for r in rows]) for k in specs}
        else:
            (name,) = specs
            feeds = {name: np.asarray(rows)}
    else:
        inputs = request["inputs"]
        feeds = {k: np.asarray(v) for k, v in inputs.items()} if isinstance(inputs, dict) else {next(iter(specs)): np.asarray(inputs)}
    out = fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in feeds.items()})
    out = {k: v.numpy() for k, v in out.items()}
    out = {k: (np.char.decode(v.astype(bytes)) if v.dtype == object else v).tolist() for k, v in out.items()}
    if "instances" in request:
        n = len(next(iter(out.values())))
        return {"predictions": [{k: v[i] for k, v in out.items()} for i in range(n)]}
    return {"outputs": out}


def serving_section(heading: str | None = None) -> str:
    """docs/SERVING.md, or its ``## heading`` section (to the next "## " heading)."""
    if not SERVING_DOC.exists():
        pytest.fail(f"{SERVING_DOC} is missing")
    text = SERVING_DOC.read_text()
    if heading is None:
        return text
    m = re.search(rf"^## {re.escape(heading)}[ \t]*\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    if m is None:
        pytest.fail(f"{SERVING_DOC} has no '## {heading}' heading")
    return m.group(1)


def docs_json_blocks() -> list[dict]:
    """The ```json blocks of docs/SERVING.md (REST requests and responses)."""
    return [json.loads(b) for b in re.findall(r"```json\n(.*?)```", serving_section(), flags=re.S)]


def _same_structure(got, want, path="") -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            _same_structure(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            _same_structure(g, w, f"{path}[{i}]")
    elif isinstance(want, str) or isinstance(want, int) and not isinstance(want, bool):
        assert got == want, f"{path}: {got!r} != {want!r}"  # class names, window counts
    else:
        assert isinstance(got, float) and 0.0 <= got <= 1.0, f"{path}: {got!r} is not a probability"


def test_rest_examples_in_serving_docs_run_against_the_savedmodel(fcn):
    blocks = docs_json_blocks()
    requests = [b for b in blocks if "signature_name" in b]
    responses = [b for b in blocks if "predictions" in b or "outputs" in b]
    assert {r["signature_name"] for r in requests} == {"serving_default", "predict_record", "predict_record_padded"}
    assert {"instances", "inputs"} <= {k for r in requests for k in r}
    assert len(requests) == len(responses)
    for request, documented in zip(requests, responses):
        got = rest_predict(fcn["loaded"], request)
        # same keys, shapes, class names and window counts; probabilities in [0, 1] (the documented
        # values come from an untrained model and are not compared)
        _same_structure(got, documented, request["signature_name"])


# --------------------------------------------------------------------------- more architectures
@pytest.mark.parametrize("arch, how", [("xresnet1d18", "max"), ("lstm", "mean")])
def test_export_parity_default_architectures(arch, how, tmp_path, ludb, standardizer, calibration):
    model = build(arch, calibration=calibration)
    sm, ow, orec = export_all(model, tmp_path, standardizer, how, whole_record_onnx=arch == "lstm")
    diffs = parity(model, sm, ow, orec, ludb[:2], standardizer, how)
    assert max(diffs.values()) < TOL, diffs


# --------------------------------------------------------------------------- CLI / run loading
def test_run_task_defaults(fcn, tmp_path, standardizer):
    run = resolve(fcn["run"])
    assert (run.aggregation, run.activation, run.classes) == ("max", "sigmoid", CLASSES)
    cfg = json.loads((fcn["run"] / "config.json").read_text())
    for task, expected in [("age", ("mean", None)), ("sex", ("mean", "sigmoid")), ("rhythm", ("max", "sigmoid"))]:
        run.config = {**cfg, "task": task}
        assert (run.aggregation, run.activation) == expected


def test_cli_errors(tmp_path, capsys):
    from export.__main__ import main

    assert main(["savedmodel", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 1  # was SystemExit("error: ...")
    assert re.search("^error: .*neither a run directory.*nor a released model", capsys.readouterr().err)
    assert main(["release", str(tmp_path), "--name", "x", "--models-dir", str(tmp_path / "m")]) == 1
    assert "config.json is missing" in capsys.readouterr().err


def test_serving_spec_validates():
    with pytest.raises(ValueError, match="aggregation"):
        ServingSpec(classes=("a",), mean=0.0, std=1.0, aggregation="median")
    with pytest.raises(ValueError, match="opset must be >= 17"):
        export_onnx(build("fcn_wang", 1), "x.onnx", classes=["a"], standardizer=Standardizer(0.0, 1.0), opset=13)


# --------------------------------------------------------------------------- every architecture (slow)
@pytest.fixture(scope="module")
def synthetic_300(tmp_path_factory):
    with data_root(make_synthetic(tmp_path_factory, 300)) as path:
        yield path


@pytest.mark.slow
@pytest.mark.parametrize("arch", models.list_models())
def test_export_parity_every_architecture(arch, tmp_path, synthetic_300, ludb):
    """Trained weights (2 short one-cycle epochs on synthetic data), exported from the run directory.

    Parity is measured on trained models, as users export them: untrained deep xresnets (even with
    calibrated BatchNorm statistics) amplify float32 rounding ~100x more (xresnet1d101: eager vs
    graph alone moves them by 2e-5), trained ones stay at ~1e-6.
    """
    run = resolve(train(TrainConfig(task="superdiagnostic", dataset="synthetic", arch=arch, epochs=2, batch_size=32,
                                     seed=0, verbose=0, output=str(tmp_path / "run"))))
    kw = run.export_kwargs()
    assert list(kw["classes"]) == CLASSES
    sm = export_savedmodel(run.model, tmp_path / "serving", **kw)
    ow = export_onnx(run.model, tmp_path / "window.onnx", **kw)
    orec = export_onnx(run.model, tmp_path / "record.onnx", whole_record=True, **kw)
    diffs = parity(run.model, sm, ow, orec, ludb, kw["standardizer"], kw["aggregation"])
    print(f"\nPARITY {arch} " + " ".join(f"{k}={v:.2e}" for k, v in diffs.items()))
    assert max(diffs.values()) < TOL, diffs


def test_onnxruntime_snippet_in_serving_docs_runs(fcn, capsys):
    blocks = re.findall(r"```python\n(.*?)```", serving_section("ONNX Runtime"), flags=re.S)
    assert len(blocks) == 1, f"expected one ```python block in docs/SERVING.md's ONNX Runtime section, found {len(blocks)}"
    (code,) = blocks
    assert len(code.strip().splitlines()) <= 10
    record = shared_path("ludb-1.0.1", "data", "1.hea").with_suffix("")
    code, n = re.subn(r'^MODEL, RECORD = .*$', f'MODEL, RECORD = {str(fcn["record"])!r}, {str(record)!r}', code,
                      flags=re.M)
    assert n == 1
    exec(compile(code, "docs/SERVING.md (ONNX Runtime)", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and all(line.split()[0] in CLASSES for line in lines)
