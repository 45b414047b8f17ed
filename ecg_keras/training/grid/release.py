"""Releasing the grid: the best run of every network and task with its model card, SavedModel
and ONNX export into ``DIR/release``, and ``SHA256SUMS`` over the folder."""
from __future__ import annotations

import traceback
from pathlib import Path

from ecg_keras import artefact
from ecg_keras.training.grid.plan import BASELINES, ENSEMBLE


def savedmodel_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file of an exported SavedModel, by relative path."""
    from ecg_keras.zoo import sha256

    return {str(p.relative_to(directory)): sha256(p) for p in sorted(directory.rglob("*")) if p.is_file()}


def exports_ok(release: Path, entry: dict) -> bool:
    """True when a released entry's weights, ONNX file and SavedModel still match their hashes."""
    from ecg_keras.zoo import sha256

    ex = entry.get("exports") or {}
    try:
        onnx, sm = ex["onnx"], ex["savedmodel"]
        if sha256(release / entry["file"]) != entry["sha256"] or sha256(release / onnx["file"]) != onnx["sha256"]:
            return False
        return savedmodel_hashes(release / sm["dir"]) == sm["files"]
    except (KeyError, OSError, TypeError):
        return False


def release_best(out: Path, dataset: str, best: dict, url_base: str | None = None,
                 log=print) -> tuple[list[str], list[dict]]:
    """Release the best run of every network and task into ``DIR/release`` (skipping releases whose
    weights and exports are already there), then write ``SHA256SUMS``. Returns (names, failures)."""
    from ecg_keras import zoo
    from ecg_keras.export import export_onnx, export_savedmodel, release_run
    from ecg_keras.runs import resolve
    from ecg_keras.training import rundir as rd

    release = out / "release"
    names, failures = [], []
    for (task, arch), b in sorted(best.items()):
        if arch in BASELINES or arch == ENSEMBLE:
            continue
        name = f"{dataset}-{task}-{arch}"
        names.append(name)
        manifest = {e["name"]: e for e in zoo.read_manifest(release)} if (release / zoo.MANIFEST).exists() else {}
        old = manifest.get(name)
        if (old and old.get("sha256") == zoo.sha256(rd.RunDir(b["path"]).model) and old.get("seed") == b["seed"]
                and old.get("url_base") == url_base and exports_ok(release, old)):
            continue
        try:
            log(f"release {name} (seed {b['seed']}): weights, model card, SavedModel, ONNX")
            release_run(b["path"], name, models_directory=release, url_base=url_base, overwrite=True)
            run = resolve(b["path"])
            sm = export_savedmodel(run.model, release / "savedmodel", model_name=name, version=1, overwrite=True,
                                   **run.export_kwargs())
            onnx = export_onnx(run.model, release / f"{name}.onnx", **run.export_kwargs())
            entries = zoo.read_manifest(release)
            for e in entries:
                if e["name"] == name:
                    e["seed"] = b["seed"]
                    e["source_run"] = str(Path(b["path"]).relative_to(out))
                    e["exports"] = {"onnx": {"file": onnx.name, "sha256": zoo.sha256(onnx)},
                                    "savedmodel": {"dir": str(sm.relative_to(release)),
                                                   "files": savedmodel_hashes(sm)}}
            artefact.write_manifest(release, entries)
        except Exception as err:  # noqa: BLE001 - one failed release does not stop the others
            failures.append({"what": f"release {name}", "error": f"{type(err).__name__}: {err}"})
            log(traceback.format_exc())
    if release.exists():
        files = sorted(p for p in release.rglob("*") if p.is_file() and p.name != artefact.CHECKSUMS
                       and not p.name.startswith("."))
        rd.write_text(release / artefact.CHECKSUMS, "".join(f"{zoo.sha256(p)}  {p.relative_to(release)}\n" for p in files))
    return names, failures
