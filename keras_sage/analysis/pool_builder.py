"""`build_pool`: each architecture trained once to maturity, scored by P and TG at budgets on the way.

The pool format is in `keras_sage.analysis.pool`. Control teachers for the pool's control columns are
registered with `labels_teacher` (the RDM of the one-hot probe labels) and `register_teacher` on an
untrained copy of the teacher network (`TG_untrained`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np

from keras_sage import contract
from keras_sage._errors import first_line
from keras_sage.analysis.pool import (
    ARCH_ID,
    ARCH_STRING,
    BUDGET,
    DEPTH,
    EXAMPLES,
    FAILURE,
    HYPERPARAMETERS,
    MATURE_ACCURACY,
    MATURE_ACCURACY_SOURCE,
    SEED,
    append_rows,
    architecture_ids,
    examples_after,
    read_pool,
)
from keras_sage.features import default_endpoints
from keras_sage.hypermodels import random_hyperparameters
from keras_sage.objective import TeacherGuidedScorer, premature_accuracy, teacher_guidance
from keras_sage.proxies import PROXY_BATCH_SIZE, PROXY_NAMES, zero_cost_proxies
from keras_sage.rsa import DEFAULT_MAX_FEATURES, NoiseCeilingWarning
from keras_sage.score import ScoringConfig
from keras_sage.teachers import register_recordings
from keras_sage.tuners.training import fit_candidate, size_metrics

# Batch size of P's evaluation on the validation arrays.
EVALUATION_BATCH_SIZE = 256


def labels_teacher(
    path: str | os.PathLike[str], probe_images: np.ndarray, probe_labels: np.ndarray, overwrite: bool = False
) -> str:
    """Registers the control teacher `TG_labels`: one RDM of the one-hot probe labels.

    Its correlation RDM is 0 between images of one class and 1 + 1/(c − 1) between classes (c classes):
    the representation of a network that knows only the labels.

    Args:
        path: The teacher file to write.
        probe_images: The teacher's probe images (the same as the real teacher's).
        probe_labels: Their integer labels.
        overwrite: Replace an existing RDM of that name.

    Returns:
        The path written.
    """
    labels = np.asarray(probe_labels).astype(np.int64)
    one_hot = np.eye(int(labels.max()) + 1, dtype=np.float32)[labels]
    with warnings.catch_warnings():
        # Labels are noiseless, so the missing repeats (and noise ceiling) are no concern here.
        warnings.simplefilter("ignore", NoiseCeilingWarning)
        register_recordings({"labels": one_hot}, probe_images, labels, path=path, overwrite=overwrite)
    return os.fspath(path)


def build_pool(
    hypermodel: Any,
    teacher: Any,
    data: Any,
    *,
    n: int | None = None,
    hyperparameters: Sequence[Any] | None = None,
    budgets: Sequence[int],
    mature_epochs: int | None = None,
    mature_accuracy: Callable[[keras_tuner.HyperParameters], float] | None = None,
    mature_accuracy_source: str | None = None,
    proxies: Sequence[str] = (),
    controls: Mapping[str, Any] | None = None,
    path: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    seed: int = 0,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    verbose: bool = True,
) -> list[dict[str, Any]]:
    """Trains each architecture once to maturity, scoring P and TG at every budget on the way.

    Each architecture is built with `keras.utils.set_random_seed(seed + k)` (k its position), trained
    with `fit` on the training arrays for `mature_epochs` epochs in batches of `batch_size`, and scored
    after exactly `budget` SGD steps for every budget (0: at initialisation, before any step): P on the
    validation arrays, TG and each S_i against `teacher`, and each control teacher's TG. Mature accuracy
    is the validation accuracy at the end. A candidate that cannot be built, or whose loss becomes NaN,
    gets rows whose numbers are NaN and a `failure` message; the pool goes on.

    Where the mature accuracy is known without training (a NAS-Bench-201 cell's, from
    `keras_sage.nasbench201`), `mature_accuracy` looks it up and training stops at the largest budget: no
    mature training at all. Each of `proxies` (`keras_sage.proxies.PROXY_NAMES`) is computed at
    initialisation on the first 64 training images (Abdelfattah et al.'s batch) and written in every row
    of the architecture, a control beside `params` and `flops`. A hypermodel with `to_arch_string(hp)`
    (`NASBench201SearchSpace`) gets the cell's `arch_string` in every row.

    Args:
        hypermodel: A search space (`CNNSearchSpace`, `CellSearchSpace`, or a user's `HyperModel` whose
            `build(hp)` returns a compiled model with an accuracy metric and named endpoints).
        teacher: The teacher: a `TeacherStore` or the path of a teacher file.
        data: `ImageSplits` (`x_train`, `y_train`, `x_val`, `y_val`), or `((x_train, y_train), (x_val,
            y_val))` of arrays.
        n: How many random architectures (`random_hyperparameters(hypermodel, seed + k)`).
        hyperparameters: Instead of `n`, the architectures: `keras_tuner.HyperParameters` or dicts of
            values.
        budgets: SGD steps at which to score, each at most the steps of `mature_epochs` epochs.
        mature_epochs: Epochs of the full training; not given when `mature_accuracy` looks it up.
        mature_accuracy: Instead of training to maturity, a lookup of an architecture's mature accuracy.
        mature_accuracy_source: What the lookup reads (e.g. `nasbench201.MATURE_ACCURACY_SOURCE`), written
            in every row.
        proxies: The field's proxies to compute at initialisation, by name.
        controls: Column name → control teacher (`TeacherStore` or path), scored like the teacher; e.g.
            `{"TG_untrained": "untrained.h5", "TG_labels": "labels.h5"}` (see `labels_teacher`).
        path: A JSON Lines file; architectures it already holds are not trained again.
        batch_size: Training batch size.
        seed: Base seed of architectures and training.
        max_features: Features per student endpoint in its RDM, a fixed random subsample as in the
            tuner's scoring (`None`: all).
        verbose: Print progress (architecture k/N, ETA) to stderr.

    Returns:
        All rows of the pool, those read back from `path` included.
    """
    candidates = _candidates(hypermodel, n, hyperparameters, seed)
    (x_train, y_train), (x_val, y_val) = _arrays(data)
    budgets = sorted({int(budget) for budget in budgets})
    if (mature_epochs is None) == (mature_accuracy is None):
        raise ValueError("give either mature_epochs (trained to maturity) or mature_accuracy (looked up)")
    unknown = [name for name in proxies if name not in PROXY_NAMES]
    if unknown:
        raise ValueError(f"unknown proxies {', '.join(unknown)}; known: {', '.join(PROXY_NAMES)}")
    if not budgets or budgets[0] < 0:
        raise ValueError(f"budgets must be SGD steps of 0 or more, got {budgets}")
    if mature_epochs is not None and budgets[-1] > mature_epochs * math.ceil(len(x_train) / batch_size):
        mature_steps = mature_epochs * math.ceil(len(x_train) / batch_size)
        raise ValueError(f"budgets must lie in [0, {mature_steps}] (the steps of {mature_epochs} epochs)")
    training = _PoolTraining(
        budgets=budgets,
        batch_size=batch_size,
        mature_epochs=mature_epochs,
        mature_accuracy=mature_accuracy,
        mature_accuracy_source=mature_accuracy_source,
        proxies=tuple(proxies),
    )
    config = ScoringConfig(max_features=max_features, seed=seed)
    scorers = {contract.TEACHER_GUIDANCE: TeacherGuidedScorer(teacher, config)}
    for column, control in (controls or {}).items():
        scorers[column] = TeacherGuidedScorer(control, config)

    rows = read_pool(path) if path is not None and Path(path).exists() else []
    done = set(architecture_ids(rows))
    started, trained = time.perf_counter(), 0
    for position, hp in enumerate(candidates):
        arch_id = f"{position:04d}"
        if arch_id in done:
            continue
        keras.utils.set_random_seed(seed + position)
        architecture_rows = _score_architecture(
            hypermodel, hp, scorers, (x_train, y_train), (x_val, y_val), training
        )
        values = dict(hp.values) if isinstance(hp, keras_tuner.HyperParameters) else dict(hp)
        architecture_rows = [
            {
                ARCH_ID: arch_id,
                BUDGET: row[BUDGET],
                EXAMPLES: examples_after(row[BUDGET], len(x_train), batch_size),
                **row,
                SEED: seed + position,
                HYPERPARAMETERS: values,
            }
            for row in architecture_rows
        ]
        if path is not None:
            append_rows(path, architecture_rows)
        rows.extend(architecture_rows)
        trained += 1
        if verbose:
            _print_progress(position + 1, len(candidates), trained, len(candidates) - len(done), started)
    return rows


@dataclasses.dataclass(frozen=True)
class _PoolTraining:
    """How every architecture of a pool is trained and what is recorded besides P and TG."""

    budgets: list[int]
    batch_size: int
    mature_epochs: int | None
    mature_accuracy: Callable[[keras_tuner.HyperParameters], float] | None
    mature_accuracy_source: str | None
    proxies: tuple[str, ...]


def _score_architecture(
    hypermodel: Any,
    hp: Any,
    scorers: Mapping[str, Any],
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    training: _PoolTraining,
) -> list[dict[str, Any]]:
    """One architecture's rows: trained once, scored at each budget by a callback."""
    budgets = training.budgets
    if not isinstance(hp, keras_tuner.HyperParameters):
        values, hp = hp, keras_tuner.HyperParameters()
        hypermodel.declare_hyperparameters(hp)
        hp.values.update(values)
    labels = _architecture_labels(hypermodel, hp, training)
    try:
        model = hypermodel.build(hp)
    except contract.CandidateBuildError as error:
        return _failed_rows(budgets, f"candidate cannot be built: {error}", labels)
    size = {DEPTH: float(len(default_endpoints(model))), contract.FLOPS: math.nan, **size_metrics(model)}
    if training.proxies:
        images, classes = train[0][:PROXY_BATCH_SIZE], train[1][:PROXY_BATCH_SIZE]
        try:
            at_initialisation = zero_cost_proxies(model, images, classes, names=training.proxies)
        except ValueError as error:
            return _failed_rows(
                budgets, f"proxies cannot be computed: {first_line(error)}", {**labels, **size}
            )
        labels.update({name: float(value) for name, value in at_initialisation.items()})

    def score(steps: int) -> dict[str, Any]:
        row: dict[str, Any] = {BUDGET: steps}
        row[contract.PREMATURE_ACCURACY] = premature_accuracy(
            model, validation, batch_size=EVALUATION_BATCH_SIZE
        )
        for column, scorer in scorers.items():
            similarities, _ = scorer.similarities(model)
            row[column] = teacher_guidance(list(similarities.values()))
            if column == contract.TEACHER_GUIDANCE:
                row.update({contract.similarity_metric_name(name): s for name, s in similarities.items()})
        return row

    scored = [score(0)] if budgets[0] == 0 else []

    def score_budget(steps: int) -> None:
        scored.append(score(steps))

    run = fit_candidate(
        model,
        train,
        {"batch_size": training.batch_size},
        epochs=training.mature_epochs,
        steps=None if training.mature_epochs is not None else budgets[-1],
        at_steps=[budget for budget in budgets if budget > 0],
        on_step=score_budget,
    )
    if run.diverged:
        return _failed_rows(budgets, f"training diverged at step {run.diverged_at_step}", {**labels, **size})
    mature = (
        premature_accuracy(model, validation, batch_size=EVALUATION_BATCH_SIZE)
        if training.mature_accuracy is None
        else training.mature_accuracy(hp)
    )
    keras.backend.clear_session(free_memory=True)
    return [{**row, MATURE_ACCURACY: mature, **size, **labels} for row in scored]


def _architecture_labels(
    hypermodel: Any, hp: keras_tuner.HyperParameters, training: _PoolTraining
) -> dict[str, Any]:
    """What every row of an architecture carries besides its scores: its arch string, the mature
    accuracy's source."""
    labels: dict[str, Any] = {}
    if hasattr(hypermodel, "to_arch_string"):
        labels[ARCH_STRING] = hypermodel.to_arch_string(hp)
    if training.mature_accuracy_source is not None:
        labels[MATURE_ACCURACY_SOURCE] = training.mature_accuracy_source
    return labels


def _failed_rows(
    budgets: Sequence[int], failure: str, size: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    base = {DEPTH: math.nan, contract.PARAMS: math.nan, contract.FLOPS: math.nan, **(size or {})}
    return [
        {
            BUDGET: budget,
            contract.PREMATURE_ACCURACY: math.nan,
            contract.TEACHER_GUIDANCE: math.nan,
            MATURE_ACCURACY: math.nan,
            **base,
            FAILURE: failure,
        }
        for budget in budgets
    ]


def _candidates(
    hypermodel: Any, n: int | None, hyperparameters: Sequence[Any] | None, seed: int
) -> list[Any]:
    if (n is None) == (hyperparameters is None):
        raise ValueError("give either n (random architectures) or hyperparameters (a list), not both")
    if hyperparameters is not None:
        return list(hyperparameters)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    return [random_hyperparameters(hypermodel, seed + position) for position in range(n)]


def _arrays(data: Any) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    if hasattr(data, "x_train"):
        return (data.x_train, data.y_train), (data.x_val, data.y_val)
    (x_train, y_train), (x_val, y_val) = data
    return (np.asarray(x_train), np.asarray(y_train)), (np.asarray(x_val), np.asarray(y_val))


def _print_progress(position: int, total: int, trained: int, to_train: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    remaining = elapsed / trained * (to_train - trained)
    print(
        f"pool: architecture {position}/{total} · {elapsed / trained:.0f} s each"
        f" · ETA {remaining / 60:.0f} min",
        file=sys.stderr,
        flush=True,
    )
