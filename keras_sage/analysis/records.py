"""The records of a search: one `TrialRecord` per trial, a summary row per arm, the best score so far."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from keras_sage import contract, project_files
from keras_sage.dominance import non_dominated

# search_summary's columns that other modules read (keras_sage.analysis.search_comparison).
WINNER_MATURE_ACCURACY = "winner mature acc"
TOP_SCORE_MATURE_ACCURACY = "top-score mature acc"
SEARCH_EXAMPLES = "examples (M1·E1)"
FRONT = "P-TG front"


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
        teacher_version: The teacher file's version that scored the trial (0 unless a teacher schedule,
            `keras_sage.Bootstrap`, replaced the teacher; NaN for trials recorded before versions existed).
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
    teacher_version: float = math.nan
    message: str = ""


def record_from_trial_state(state: Mapping[str, Any]) -> TrialRecord:
    """The record of one trial from its state: KerasTuner's `Trial.get_state()`, as `trial.json` holds it.

    Args:
        state: The trial's state (`trial_id`, `status`, `metrics`, `message`).

    Returns:
        The trial's `TrialRecord`; metrics it lacks are NaN, S_i are those of its `S_<layer>` metrics.
    """
    metrics = state.get("metrics", {}).get("metrics", {})

    def last(name: str) -> float:
        observations = metrics.get(name, {}).get("observations", [])
        return float(observations[-1]["value"][0]) if observations else math.nan

    similarities = {
        layer: last(name) for name in metrics if (layer := contract.teacher_layer_of_metric(name)) is not None
    }
    message = (state.get("message") or "").strip().splitlines()
    return TrialRecord(
        trial_id=str(state["trial_id"]),
        status=str(state.get("status")),
        score=last(contract.SCORE),
        premature_accuracy=last(contract.PREMATURE_ACCURACY),
        teacher_guidance=last(contract.TEACHER_GUIDANCE),
        similarities=similarities,
        examples_processed=last(contract.EXAMPLES_PROCESSED),
        params=last(contract.PARAMS),
        flops=last(contract.FLOPS),
        teacher_version=last(contract.TEACHER_VERSION),
        message=message[-1] if message else "",
    )


def front_trial_ids(records: Sequence[TrialRecord]) -> list[str]:
    """The completed trials on the Pareto front of P and TG (no other completed trial has a P and a TG at
    least as high, one of them higher), in the order given.

    Args:
        records: A search's trial records.

    Returns:
        Their trial ids.
    """
    scored = [
        record
        for record in records
        if record.status == "COMPLETED"
        and math.isfinite(record.premature_accuracy)
        and math.isfinite(record.teacher_guidance)
    ]
    points = np.array([[record.premature_accuracy, record.teacher_guidance] for record in scored])
    return [scored[index].trial_id for index in non_dominated(points.reshape(len(scored), 2))]


def trial_records(tuner: Any) -> list[TrialRecord]:
    """The records of a tuner's trials, in the order they started.

    Args:
        tuner: A `SageTuner` (after or during a search).

    Returns:
        One `TrialRecord` per trial.
    """
    oracle = tuner.oracle
    return [record_from_trial_state(oracle.trials[trial_id].get_state()) for trial_id in oracle.start_order]


@dataclass(frozen=True)
class ProjectRecords:
    """What a finished search left in its project directory, read as data (JSON only, nothing unpickled).

    Attributes:
        directory: The project directory (`directory/project_name` of the tuner).
        records: One `TrialRecord` per trial, in the order they started.
        alpha: α of the search (from the trials' `teacher_guidance.json`; NaN if none was written).
        search_examples: M1·E1, examples processed during the search.
        rerank_examples: M2·E2, examples processed by reranking.
        bootstrap_examples: Examples processed by a teacher schedule's steps (`keras_sage.Bootstrap`).
        reranked: The reranked candidates (`trial_id`, `score`, `mature_accuracy`, `examples_processed`),
            highest mature accuracy first.
    """

    directory: str
    records: list[TrialRecord]
    alpha: float
    search_examples: int
    rerank_examples: int
    bootstrap_examples: int
    reranked: list[dict[str, Any]]


def project_records(directory: str | os.PathLike[str]) -> ProjectRecords:
    """Reads a SageTuner project directory: `oracle.json`, each `trial_*/trial.json`, and the tuners' files.

    The search's cost is summed over every process that ran trials (`tuner0.json` of a single process,
    or the chief's and each worker's `tuner*.json` of a distributed search).

    Args:
        directory: The project directory, e.g. `searches/tg_sage`.

    Returns:
        A `ProjectRecords`.

    Raises:
        FileNotFoundError: If the directory holds no `oracle.json` and no trial.
    """
    root = Path(directory)
    trial_files = project_files.trial_files(root)
    oracle_path = root / project_files.ORACLE_FILE
    if not trial_files and not oracle_path.is_file():
        raise FileNotFoundError(
            f"{root} is not a search project directory: no {project_files.ORACLE_FILE} and no trial"
        )
    start_order = project_files.read_json(oracle_path).get("start_order", []) if oracle_path.is_file() else []
    order = [trial_id for trial_id in start_order if trial_id in trial_files]
    order += sorted(set(trial_files) - set(order), key=lambda trial_id: (len(trial_id), trial_id))
    records = [record_from_trial_state(project_files.read_json(trial_files[trial_id])) for trial_id in order]
    alphas = [
        project_files.read_json(path).get(project_files.ALPHA, math.nan)
        for path in project_files.teacher_guidance_files(root)
    ]
    tuner_states = project_files.tuner_states(root)
    return ProjectRecords(
        directory=str(root),
        records=records,
        alpha=float(alphas[0]) if alphas else math.nan,
        search_examples=project_files.summed_examples(tuner_states, project_files.SEARCH_EXAMPLES),
        rerank_examples=project_files.summed_examples(tuner_states, project_files.RERANK_EXAMPLES),
        bootstrap_examples=project_files.summed_examples(tuner_states, project_files.BOOTSTRAP_EXAMPLES),
        reranked=sorted(
            project_files.rerank_results(tuner_states), key=_mature_accuracy_or_minus_infinity, reverse=True
        ),
    )


def _mature_accuracy_or_minus_infinity(result: Mapping[str, Any]) -> float:
    """A reranked candidate's sort key: its mature accuracy, a diverged one (NaN) or a missing one last."""
    return _or_minus_infinity(result, contract.MATURE_ACCURACY)


