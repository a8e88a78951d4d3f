"""Figures of searches and pools, drawn on `matplotlib.figure.Figure` objects.

No function here touches pyplot's global state or switches the process's backend: each figure is its own
object, rendered by the Agg canvas into a file, so plotting from a notebook leaves the notebook's own
plots and backend alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import scipy.stats
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_sage import contract
from keras_sage._atomic import write_atomically
from keras_sage.analysis.pool import MATURE_ACCURACY, TG_LABELS, TG_UNTRAINED
from keras_sage.analysis.predictors import (
    GUIDANCE,
    PREMATURE,
    alpha_of_predictor,
    column,
    combined_predictor_name,
    rows_at_budget,
)
from keras_sage.analysis.records import TrialRecord, best_so_far
from keras_sage.analysis.search_replay import ReplayResult
from keras_sage.score import combined_score

# The formats each figure of a pool is written in: a raster for reports, a vector for papers.
FIGURE_FORMATS = ("png", "svg")


def plot_search(arms: Mapping[str, Sequence[TrialRecord]], path: str | os.PathLike[str]) -> str:
    """Draws searches side by side and saves the figure (a standalone Agg figure; pyplot is not touched).

    Left: P against TG of every completed trial, one colour per arm. Right: each arm's P per trial and the
    best P so far (P is on the same scale in every arm, unlike each arm's score P + α·TG).

    Args:
        arms: Records by arm name (e.g. `{"P+TG": ..., "P": ...}`).
        path: The image file to write (format from its suffix, e.g. `.png`).

    Returns:
        The path written.
    """
    figure = new_figure((11, 4.2))
    scatter_axes, progress_axes = figure.subplots(1, 2)
    for name, records in arms.items():
        completed = [record for record in records if record.status == "COMPLETED"]
        scatter_axes.scatter(
            [record.teacher_guidance for record in completed],
            [record.premature_accuracy for record in completed],
            label=name,
            alpha=0.75,
        )
        numbers = np.arange(1, len(records) + 1)
        accuracies = [record.premature_accuracy for record in records]
        (line,) = progress_axes.plot(numbers, accuracies, "o", alpha=0.5, label=f"{name}: P")
        progress_axes.plot(
            numbers, best_so_far(accuracies), "-", color=line.get_color(), label=f"{name}: best P so far"
        )
    scatter_axes.set_xlabel("teacher guidance TG (premature)")
    scatter_axes.set_ylabel("premature accuracy P")
    scatter_axes.set_title("Candidates")
    scatter_axes.legend()
    progress_axes.set_xlabel("trial")
    progress_axes.set_ylabel("premature accuracy P")
    progress_axes.set_title("Search progress")
    progress_axes.legend(fontsize="small")
    return save_figure(figure, path)


def new_figure(size: tuple[float, float]) -> Figure:
    """A matplotlib `Figure` with its own Agg canvas, outside pyplot (no global state, no backend switch)."""
    figure = Figure(figsize=size)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | os.PathLike[str]) -> str:
    """Lays out and writes `figure` atomically (format from the suffix: `.png`, `.svg`, ...); returns the
    path.

    The same figure gives the same bytes: no date in the file's metadata, and SVG element ids drawn from
    a fixed salt (pyplot's settings are changed only for the write, and restored).
    """
    figure.tight_layout()
    path = os.fspath(path)
    image_format = os.path.splitext(path)[1][1:].lower() or None
    metadata = {"Date": None} if image_format in ("svg", "pdf", "eps", "ps") else None
    with matplotlib.rc_context({"svg.hashsalt": "keras-sage"}):
        write_atomically(
            path, lambda file: figure.savefig(file, format=image_format, dpi=120, metadata=metadata)
        )
    return path


def save_figure_formats(
    figure: Figure, path: str | os.PathLike[str], formats: Sequence[str] = FIGURE_FORMATS
) -> tuple[str, ...]:
    """Writes `figure` once per format: `path` with each format's suffix (a suffix of one of the formats
    that `path` has already is replaced, e.g. `fig.png` and `fig` both give `fig.png` and `fig.svg`).

    Returns:
        The paths written, in the order of `formats`.
    """
    stem, suffix = os.path.splitext(os.fspath(path))
    if suffix[1:].lower() not in formats:
        stem += suffix
    return tuple(save_figure(figure, f"{stem}.{image_format}") for image_format in formats)


def plot_predictivity(
    rows: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    predictors: Sequence[str] | None = None,
    alpha: float = 1.0,
) -> tuple[str, ...]:
    """Correlation with mature accuracy against budget, per predictor, with its CI band (Fig. 3-bottom).

    Args:
        rows: Rows of `keras_sage.analysis.predictors`.
        path: Where to write, as `save_figure_formats` reads it (`.png` and `.svg`).
        predictors: The predictors to draw, in legend order; by default every predictor that is no
            combination P + α·(...), and `P+{alpha:g}TG`.
        alpha: The α of the combined predictor drawn by default.

    Returns:
        The paths written.

    Example:

    ```python
    plot_predictivity(predictivity(pool), "figures/predictivity", predictors=["P", "TG", "P+1TG"])
    ```
    """
    names = list(dict.fromkeys(row["predictor"] for row in rows))
    if predictors is None:
        predictors = [name for name in names if not _is_combined(name)]
        predictors += [name for name in names if name == combined_predictor_name(alpha)]
    figure = new_figure((8, 4.8))
    axes = figure.subplots()
    colours = _colours(len(predictors), "tab20" if len(predictors) > 10 else "tab10")
    for name, colour in zip(predictors, colours, strict=True):
        own = sorted((row for row in rows if row["predictor"] == name), key=lambda row: row["budget"])
        budgets = [row["budget"] for row in own]
        axes.plot(budgets, [row["r"] for row in own], "o-", color=colour, label=name)
        axes.fill_between(
            budgets, [row["ci_low"] for row in own], [row["ci_high"] for row in own], color=colour, alpha=0.1
        )
    _log_scale_if_wide(axes, [row["budget"] for row in rows])
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_xlabel("premature budget (SGD steps)")
    axes.set_ylabel("correlation with mature accuracy")
    axes.set_title("Predicting mature accuracy (95% CI, architectures resampled)")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_figure_formats(figure, path)


def plot_alpha_sweep(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, guidance: str = GUIDANCE
) -> tuple[str, ...]:
    """Correlation of P + α·TG with mature accuracy against α, one line per budget, with CI bands (Fig. 2).

    Args:
        rows: Rows of `keras_sage.analysis.predictors`.
        path: Where to write, as `save_figure_formats` reads it (`.png` and `.svg`).
        guidance: The guidance column of the combination (`"TG"`, or a control such as `"TG_untrained"`).

    Returns:
        The paths written.

    Example:

    ```python
    plot_alpha_sweep(predictivity(pool), "figures/alpha")
    ```
    """
    combined = [
        (alpha, row) for row in rows if (alpha := alpha_of_predictor(row["predictor"], guidance)) is not None
    ]
    budgets = sorted({row["budget"] for _, row in combined})
    figure = new_figure((7, 4.5))
    axes = figure.subplots()
    for budget, colour in zip(budgets, _colours(len(budgets), "viridis"), strict=True):
        own = sorted((pair for pair in combined if pair[1]["budget"] == budget), key=lambda pair: pair[0])
        alphas = [alpha for alpha, _ in own]
        values = {key: [row[key] for _, row in own] for key in ("r", "ci_low", "ci_high")}
        axes.plot(alphas, values["r"], "o-", color=colour, label=f"budget {budget}")
        axes.fill_between(alphas, values["ci_low"], values["ci_high"], color=colour, alpha=0.15)
    positive = [alpha for alpha, _ in combined if alpha > 0]
    if positive:
        axes.set_xscale("symlog", linthresh=min(positive))
    axes.set_xlabel(f"α (score P + α·{guidance})")
    axes.set_ylabel("correlation with mature accuracy")
    axes.set_title(f"Effect of the {guidance} weight α (95% CI, architectures resampled)")
    axes.legend(fontsize="small")
    return save_figure_formats(figure, path)


def plot_predictor_scatter(
    pool: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, budget: int, alpha: float = 1.0
) -> tuple[str, ...]:
    """Mature accuracy against P and against P + α·TG at one budget, one point per architecture (Fig. 3-top).

    Each panel leaves out the architectures missing a value it draws, and gives Spearman's r of the rest.

    Args:
        pool: The pool's rows.
        path: Where to write, as `save_figure_formats` reads it (`.png` and `.svg`).
        budget: The premature budget (SGD steps).
        alpha: The α of P + α·TG.

    Returns:
        The paths written.

    Example:

    ```python
    plot_predictor_scatter(pool, "figures/scatter", budget=200, alpha=1.0)
    ```
    """
    rows = rows_at_budget(pool, budget)
    premature = column(rows, contract.PREMATURE_ACCURACY)
    combined = combined_score(premature, column(rows, contract.TEACHER_GUIDANCE), alpha)
    mature = column(rows, MATURE_ACCURACY)
    figure = new_figure((9, 4.2))
    for axes, values, name in zip(
        figure.subplots(1, 2, sharey=True),
        (premature, combined),
        (PREMATURE, combined_predictor_name(alpha)),
        strict=True,
    ):
        drawn = np.isfinite(values) & np.isfinite(mature)
        axes.scatter(values[drawn], mature[drawn], alpha=0.75)
        r = scipy.stats.spearmanr(values[drawn], mature[drawn]).statistic if drawn.sum() >= 3 else math.nan
        axes.set_title(f"{name}: Spearman r = {r:.2f} (n = {int(drawn.sum())})")
        axes.set_xlabel(f"{name} at budget {budget}")
    figure.axes[0].set_ylabel("mature accuracy")
    return save_figure_formats(figure, path)


def plot_replay(curve: Sequence[ReplayResult], path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Best mature accuracy against examples processed for replayed searches (Fig. 4-right).

    One line per score and budget (colour: budget; dashed: P, solid: P + α·TG), with the band of the
    2.5th-97.5th percentiles over searches. To draw fewer lines, pass only some of the curve's points
    (e.g. those of two budgets).

    Args:
        curve: Results of `keras_sage.analysis.replay_curve`.
        path: Where to write, as `save_figure_formats` reads it (`.png` and `.svg`).

    Returns:
        The paths written.

    Example:

    ```python
    plot_replay(replay_curve(pool, [100, 400], alpha=1.0, trials_grid=range(1, 41)), "figures/replay")
    ```
    """
    budgets = sorted({point.budget for point in curve})
    colours = dict(zip(budgets, _colours(len(budgets), "viridis"), strict=True))
    figure = new_figure((8, 4.8))
    axes = figure.subplots()
    for alpha, budget in dict.fromkeys((point.alpha, point.budget) for point in curve):
        own = sorted(
            (point for point in curve if (point.alpha, point.budget) == (alpha, budget)),
            key=lambda point: point.examples_processed,
        )
        examples = [point.examples_processed for point in own]
        name = PREMATURE if alpha == 0 else combined_predictor_name(alpha)
        axes.plot(
            examples,
            [point.mean_best_mature_accuracy for point in own],
            "--" if alpha == 0 else "-",
            color=colours[budget],
            label=f"{name}, budget {budget}",
        )
        axes.fill_between(
            examples,
            [point.ci_low for point in own],
            [point.ci_high for point in own],
            color=colours[budget],
            alpha=0.07,
            linewidth=0,
        )
    axes.set_xscale("log")
    axes.set_xlabel("examples processed (trials × examples per trial)")
    axes.set_ylabel("mature accuracy of the best architecture")
    axes.set_title("Random search replayed on the pool")
    axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save_figure_formats(figure, path)


def _is_combined(name: str) -> bool:
    """Whether a predictor of `predictivity` is a combination P + α·(TG or a TG control)."""
    return any(
        alpha_of_predictor(name, guidance) is not None for guidance in (GUIDANCE, TG_UNTRAINED, TG_LABELS)
    )


def _colours(count: int, colormap: str) -> list[Any]:
    """`count` colours of a matplotlib colormap, spread over it."""
    palette = matplotlib.colormaps[colormap]
    if palette.N < 256:
        return [palette(position % palette.N) for position in range(count)]
    return [palette(position) for position in np.linspace(0.0, 0.9, max(count, 1))[:count]]


def _log_scale_if_wide(axes: Any, values: Sequence[float]) -> None:
    """A log x axis when the positive `values` span a factor of 10 or more."""
    if values and min(values) > 0 and max(values) >= 10 * min(values):
        axes.set_xscale("log")
