"""Release a training run: ``release_run(run_dir, name, models_directory)`` writes the weights,
a model card and a row of the models directory's ``MANIFEST.json`` (read by :mod:`ecg_keras.zoo`;
``ecg-keras export release``).

``validate=[FOLDER, ...]`` scores the run on real labelled folders
(:func:`ecg_keras.evaluation.validation.validate`) and puts the per-class table (AUC, 90 %
bootstrap interval, positives) into the card and the manifest entry (``validation``). The
rule of the package's zoo (:data:`ecg_keras.zoo.RELEASED_DIR`): a run trained on synthetic data
is released there only with such a real-data validation."""
from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

from ecg_keras import artefact, zoo
from ecg_keras.files import atomic_path
from ecg_keras.paths import check_name, sha256
from ecg_keras.preprocessing import WINDOW_SECONDS
from ecg_keras.runs import resolve


def release_run(run_dir: str | Path, name: str, models_directory: str | Path | None = None,
                url_base: str | None = None, overwrite: bool = False, validate: Sequence[str | Path] = (),
                n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Turn a training run directory into a released model: weights, manifest row, model card.

    ``validate``: real labelled folders the run is scored on (``n_bootstrap`` resamples drawn
    with ``seed``); their tables go into the card and the entry's ``validation``. A run trained
    on synthetic data is refused for the package's :data:`ecg_keras.zoo.RELEASED_DIR` without
    one. An existing release of the same name is replaced only with ``overwrite=True``; the
    three files are written to temporary names first, so a failure (e.g. a full disk) leaves
    the previous release intact.
    """
    check_name(name)
    run = resolve(run_dir)
    if run.release:
        raise ValueError(f"{run_dir} is a released model ({run.name}), not a training run directory")
    run.check_complete()
    run_dir, config = run.path, run.config
    target = zoo.models_dir(models_directory)
    metrics = run.metrics
    dataset = str(config.get("dataset_name") or config.get("dataset"))
    synthetic = zoo.is_synthetic(config.get("synthetic"), dataset)
    the_zoo = target.resolve() == zoo.RELEASED_DIR.resolve()
    if the_zoo and not zoo.in_checkout():
        raise ValueError(f"{target} is the installed package's manifest, not a release target: "
                         "pass a models directory (--models-dir DIR)")
    if synthetic and the_zoo and not validate:
        raise ValueError(f"{run_dir} was trained on synthetic data: it is released into {zoo.RELEASED_DIR} only "
                         "with a validation on real labelled records in its card (--validate FOLDER)")
    listed = zoo.read_manifest(target)
    entries = [e for e in listed if e["name"] != name]
    weights_file, card = f"{name}.keras", f"{name}.md"
    if not overwrite and (len(entries) < len(listed) or (target / weights_file).exists()):
        raise FileExistsError(f"{target / weights_file}: a release named {name!r} exists; pass overwrite=True "
                              "(--overwrite) to replace it")
    sampling_rate = run.sampling_rate
    entry = {
        "name": name, "arch": config["arch"], "task": config["task"],
        "classes": run.classes, "standardizer": run.standardizer.to_dict(),
        "sampling_rate": sampling_rate, "window": run.window,
        "training_data": "synthetic" if synthetic else dataset, "synthetic": synthetic,
        "metrics": {split: {k: v for k, v in m.items() if isinstance(v, (int, float))}
                    for split, m in metrics.items() if isinstance(m, dict)},
        "license": ("MIT (the package's licence; generated training data)" if synthetic else "CC-BY-4.0"
                    if "ptbxl" in dataset else config.get("license", "see training data")),
        "file": weights_file, "sha256": None, "card": card,
    }
    if url_base:
        entry["url_base"] = url_base
    if validate:
        from ecg_keras.evaluation.validation import validate as score

        entry["validation"] = [score(run_dir, folder, n_bootstrap=n_bootstrap, seed=seed).to_dict()
                               for folder in validate]
        for v in entry["validation"]:
            v["model"] = name
    with ExitStack() as stack:  # renamed in reverse order of entry: weights, card, manifest last
        manifest_tmp, card_tmp, weights_tmp = (stack.enter_context(atomic_path(target / f))
                                               for f in (artefact.MANIFEST, card, weights_file))
        shutil.copyfile(run.file(artefact.MODEL), weights_tmp)
        entry["sha256"] = sha256(weights_tmp)
        card_tmp.write_text(model_card(entry, config))
        manifest_tmp.write_text(artefact.manifest_text(entries + [entry]))
    return entry


#: What the card of every synthetic-trained release says first.
SYNTHETIC_NOTICE = "Trained on SYNTHETIC ECGs only; not for clinical use."


def _metric(key: str, value) -> str:
    """Counts as integers (``n_records 200``), scores to 4 decimals, anything else (an error) as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (key.startswith("n_") and float(value).is_integer()):
        return str(int(value))
    return f"{value:.4f}"


def validation_section(validations: list[dict]) -> str:
    """The card's "Validation on real ECGs" section: one per-class table per labelled folder."""
    from ecg_keras.evaluation.validation import Validation

    if not validations:
        return ""
    parts = ["## Validation on real ECGs (zero-shot)\n",
             "Per class: ROC AUC on the folder's records, its 90% bootstrap interval (5%/95% quantiles) and "
             "the number of positive records; n/a = no positive record. Labels mapped onto the classes by "
             "`ecg_keras.datasets.labelmap`; reproduce with `ecg-keras evaluate NAME --dataset FOLDER`.\n"]
    for d in validations:
        v = Validation.from_dict(d)
        parts.append(f"### {v.dataset}: {v.n_records} records (labels: {v.labels}; {v.n_bootstrap} resamples, "
                     f"seed {v.seed})\n\n{v.markdown()}\n")
    return "\n".join(parts) + "\n"


def model_card(entry: dict, config: dict) -> str:
    metrics = "\n".join(f"| {split} | {k} | {_metric(k, v)} |" for split, m in entry["metrics"].items()
                        for k, v in m.items())
    warning = (f"\n**{SYNTHETIC_NOTICE}** The training data is ecg_keras' generated PTB-XL-format set; "
               "what the model does on real records is the validation below (if any).\n"
               if entry["synthetic"] else "")
    training = (f"{config.get('epochs', '?')} epochs, batch {config.get('batch_size', '?')}, lr {config.get('lr', '?')}, "
                f"seed {config.get('seed', '?')}" + (f", augmentations {config['augment']}" if config.get("augment") else ""))
    seconds = entry["window"] / entry["sampling_rate"]
    protocol = (" with the PTB-XL benchmark protocol" if seconds == WINDOW_SECONDS
                else f" (not the PTB-XL benchmark protocol's {WINDOW_SECONDS:g}-s windows)")
    return f"""# {entry['name']}
{warning}
- Architecture: `{entry['arch']}`; task: `{entry['task']}` ({len(entry['classes'])} outputs, logits)
- Training data: {entry['training_data']}; sampling rate {entry['sampling_rate']} Hz; window {entry['window']} samples ({seconds:g} s)
- Standardiser: mean {entry['standardizer']['mean']:.6g}, std {entry['standardizer']['std']:.6g} (mV)
- Training: {training}
- Licence: {entry['license']}; sha256 `{entry['sha256']}`

## Metrics ({"the synthetic set's" if entry["synthetic"] else "the training data's"} held-out splits)
| split | metric | value |
|---|---|---|
{metrics}

{validation_section(entry.get("validation", []))}## Intended use
Research on ECG classification{protocol}:
sigmoid(logits) of {seconds:g}-s windows (stride half a window), aggregated per record (max for
statements, mean for age/sex). Not a medical device; not for clinical use.

## Classes
{', '.join(entry['classes'])}
"""
