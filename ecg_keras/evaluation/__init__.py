"""Evaluation of the PTB-XL benchmark: metrics, bootstrap CIs, tables, plots, hierarchy, and
``validate(model, folder)``: any model scored on a real labelled folder.

numpy + pandas at import time (sklearn and matplotlib are imported lazily where used); no TensorFlow.
"""
from .bootstrap import bootstrap_scores, draw_bootstrap_indices, load_indices, save_indices, summarize
from .hierarchy import hierarchy_levels, node_auc_table, propagate
from .metrics import (accuracy, apply_thresholds, auc, challenge_metrics, default_metrics,
                      find_optimal_thresholds, fmax, fmax_curve, healthy_mask, macro_auc, mae,
                      per_class_auc, r2, scores_by_subset, subset_masks)
from .plots import plot_ci_bars, plot_history, plot_roc_curves
from .tables import format_ci, long_table, rank_models, results_table, to_markdown
from .validation import Validation, validate

__all__ = [
    "accuracy", "apply_thresholds", "auc", "bootstrap_scores", "challenge_metrics",
    "default_metrics", "draw_bootstrap_indices", "find_optimal_thresholds", "fmax", "fmax_curve",
    "format_ci", "healthy_mask", "hierarchy_levels", "load_indices", "long_table", "macro_auc",
    "mae", "node_auc_table", "per_class_auc", "plot_ci_bars", "plot_history", "plot_roc_curves",
    "propagate", "r2", "rank_models", "results_table", "save_indices", "scores_by_subset",
    "subset_masks", "summarize", "to_markdown", "validate", "Validation",
]
