"""ecg-keras export savedmodel|onnx|litert|release|from-torch — export a trained run for serving.

Also ``python -m ecg_keras export`` and, in a checkout, ``python -m export``.

    ecg-keras export savedmodel RUN_DIR --out serving [--model-name ecg] [--version 1]
        -> serving/ecg/1/{saved_model.pb, variables/, assets/}   (TF Serving layout)
    ecg-keras export onnx RUN_DIR --out model.onnx [--whole-record] [--opset 17]
    ecg-keras export litert RUN_DIR --out model.tflite [--quantize float16|dynamic|int8 --calibration DIR]
        [--whole-record] [--overwrite]
    ecg-keras export release RUN_DIR --name NAME [--models-dir DIR] [--url-base URL] [--validate FOLDER ...]
        -> DIR/<name>.keras, DIR/<name>.md (model card), a row in DIR/MANIFEST.json (default DIR: the zoo, models/)
    ecg-keras export from-torch CHECKPOINT --arch ARCH --task TASK --out RUN_DIR --standardizer standard_scaler.pkl
        -> a run directory from the reference's PyTorch checkpoint (ecg_keras.export.from_torch)

RUN_DIR is a training run directory (config.json, classes.json, standardizer.json, model.keras);
savedmodel/onnx/litert also take a release directory or the name of a released model
(``ecg_keras.list_pretrained()``, ``--models-dir DIR``), read by :func:`ecg_keras.runs.resolve`.
See "Export and serving" in README.md for serving the artifacts.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from pathlib import Path

from ecg_keras.cli import command
from ecg_keras.errors import UsageError


def add_source_arguments(parser) -> None:
    """``SOURCE`` and ``--models-dir`` (the one spelling of the models folder on a command line):
    what :func:`resolve` takes, for a command's argparse parser."""
    parser.add_argument("source", metavar="RUN_DIR_OR_RELEASE",
                        help="a run directory, a release directory or the name of a released model")
    parser.add_argument("--models-dir", default=None, metavar="DIR",
                        help="models directory of released names (default: $ECG_KERAS_MODELS_DIR or the "
                             "package's manifest)")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _load(args):
    from ecg_keras.runs import resolve

    return resolve(args.source, args.models_dir).check_complete()


def _limits(args) -> dict:
    return {} if args.max_record_seconds is None else {"max_record_seconds": args.max_record_seconds}


def cmd_savedmodel(args) -> int:
    from ecg_keras.export import export_savedmodel
    from ecg_keras.export.files import check_target

    # before loading the model; the message names the CLI flag
    check_target(Path(args.out) / args.model_name / str(args.version), args.overwrite,
                 "pass --overwrite to replace it, or choose another --version")
    run = _load(args)
    start = time.perf_counter()
    out = export_savedmodel(run.model, args.out, model_name=args.model_name, version=args.version,
                            overwrite=args.overwrite, **_limits(args), **run.export_kwargs())
    seconds = time.perf_counter() - start
    print(f"SavedModel: {out} ({_size(out) / 1e6:.1f} MB, {seconds:.1f} s); signatures serving_default, "
          f"predict_record, predict_record_padded; {len(run.classes)} classes, {run.sampling_rate} Hz, "
          f"aggregation {run.aggregation}")
    return 0


def cmd_onnx(args) -> int:
    from ecg_keras.export import export_onnx
    from ecg_keras.export.files import check_target

    check_target(args.out, args.overwrite, "pass --overwrite to replace it")
    run = _load(args)
    start = time.perf_counter()
    out = export_onnx(run.model, args.out, whole_record=args.whole_record, opset=args.opset, overwrite=args.overwrite,
                      **_limits(args), **run.export_kwargs())
    seconds = time.perf_counter() - start
    kind = "whole-record" if args.whole_record else "window"
    print(f"ONNX ({kind} model, opset {args.opset}): {out} ({_size(out) / 1e6:.1f} MB, {seconds:.1f} s)")
    return 0


