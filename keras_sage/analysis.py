"""Looking at searches: per-trial records, a plain-text results table, and plots of P, TG and score.

Example:

```python
records = trial_records(tuner)
print(format_table([{"trial": r.trial_id, "P": r.premature_accuracy, "TG": r.teacher_guidance}
                    for r in records]))
plot_search({"P+TG": records}, "search.png")
```
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keras_sage.objective import similarity_metric_name


@dataclass(frozen=True)
class TrialRecord:
    """What one search trial produced.

    Attributes:
        trial_id: KerasTuner's trial id.
        status: `"COMPLETED"`, `"FAILED"`, ...
        score: P + α·TG (NaN unless completed).
        premature_accuracy: P.
        teacher_guidance: TG.
        similarities: S_i by teacher layer.
        examples_processed: Training examples of the trial's premature training.
        params: The candidate's parameter count.
        flops: The candidate's FLOPs for one image (`keras_sage.count_flops`).
        message: Why the trial failed, if it did (the last line of KerasTuner's message).
    """

    trial_id: str
    status: str
    score: float = math.nan
    premature_accuracy: float = math.nan
    teacher_guidance: float = math.nan
    similarities: dict[str, float] = field(default_factory=dict)
    examples_processed: float = math.nan
    params: float = math.nan
    flops: float = math.nan
    message: str = ""


def trial_records(tuner: Any) -> list[TrialRecord]:
    """The records of a tuner's trials, in the order they started.

    Args:
        tuner: A `SageTuner` (after or during a search).

    Returns:
        One `TrialRecord` per trial.
    """
    oracle = tuner.oracle
    teacher_layers = tuner.objective.teacher_layers
    records = []
    for trial_id in oracle.start_order:
        trial = oracle.trials[trial_id]

        def last(name: str, trial: Any = trial) -> float:
            if not trial.metrics.exists(name):
                return math.nan
            return float(trial.metrics.get_last_value(name))

        message = (trial.message or "").strip().splitlines()
        records.append(
            TrialRecord(
                trial_id=trial_id,
                status=str(trial.status),
                score=last("score"),
                premature_accuracy=last("premature_accuracy"),
                teacher_guidance=last("teacher_guidance"),
                similarities={
                    layer: last(similarity_metric_name(layer))
                    for layer in teacher_layers
                    if trial.metrics.exists(similarity_metric_name(layer))
                },
                examples_processed=last("examples_processed"),
                params=last("params"),
                flops=last("flops"),
                message=message[-1] if message else "",
            )
        )
    return records


def search_summary(name: str, tuner: Any, reranked: Sequence[Any] = ()) -> dict[str, Any]:
    """One row of a comparison table for a finished search (and its reranking).

    Args:
        name: The arm's name (e.g. `"P+TG"`).
        tuner: The `SageTuner` after `search` (and `rerank`).
        reranked: What `tuner.rerank` returned, best first; the first is the arm's winner.

    Returns:
        A dict with the arm, α, the number of trials and failed trials, the best P and best TG among the
        completed trials, the winner's trial id and mature accuracy, and the examples processed during the
        search (M1·E1) and in all (M1·E1 + M2·E2), and the winner's parameters and FLOPs.
    """
    records = trial_records(tuner)
    completed = [record for record in records if record.status == "COMPLETED"]
    winner = reranked[0] if reranked else None
    winner_record = next(
        (record for record in records if winner and record.trial_id == winner.trial_id), None
    )
    winner_params, winner_flops = (
        (winner_record.params, winner_record.flops) if winner_record else (math.nan,) * 2
    )
    return {
        "arm": name,
        "alpha": tuner.alpha,
        "trials": len(records),
        "failed": len(records) - len(completed),
        "best P": max((record.premature_accuracy for record in completed), default=math.nan),
        "best TG": max((record.teacher_guidance for record in completed), default=math.nan),
        "winner": winner.trial_id if winner else "-",
        "winner mature acc": winner.mature_accuracy if winner else math.nan,
        "winner params": _count(winner_params),
        "winner FLOPs": _count(winner_flops),
        "examples (M1·E1)": tuner.search_examples,
        "examples (+M2·E2)": tuner.search_cost(),
    }


def _count(value: float) -> int | float:
    """A count recorded as a float metric, as an int (NaN stays NaN)."""
    return value if math.isnan(value) else int(value)


def best_so_far(values: Sequence[float]) -> np.ndarray:
    """The running maximum of `values`, ignoring NaN (NaN until the first finite value)."""
    values = np.asarray(values, dtype=np.float64)
    filled = np.where(np.isnan(values), -np.inf, values)
    running = np.maximum.accumulate(filled) if len(filled) else filled
    return np.where(np.isneginf(running), np.nan, running)


def format_table(rows: Sequence[Mapping[str, Any]], float_format: str = "{:.4f}") -> str:
    """Formats rows (dicts with the same keys) as an aligned plain-text table.

    Floats use `float_format`; integers get thousands separators; NaN prints as `-`. Columns of numbers
    are right-aligned, others left-aligned.

    Args:
        rows: The rows; the first row's keys are the columns.
        float_format: Format of float cells.

    Returns:
        The table, one line per row after a header and a rule.
    """
    if not rows:
        return ""
    columns = list(rows[0])

    def cell(value: Any) -> str:
        if isinstance(value, (bool, np.bool_)):
            return str(value)
        if isinstance(value, (int, np.integer)):
            return f"{int(value):,}"
        if isinstance(value, (float, np.floating)):
            return "-" if math.isnan(value) else float_format.format(value)
        return str(value)

    cells = [[cell(row[column]) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    numeric = [
        all(isinstance(row[column], (int, float, np.integer, np.floating)) for row in rows)
        for column in columns
    ]

    def join(texts: Sequence[str]) -> str:
        return "  ".join(
            text.rjust(width) if right else text.ljust(width)
            for text, width, right in zip(texts, widths, numeric, strict=True)
        ).rstrip()

    lines = [join(columns), join(["-" * width for width in widths])]
    lines.extend(join(line) for line in cells)
    return "\n".join(lines)


def plot_search(arms: Mapping[str, Sequence[TrialRecord]], path: str | os.PathLike) -> str:
    """Draws searches side by side and saves the figure (matplotlib, Agg backend).

    Left: P against TG of every completed trial, one colour per arm. Right: each arm's P per trial and the
    best P so far (P is on the same scale in every arm, unlike each arm's score P + α·TG).

    Args:
        arms: Records by arm name (e.g. `{"P+TG": ..., "P": ...}`).
        path: The image file to write (format from its suffix, e.g. `.png`).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (scatter_axes, progress_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
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
    figure.tight_layout()
    path = os.fspath(path)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
