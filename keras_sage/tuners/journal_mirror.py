"""Every search in an optuna journal: a mirror of the trials of oracles that keep no optuna study.

`TPEOracle` and `OptunaOracle` keep their study in the project directory's optuna journal
(`project_files.JOURNAL_FILE`), which optuna-dashboard opens (`keras-sage dashboard PROJECT_DIR`). Any other
oracle (random search, REINFORCE, Hyperband, any KerasTuner oracle) gets a mirror instead: after each trial
ends, the oracle's ended trials are written as an optuna study to `project_files.MIRROR_JOURNAL_FILE`, with
the objectives' values, the hyperparameters, and every trial metric (P, TG, each S_i, score, params,
FLOPs, teacher version, ...) as user attributes. The mirror is rewritten whole and atomically after each
trial (`keras_sage._atomic`), so a reader never sees half a trial; the search never reads it back.

Example:

```python
oracle = keras_tuner.oracles.RandomSearchOracle(objective="score", max_trials=10)
mirror_each_trial(oracle)  # SageTuner does this for every oracle it is given
```
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import keras_tuner
import optuna
from keras_tuner.engine import hyperparameters as hp_module
from optuna.distributions import BaseDistribution
from optuna.storages.journal import BaseJournalBackend
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from keras_sage._atomic import write_atomically
from keras_sage.project_files import MIRROR_JOURNAL_FILE
from keras_sage.tuners import _compat
from keras_sage.tuners.oracles.optuna_oracle import (
    STUDY_NAME,
    OptunaOracle,
    _quiet_optuna,
    name_metrics,
    optuna_distribution,
    optuna_parameter_names,
    to_optuna_value,
    trial_user_attributes,
)
from keras_sage.tuners.pareto import objective_values, objectives_of

__all__ = ["MIRROR_WRITER", "journal_lines", "mirror_each_trial", "mirrored_trial"]

# The writer every record of a mirror journal names (optuna's `worker_id`).
MIRROR_WRITER = "keras-sage-mirror"

_TrialStatus = keras_tuner.engine.trial.TrialStatus
_ENDED = (_TrialStatus.COMPLETED, _TrialStatus.FAILED, _TrialStatus.INVALID)


class _JournalInMemory(BaseJournalBackend):
    """An optuna journal kept as a list of its records, to be written out in one piece."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        yield from self.logs[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self.logs.extend(logs)


def mirrored_trial(trial: keras_tuner.engine.trial.Trial, objectives: list[Any]) -> FrozenTrial:
    """The optuna trial that mirrors an ended KerasTuner trial.

    Args:
        trial: A COMPLETED, FAILED or INVALID KerasTuner trial.
        objectives: The oracle's objectives, in the study's order.

    Returns:
        A COMPLETE optuna trial with one value per objective when every objective has a finite value,
        else a FAIL one; its active hyperparameters (optuna's counterpart distributions, as
        `OptunaOracle` uses) and its `trial_user_attributes`.
    """
    hyperparameters = trial.hyperparameters
    space = hyperparameters.space
    params: dict[str, Any] = {}
    distributions: dict[str, BaseDistribution] = {}
    for hp, name in zip(space, optuna_parameter_names(space), strict=True):
        if isinstance(hp, hp_module.Fixed) or not hyperparameters.is_active(hp):
            continue
        params[name] = to_optuna_value(hp, hyperparameters.values[hp.name])
        distributions[name] = optuna_distribution(hp)
    values = objective_values(trial, objectives)
    completed = trial.status == _TrialStatus.COMPLETED and all(math.isfinite(value) for value in values)
    return optuna.trial.create_trial(
        params=params,
        distributions=distributions,
        values=values if completed else None,
        state=TrialState.COMPLETE if completed else TrialState.FAIL,
        user_attrs=trial_user_attributes(trial),
    )


def journal_lines(
    trials: Iterable[FrozenTrial], directions: list[StudyDirection], metric_names: list[str]
) -> bytes:
    """The optuna journal file (JSON lines, as optuna's `JournalFileBackend` writes them) of one study,
    `STUDY_NAME`, holding `trials` in the order given, its values named `metric_names`.

    The same trials give the same bytes (every record's writer is `MIRROR_WRITER`), so a reader that has
    replayed the start of the file reads on after the file was rewritten with more trials.
    """
    backend = _JournalInMemory()
    with _quiet_optuna():
        study = optuna.create_study(
            storage=optuna.storages.JournalStorage(backend), study_name=STUDY_NAME, directions=directions
        )
        name_metrics(study, metric_names)
        study.add_trials(list(trials))
    records = [{**log, "worker_id": MIRROR_WRITER} if "worker_id" in log else log for log in backend.logs]
    return "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records).encode()


def _direction(objective: Any) -> StudyDirection:
    return StudyDirection.MAXIMIZE if objective.direction == "max" else StudyDirection.MINIMIZE


class _Mirror:
    """Rewrites an oracle's mirror journal, keeping each ended trial's optuna counterpart once made (so
    that its start and end times stay those of its first mirroring)."""

    def __init__(self, oracle: keras_tuner.Oracle) -> None:
        self.oracle = oracle
        self.mirrored: dict[str, FrozenTrial] = {}

    def write(self) -> None:
        """Writes every ended trial, in the order they ended, to the mirror journal, atomically."""
        oracle = self.oracle
        objectives = objectives_of(oracle)
        for trial_id in oracle.end_order:
            trial = oracle.trials.get(trial_id)
            if trial_id not in self.mirrored and trial is not None and trial.status in _ENDED:
                self.mirrored[trial_id] = mirrored_trial(trial, objectives)
        data = journal_lines(
            self.mirrored.values(),
            [_direction(objective) for objective in objectives],
            [str(objective.name) for objective in objectives],
        )
        path = os.path.join(_compat.oracle_project_dir(oracle), MIRROR_JOURNAL_FILE)
        write_atomically(path, lambda file: file.write(data))


def mirror_each_trial(oracle: keras_tuner.Oracle) -> None:
    """Makes an oracle without an optuna journal rewrite its mirror journal after each trial ends.

    The oracle's `end_trial` (KerasTuner's public hook, called once per ended trial by the process that
    holds the oracle: the only one, or the chief of a distributed search) is wrapped; an `OptunaOracle`,
    whose study is already a journal, is left alone.

    Args:
        oracle: The search's oracle.
    """
    if isinstance(oracle, OptunaOracle):
        return
    end_trial = oracle.end_trial
    mirror = _Mirror(oracle)

    def end_trial_and_mirror(trial: keras_tuner.engine.trial.Trial) -> None:
        end_trial(trial)
        mirror.write()

    oracle.end_trial = end_trial_and_mirror
