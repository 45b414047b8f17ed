"""The paper's published results, as data, to print beside ours.

Strodthoff, Wagner, Schaeffter, Samek, "Deep Learning for ECG Analysis: Benchmarks and Insights
from PTB-XL", IEEE JBHI 25(5), 2021 (arXiv:2004.13701). Values are the test-fold macro AUCs at
100 Hz of the paper's Table II (PTB-XL, six statement tasks) and of its ICBEB2018 from-scratch
experiment, as restated in docs/PROTOCOL.md ("Published results to beat"). Only macro AUC is
recorded here: the other metrics are printed without a paper value.

Keys are ecg_keras model names (``wavelet_nn`` is the paper's "Wavelet+NN").
"""
from __future__ import annotations

from ecg_keras import tasks

CITATION = ("Strodthoff et al., Deep Learning for ECG Analysis: Benchmarks and Insights from PTB-XL, "
            "IEEE JBHI 2021, Table II (PTB-XL) and the ICBEB2018 table")

#: How the paper names the models that ecg_keras names differently.
DISPLAY_NAMES = {"wavelet_nn": "Wavelet+NN"}

#: The published keys (``Task.published``) of Table II's columns, in its order (``Task.table``).
_PTBXL_TASKS = tuple(tasks.get(t).published for t in tasks.table_tasks())
_ICBEB_TASKS = tuple(tasks.get(t).published for t in tasks.label_tasks("icbeb2018"))
_PTBXL_ROWS = {  # model: macro AUC per task, in the order of _PTBXL_TASKS
    "inception1d": (0.925, 0.931, 0.930, 0.921, 0.899, 0.953),
    "xresnet1d101": (0.925, 0.937, 0.929, 0.928, 0.896, 0.957),
    "resnet1d_wang": (0.919, 0.936, 0.928, 0.930, 0.880, 0.946),
    "fcn_wang": (0.918, 0.926, 0.927, 0.925, 0.869, 0.931),
    "lstm_bidir": (0.914, 0.932, 0.923, 0.921, 0.876, 0.949),
    "lstm": (0.907, 0.927, 0.928, 0.927, 0.851, 0.953),
    "wavelet_nn": (0.849, 0.855, 0.859, 0.874, 0.757, 0.890),
    "ensemble": (0.929, 0.939, 0.933, 0.934, 0.907, 0.965),
    "naive": (0.500, 0.500, 0.500, 0.500, 0.500, 0.500),
}
_ICBEB_ALL = {"xresnet1d101": 0.974, "resnet1d_wang": 0.969, "inception1d": 0.963, "lstm": 0.964,
              "fcn_wang": 0.957, "wavelet_nn": 0.905, "ensemble": 0.975}

#: ``PAPER_MACRO_AUC[dataset][model][task]``; ``dataset`` is "ptbxl" or "icbeb2018".
PAPER_MACRO_AUC: dict[str, dict[str, dict[str, float]]] = {
    "ptbxl": {m: dict(zip(_PTBXL_TASKS, v)) for m, v in _PTBXL_ROWS.items()},
    "icbeb2018": {m: dict(zip(_ICBEB_TASKS, (v,))) for m, v in _ICBEB_ALL.items()},
}

#: The data the paper's numbers of each of our datasets are for (the synthetic set has none).
PAPER_DATA = {"ptbxl": "ptbxl", "icbeb2018": "icbeb2018", "synthetic": "ptbxl"}


def paper_value(dataset: str, model: str, task: str, metric: str = "macro_auc") -> float | None:
    """The paper's value for this cell, or None. Synthetic runs are compared with PTB-XL's numbers."""
    spec = tasks.find(task)
    if metric != "macro_auc" or spec is None or spec.published is None:
        return None
    return PAPER_MACRO_AUC.get(PAPER_DATA.get(dataset, ""), {}).get(model, {}).get(spec.published)


def display_name(model: str) -> str:
    return DISPLAY_NAMES.get(model, model)
