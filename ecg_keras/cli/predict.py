"""``ecg-keras predict MODEL RECORD... [--out FILE] [--plot DIR] [--timeline DIR] ...``: probabilities for
your own ECG records (the work is :mod:`ecg_keras.predict`'s; this module parses and reports)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ecg_keras.cli import command
from ecg_keras.datasets.base import DataError
from ecg_keras.errors import EXIT_FAILURE, UsageError
from ecg_keras.io.records import find_records, record_name
from ecg_keras.predict import (Predictor, check_plot_targets, expand_records, format_table, load_model,
                               plot_hook, plot_names, run_predictions, to_frame, write_output)
from ecg_keras.predict import __doc__ as PREDICT_DOC
from ecg_keras.timeline import SEGMENT_S


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ecg-keras predict", description=PREDICT_DOC.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit status: 0 every record valid; 1 some record invalid (see the "
                                       "'problem' column), or MODEL or an input cannot be read, or an output is "
                                       "in the way; 2 usage error (docs/CLI.md).")
    p.add_argument("model", metavar="MODEL", help="released name, run, release or preset directory, hf://owner/name, "
                   "kaggle://..., SavedModel directory (export savedmodel's --out), .onnx or .tflite file")
    p.add_argument("records", nargs="+", metavar="RECORD",
                   help="WFDB record, .mat, .npy, .csv, DICOM, HL7 aECG/MUSE/Philips XML, SCP, EDF, ISHNE or a folder")
    p.add_argument("--out", metavar="FILE", help="write all rows to FILE.csv or FILE.json")
    p.add_argument("--plot", metavar="DIR", help="one PNG per record on ECG paper, named after the record")
    p.add_argument("--overwrite", action="store_true", help="replace existing plot files in --plot DIR")
    p.add_argument("--explain", action="store_true", help="with --plot: shade the top class's attribution")
    p.add_argument("--explain-method", choices=("ig", "lrp"), default="ig",
                   help="integrated gradients (default) or epsilon-LRP (convolutional models)")
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes shown per record (default 3)")
    p.add_argument("--fs", type=float, metavar="HZ", help="sampling rate of .npy/.csv records")
    p.add_argument("--leads", metavar="I,II,...", help="lead names of .npy/.csv columns (default the standard 12)")
    p.add_argument("--units", default="mV", choices=("mV", "uV", "V"), help="units of .npy/.csv values (default mV)")
    p.add_argument("--models-dir", metavar="DIR",
                   help="where released models live (default: $ECG_KERAS_MODELS_DIR or the package's manifest)")
    p.add_argument("--fill-missing-leads", action="store_true",
                   help="set leads neither recorded nor derivable to zero (flagged in the 'leads' column) instead "
                        "of refusing the record")
    p.add_argument("--timeline", metavar="DIR",
                   help="long recordings: probabilities of every SECONDS-long segment over time, as "
                        "DIR/<record>_timeline.csv and .png (with each class's burden)")
    p.add_argument("--segment", type=float, default=SEGMENT_S, metavar="SECONDS",
                   help=f"segment length of --timeline (default {SEGMENT_S:g} s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


@command
def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    if ns.top < 1:
        raise UsageError("--top must be >= 1")
    if ns.explain and not ns.plot:
        raise UsageError("--explain draws into the plots; pass --plot DIR too")
    if ns.timeline and (ns.out or ns.plot):
        raise UsageError("--timeline writes its own CSV and plot per record; drop --out/--plot")
    if ns.out and Path(ns.out).suffix.lower() not in (".csv", ".json"):
        raise UsageError(f"--out must end in .csv or .json, got {ns.out}")
    if ns.timeline and ns.segment <= 0:
        raise UsageError("--segment must be > 0 seconds")
    model = load_model(ns.model, ns.models_dir)
    todo = expand_records(ns.records)
    hook = (plot_hook(Path(ns.plot), ns.top, ns.explain, ns.explain_method,
                      names=check_plot_targets(ns.plot, todo, ns.overwrite)) if ns.plot else None)
    if ns.out:
        from ecg_keras.files import check_regular

        check_regular(ns.out)
    print(model.describe())
    if ns.timeline:
        return _main_timeline(model, ns)
    # an OSError here is a plot that cannot be written (disk full, a link planted meanwhile)
    model, items = run_predictions(model, todo, fs=ns.fs, leads=ns.leads, units=ns.units,
                                   progress=False if ns.no_progress else None, on_item=hook,
                                   fill_missing_leads=ns.fill_missing_leads)
    frame = to_frame(model, items)
    notes = sorted({n for it in items for n in it.notes} | {f"{it.name}: leads {it.leads}" for it in items if it.leads})
    for n in notes:
        print(f"note: {n}")
    print(format_table(frame, model.classes, ns.top))
    if ns.out:
        print(f"wrote {write_output(frame, Path(ns.out))}")
    if ns.plot:
        n_png = sum(1 for it in items if it.plot is not None)
        print(f"wrote {n_png} plot(s) to {ns.plot}")
    invalid = int((~frame["valid"]).sum())
    if invalid:
        names = [str(r) for r in frame.loc[~frame["valid"], "record"]]
        listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        print(f"error: {invalid} of {len(frame)} record(s) invalid, not predicted: {listed} (reasons above)",
              file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _main_timeline(model: Predictor, ns) -> int:
    from ecg_keras import timeline

    paths = find_records(ns.records)
    failed = 0
    for path in paths:
        name = record_name(path)
        try:
            frame = timeline.timeline(model, path, segment=ns.segment, fill_missing=ns.fill_missing_leads,
                                      progress=not ns.no_progress)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        stem = Path(plot_names([name])[0]).stem
        out = Path(ns.timeline)
        title = f"{name}: {model.name}" + (f" ({model.caution()})" if model.synthetic else "")
        csv_path, png_path = timeline.write(frame, model.classes, out / f"{stem}_timeline.csv",
                                            out / f"{stem}_timeline.png", title, top=ns.top)
        share = timeline.burden(frame, model.classes)
        top = sorted(share, key=lambda c: -np.nan_to_num(share[c]))[:ns.top]
        invalid = int((~frame["valid"]).sum())
        for n in frame.attrs["notes"] + ([f"leads {frame.attrs['leads']}"] if frame.attrs["leads"] else []):
            print(f"note: {name}: {n}")
        print(f"{name}: {len(frame)} segments of {ns.segment:g} s ({invalid} invalid); burden (p >= "
              f"{timeline.THRESHOLD:g}): " + ", ".join(f"{c} {100 * share[c]:.1f}%" for c in top))
        print(f"wrote {csv_path} and {png_path}")
    return EXIT_FAILURE if failed else 0



if __name__ == "__main__":
    sys.exit(main())