def _or_minus_infinity(result: Mapping[str, Any], key: str) -> float:
    """`result[key]` as a sort key: a NaN or missing value sorts last."""
    value = float(result.get(key, math.nan))
    return -math.inf if math.isnan(value) else value


def search_summary(name: str, tuner: Any, reranked: Sequence[Any] = ()) -> dict[str, Any]:
    """One row of a comparison table for a finished search (and its reranking).

    Args:
        name: The arm's name (e.g. `"P+TG"`).
        tuner: The `SageTuner` after `search` (and `rerank`), or the `ProjectRecords` of its directory.
        reranked: What `tuner.rerank` returned, best first; the first is the arm's winner. For
            `ProjectRecords`, its own reranked candidates are used when this is empty.

    Returns:
        A dict with the arm, α, the number of trials and failed trials, the best P and best TG among the
        completed trials, how many of them are on the Pareto front of P and TG (`front_trial_ids`), the
        winner's trial id and mature accuracy, the mature accuracy of the reranked candidate with the
        highest search score (`top-score mature acc`: the search's choice had it not
        reranked; NaN without reranking), the examples processed during the search (M1·E1) and in all
        (M1·E1 + M2·E2, and a teacher schedule's training), and the winner's parameters and FLOPs.
    """
    if isinstance(tuner, ProjectRecords):
        records, alpha = tuner.records, tuner.alpha
        search_examples = tuner.search_examples
        total_examples = search_examples + tuner.rerank_examples + tuner.bootstrap_examples
        winner_id, winner_mature = (
            (str(tuner.reranked[0]["trial_id"]), float(tuner.reranked[0][contract.MATURE_ACCURACY]))
            if tuner.reranked and not reranked
            else (None, math.nan)
        )
    else:
        records, alpha = trial_records(tuner), tuner.alpha
        search_examples, total_examples = tuner.search_examples, tuner.search_cost()
        winner_id, winner_mature = None, math.nan
    if reranked:
        winner_id, winner_mature = reranked[0].trial_id, reranked[0].mature_accuracy
    candidates = [
        _as_reranked_dict(candidate)
        for candidate in (reranked or (tuner.reranked if isinstance(tuner, ProjectRecords) else ()))
    ]
    top_score = max(
        candidates, key=lambda candidate: _or_minus_infinity(candidate, contract.SCORE), default=None
    )
    top_score_mature = math.nan if top_score is None else float(top_score[contract.MATURE_ACCURACY])
    completed = [record for record in records if record.status == "COMPLETED"]
    winner_record = next((record for record in records if record.trial_id == winner_id), None)
    winner_params, winner_flops = (
        (winner_record.params, winner_record.flops) if winner_record else (math.nan,) * 2
    )
    return {
        "arm": name,
        "alpha": alpha,
        "trials": len(records),
        "failed": len(records) - len(completed),
        "best P": max((record.premature_accuracy for record in completed), default=math.nan),
        "best TG": max((record.teacher_guidance for record in completed), default=math.nan),
        FRONT: len(front_trial_ids(records)),
        "winner": winner_id if winner_id is not None else "-",
        WINNER_MATURE_ACCURACY: winner_mature,
        TOP_SCORE_MATURE_ACCURACY: top_score_mature,
        "winner params": _count(winner_params),
        "winner FLOPs": _count(winner_flops),
        SEARCH_EXAMPLES: search_examples,
        "examples (+M2·E2)": total_examples,
    }


def _as_reranked_dict(candidate: Any) -> Mapping[str, Any]:
    """A reranked candidate (a `RerankResult` or a project's dict) as a dict with its score."""
    if isinstance(candidate, Mapping):
        return candidate
    return {contract.SCORE: candidate.score, contract.MATURE_ACCURACY: candidate.mature_accuracy}


def _count(value: float) -> int | float:
    """A count recorded as a float metric, as an int (NaN stays NaN)."""
    return value if math.isnan(value) else int(value)


def best_so_far(values: Sequence[float]) -> npt.NDArray[np.float64]:
    """The running maximum of `values`, ignoring NaN (NaN until the first finite value)."""
    array = np.asarray(values, dtype=np.float64)
    filled = np.where(np.isnan(array), -np.inf, array)
    running = np.maximum.accumulate(filled) if len(filled) else filled
    return np.where(np.isneginf(running), np.nan, running)
