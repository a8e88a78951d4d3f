"""The records of a search: one `TrialRecord` per trial, a summary row per arm, the best score so far."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from keras_sage import contract


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
    teacher_layers = tuner.scorer.teacher_layers
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
                score=last(contract.SCORE),
                premature_accuracy=last(contract.PREMATURE_ACCURACY),
                teacher_guidance=last(contract.TEACHER_GUIDANCE),
                similarities={
                    layer: last(contract.similarity_metric_name(layer))
                    for layer in teacher_layers
                    if trial.metrics.exists(contract.similarity_metric_name(layer))
                },
                examples_processed=last(contract.EXAMPLES_PROCESSED),
                params=last(contract.PARAMS),
                flops=last(contract.FLOPS),
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


def best_so_far(values: Sequence[float]) -> npt.NDArray[np.float64]:
    """The running maximum of `values`, ignoring NaN (NaN until the first finite value)."""
    array = np.asarray(values, dtype=np.float64)
    filled = np.where(np.isnan(array), -np.inf, array)
    running = np.maximum.accumulate(filled) if len(filled) else filled
    return np.where(np.isneginf(running), np.nan, running)