def cmd_release(args) -> int:
    from ecg_keras.export.release import release_run
    from ecg_keras.zoo import models_dir

    # a failure (a full disk included) leaves the previous release intact
    entry = release_run(args.run_dir, args.name, models_directory=args.models_dir, url_base=args.url_base,
                        overwrite=args.overwrite, validate=args.validate, n_bootstrap=args.bootstrap)
    target = models_dir(args.models_dir)
    if entry.get("validation"):
        from ecg_keras.evaluation.validation import Validation

        for v in entry["validation"]:
            print(Validation.from_dict(v).format())
    print(f"released {entry['name']}: {target / entry['file']} (sha256 {entry['sha256'][:12]}...), "
          f"card {target / entry['card']}, manifest {target / 'MANIFEST.json'}")
    return 0


# --------------------------------------------------------------------------- from-torch
def add_from_torch(sub) -> None:
    """``from-torch``: a run directory from the reference's PyTorch checkpoint (:mod:`ecg_keras.export.from_torch`)."""
    from ecg_keras.export.from_torch import ARCHS, DEFAULT_TOLERANCE, __doc__ as doc

    p = sub.add_parser("from-torch", help="import a PyTorch checkpoint of the benchmark's reference code as a run",
                       description=doc.split("\n\n")[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help=".npz of state-dict tensors, or .pth/.pt (needs torch)")
    p.add_argument("--arch", required=True, choices=ARCHS, metavar="ARCH", help=", ".join(ARCHS))
    p.add_argument("--task", required=True, help="task the checkpoint was trained on (all, diagnostic, ...)")
    p.add_argument("--out", required=True, type=Path, help="run directory to create")
    p.add_argument("--classes", help="class names in output order: mlb.pkl, a JSON list or one per line "
                                     "(default: the task's PTB-XL classes, sorted as the reference)")
    p.add_argument("--standardizer", metavar="standard_scaler.pkl", help="the reference's scalar StandardScaler")
    p.add_argument("--mean", type=float, help="standardiser mean (with --std; instead of --standardizer)")
    p.add_argument("--std", type=float, help="standardiser std")
    p.add_argument("--dataset", default="ptbxl", help="training data named in config.json (default ptbxl)")
    p.add_argument("--check", metavar="DATA_DIR", help="PTB-XL root: predict the test fold and compare with --expect")
    p.add_argument("--expect", metavar="y_test_pred.npy", help="the reference's test-fold predictions")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"largest max |diff| --check accepts (default {DEFAULT_TOLERANCE:g})")
    p.set_defaults(func=cmd_from_torch)


