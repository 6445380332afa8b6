"""Plots and statistics of evaluation results and training summaries.

    from l2o import plot
    plot.compare("conv_train", {"min-max": "results/rnnprop/min-max/1",
                                "adam": "baseline/adam/conv_train.npz"}, "conv_train.png")

``python -m l2o.plot --help`` draws the same figures from the command line.
"""

from l2o.plot.figures import (accepted_rows, boxplot, compare, moving_average, plot_accuracy,
                              plot_band, plot_batch_loss, plot_loss, plot_replicates,
                              plot_training, replicate_curve, stability_figure,
                              training_figure)
from l2o.plot.results import (baseline_path, default_metadata, describe_entry, eval_checkpoints,
                              eval_problems, load_baseline, load_entry, load_eval,
                              load_gridsearch, load_npz, load_replicates, load_training,
                              replicate_dirs, resolve_eval_path, split_evaluated)
from l2o.plot.stats import (at_horizon, eval_stats, meta_stability, replicate_figures,
                             replicate_table, run_figures, stability_summary, stability_table,
                             stats_table, summarize)

__all__ = ["accepted_rows", "boxplot", "compare", "moving_average", "plot_accuracy", "plot_band",
           "plot_batch_loss", "plot_loss", "plot_replicates", "plot_training", "replicate_curve",
           "stability_figure", "training_figure", "baseline_path",
           "default_metadata", "describe_entry", "eval_checkpoints", "eval_problems",
           "load_baseline", "load_entry", "load_eval", "load_gridsearch", "load_npz",
           "load_replicates", "load_training", "replicate_dirs", "resolve_eval_path",
           "split_evaluated",
           "at_horizon", "eval_stats", "meta_stability", "replicate_figures",
           "replicate_table", "run_figures", "stability_summary", "stability_table",
           "stats_table", "summarize"]
