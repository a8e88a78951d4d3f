"""Figures of searches and pools, drawn on `matplotlib.figure.Figure` objects.

No function here touches pyplot's global state or switches the process's backend: each figure is its own
object, rendered by the Agg canvas into a file, so plotting from a notebook leaves the notebook's own
plots and backend alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_sage.analysis.records import TrialRecord, best_so_far


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
    """Lays out and writes `figure` (format from the suffix: `.png`, `.svg`, ...); returns the path."""
    figure.tight_layout()
    path = os.fspath(path)
    figure.savefig(path, dpi=120)
    return path