def cmd_from_torch(args) -> int:
    from ecg_keras.export.files import ExportError
    from ecg_keras.export.from_torch import ConversionError, convert, read_classes, read_standard_scaler
    from ecg_keras.standardize import Standardizer

    if args.standardizer and (args.mean is not None or args.std is not None):
        raise UsageError("pass either --standardizer or --mean/--std, not both")
    if (args.check is None) != (args.expect is None):
        raise UsageError("--check DATA_DIR and --expect y_test_pred.npy go together")
    if not args.standardizer and (args.mean is None or args.std is None):
        raise UsageError("a standardiser is needed: --standardizer standard_scaler.pkl, or --mean M --std S")
    try:
        if args.standardizer:
            st = read_standard_scaler(args.standardizer)
        else:
            try:
                st = Standardizer(mean=args.mean, std=args.std)
            except ValueError as e:
                raise ConversionError(f"--mean/--std: {e}") from None
        classes = read_classes(args.classes) if args.classes else None
        convert(args.checkpoint, args.arch, args.task, args.out, standardizer=st, classes=classes,
                dataset=args.dataset, check=(args.check, args.expect) if args.check else None,
                tolerance=args.tolerance)
    except (ConversionError, ExportError, OSError, zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConversionError(" ".join(str(e).split())) from None  # one line (pickle and zip messages span several)
    return 0


# --------------------------------------------------------------------------- litert
def add_litert(subparsers):
    """``litert``: a LiteRT / TensorFlow Lite model (:mod:`ecg_keras.export.litert`)."""
    p = subparsers.add_parser("litert", help="LiteRT / TensorFlow Lite model for devices (raw mV in, probabilities out)")
    add_source_arguments(p)
    p.add_argument("--out", required=True, type=Path, help="output .tflite file")
    p.add_argument("--quantize", choices=["float16", "dynamic", "int8"], default=None,
                   help="weights float16 | int8 weights (dynamic range) | int8 weights and activations (--calibration)")
    p.add_argument("--calibration", default=None,
                   help="folder of records for --quantize int8 (any dataset ecg_keras.datasets.load reads, e.g. LUDB)")
    p.add_argument("--whole-record", action="store_true",
                   help="export the whole-record model (sliding windows + aggregation in the graph)")
    p.add_argument("--record-seconds", type=float, default=None,
                   help="with --whole-record: fixed record length in seconds (default: dynamic length)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_litert)
    return p


def cmd_litert(args) -> int:
    from ecg_keras.export.files import check_target
    from ecg_keras.export.litert import export_litert

    if args.quantize == "int8" and not args.calibration:
        raise UsageError("--quantize int8 needs --calibration DIR (a folder of records, e.g. LUDB)")
    if args.calibration and args.quantize != "int8":
        raise UsageError("--calibration is only used with --quantize int8")
    check_target(args.out, args.overwrite, "pass --overwrite to replace it")
    run_ = _load(args)
    start = time.perf_counter()
    out = export_litert(run_.model, args.out, whole_record=args.whole_record, record_seconds=args.record_seconds,
                        quantize=args.quantize, calibration=args.calibration, overwrite=args.overwrite,
                        **run_.export_kwargs())
    seconds = time.perf_counter() - start
    kind = "whole-record" if args.whole_record else "window"
    print(f"LiteRT ({kind} model, {args.quantize or 'float32'}): {out} ({out.stat().st_size / 1e6:.2f} MB, "
          f"{seconds:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecg-keras export", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sm = sub.add_parser("savedmodel", help="SavedModel in TF Serving's layout <out>/<model-name>/<version>/")
    add_source_arguments(sm)
    sm.add_argument("--out", required=True, help="model base directory (TF Serving's --model_base_path parent)")
    sm.add_argument("--model-name", default="ecg", help="model name (sub-directory and TF Serving MODEL_NAME)")
    sm.add_argument("--version", type=int, default=1, help="positive integer version directory")
    sm.add_argument("--overwrite", action="store_true", help="replace an existing version directory")
    sm.add_argument("--max-record-seconds", type=float, default=None,
                    help="longest record the whole-record signatures accept (default 86400 s = 24 h)")
    sm.set_defaults(func=cmd_savedmodel)

    ox = sub.add_parser("onnx", help="ONNX model (raw mV in, probabilities out)")
    add_source_arguments(ox)
    ox.add_argument("--out", required=True, type=Path, help="output .onnx file")
    ox.add_argument("--whole-record", action="store_true",
                    help="export the whole-record model (sliding windows + aggregation in the graph)")
    ox.add_argument("--opset", type=int, default=17)
    ox.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    ox.add_argument("--max-record-seconds", type=float, default=None,
                    help="whole-record model: longer records get valid = false (default 86400 s = 24 h)")
    ox.set_defaults(func=cmd_onnx)

    rel = sub.add_parser("release", help="turn a run into a models/ entry: weights, manifest row, model card")
    rel.add_argument("run_dir", metavar="RUN_DIR")
    rel.add_argument("--name", required=True, help="release name (file stem and manifest key)")
    rel.add_argument("--models-dir", default=None,
                     help="target directory (default: $ECG_KERAS_MODELS_DIR or the package's zoo, the checkout's "
                          "models/; runs on synthetic data go there only with --validate)")
    rel.add_argument("--validate", metavar="FOLDER", action="append", default=[],
                     help="score the run on this real labelled folder (LUDB, CinC '# Dx:' headers or labels.csv; "
                          "repeatable) and put the per-class AUC table into the card and manifest")
    rel.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                     help="--validate: bootstrap resamples of the 90%% intervals (default 1000)")
    rel.add_argument("--url-base", default=None, help="base URL the weights will be served from")
    rel.add_argument("--overwrite", action="store_true", help="replace an existing release of the same name")
    rel.set_defaults(func=cmd_release)

    add_from_torch(sub)
    add_litert(sub)
    return parser


@command
def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FileExistsError as err:  # a race with another writer after the early check: name the flag
        if "pass overwrite=True" not in str(err):
            raise
        raise FileExistsError(str(err).replace("pass overwrite=True", "pass --overwrite")) from None


if __name__ == "__main__":
    sys.exit(main())
