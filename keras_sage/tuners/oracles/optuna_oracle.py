"""Any optuna sampler as a KerasTuner oracle (`OptunaOracle`).

`OptunaOracle` drives any optuna sampler through optuna's ask-and-tell interface, so KerasTuner gains
optuna's TPE (independent, multivariate and group modes, constant liar for parallel workers), CMA-ES,
GP and the rest without re-implementing any of them. `keras_sage.tuners.oracles.tpe.TPEOracle` is
`OptunaOracle` with a TPE sampler set up as the paper's TPE search.

How a KerasTuner space maps to optuna:

| KerasTuner                                   | optuna                                       |
|----------------------------------------------|----------------------------------------------|
| `Choice`, `Boolean`                          | `CategoricalDistribution` (unordered)        |
| `Int`/`Float`, linear, with or without step  | `IntDistribution`/`FloatDistribution`, step  |
| `Int`/`Float`, log, no step                  | `IntDistribution`/`FloatDistribution`, log   |
| `Int`/`Float`, reverse_log, or log with step | `FloatDistribution(0, 1)` over the unit      |
|                                              | interval KerasTuner maps to values           |
| `Fixed`                                      | not asked                                    |

Conditional spaces: the oracle walks `hyperparameters.space` in order (parents come before their
children) and asks optuna only for the hyperparameters that are active given the values chosen so far,
exactly as KerasTuner's own random search does; optuna's TPE models each parameter from the trials in
which it was active. A name that KerasTuner registers under several conditions becomes one optuna
parameter per registration (`name`, `name[1]`, ...).

Failed trials (KerasTuner's FAILED, a NaN score, a candidate that cannot be built): optuna's TPE, like
hyperopt's, leaves FAIL trials out of both densities, so it keeps proposing a region where every trial
fails. By default (`failed_trials="infeasible"`) the oracle therefore tells a failed trial as complete
with the worst value seen so far and a violated constraint (`keras_tuner_failed` = 1); TPE then counts
it in g(x) and moves away, and `study.best_trial` skips it. `failed_trials="fail"` tells it as FAIL.

Persistence: the study lives in an optuna journal file, `optuna_journal.log`, in the oracle's project
directory, and the sampler's random states (numpy's, as JSON) in `optuna_sampler.json` next to it.
Reloading a project (`overwrite=False`) reopens both, so a stopped and resumed search proposes the same
trials as one that never stopped. Nothing is ever unpickled: a project directory is data, and a pickle
in it (such as the `optuna_sampler.pkl` that keras-sage 0.x wrote) could run code on every machine that
resumes the search; such a file is ignored, with a warning. A sampler whose state lies elsewhere than in
its random states (in its own attributes, not in the study) resumes from the study alone. After a crash:
- a trial that was running is re-run by KerasTuner (its retry queue) and told to optuna when it ends;
- an optuna trial asked but never handed to KerasTuner is told as failed;
- a finished KerasTuner trial that optuna does not know (for instance from a search that another
  oracle began in the same project) is added to the study, so the sampler learns from it.

Each trial told to optuna carries the KerasTuner trial's metrics (score, P, TG, each S_i, params, FLOPs,
teacher version, ...) and trial id as user attributes (`trial_user_attributes`), which
`keras-sage dashboard` shows.

Optuna writes (and fsyncs) one journal line per suggested parameter; with the hundreds of parameters of a
CNN space that would dominate the suggestion time, so the oracle batches each trial's lines and writes
them with one fsync when the trial has been populated or told (`BatchedJournalFile`). The journal's lock
is the kernel's (`KernelJournalLock`), so a `kill -9` mid-write leaves none behind for a restart to wait on.

Optuna's own per-trial log lines are silenced during the oracle's calls (KerasTuner already reports
every trial); warnings still show.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, cast

import keras_tuner
import numpy as np
import optuna
from keras_tuner.engine import hyperparameters as hp_module
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalFileOpenLock
from optuna.trial import TrialState

from keras_sage._atomic import write_atomically
from keras_sage.project_files import JOURNAL_FILE, JOURNAL_LOCK_FILE, PICKLED_SAMPLER_FILE, SAMPLER_FILE
from keras_sage.tuners import _compat
from keras_sage.tuners.pareto import objective_values, objectives_of

SAMPLER_STATE_FORMAT = "keras-sage-optuna-sampler"
STUDY_NAME = "keras-sage"
FAILED_CONSTRAINT = "keras_tuner_failed"
# User attributes of an optuna trial besides the KerasTuner trial's metrics (`trial_user_attributes`).
KERAS_TUNER_TRIAL_ID = "keras_tuner_trial_id"
MESSAGE = "message"  # why a failed trial failed

_TrialStatus = keras_tuner.engine.trial.TrialStatus


def _on_unit_interval(hp: hp_module.HyperParameter) -> bool:
    """Whether optuna samples `hp` on KerasTuner's unit interval (a sampling optuna cannot express)."""
    if not isinstance(hp, (hp_module.Int, hp_module.Float)):
        return False
    return hp.sampling == "reverse_log" or (hp.sampling == "log" and hp.step is not None)


def optuna_distribution(
    hp: hp_module.HyperParameter,
) -> CategoricalDistribution | IntDistribution | FloatDistribution:
    """The optuna distribution that samples a KerasTuner hyperparameter (see the module's table).

    Args:
        hp: A `Choice`, `Boolean`, `Int` or `Float`.

    Returns:
        The distribution.

    Raises:
        TypeError: For a hyperparameter type with no optuna counterpart (or `Fixed`, which is not
            sampled).
    """
    if isinstance(hp, hp_module.Choice):
        return CategoricalDistribution(hp.values)
    if isinstance(hp, hp_module.Boolean):
        return CategoricalDistribution((False, True))
    if _on_unit_interval(hp):
        return FloatDistribution(0.0, 1.0)
    if isinstance(hp, hp_module.Int):
        if hp.sampling == "log":
            return IntDistribution(hp.min_value, hp.max_value, log=True)
        high = hp.min_value + (hp.max_value - hp.min_value) // hp.step * hp.step
        return IntDistribution(hp.min_value, high, step=hp.step)
    if isinstance(hp, hp_module.Float):
        if hp.sampling == "log":
            return FloatDistribution(hp.min_value, hp.max_value, log=True)
        if hp.step is None:
            return FloatDistribution(hp.min_value, hp.max_value)
        n_steps = math.floor((hp.max_value - hp.min_value) / hp.step + 1e-9)
        return FloatDistribution(hp.min_value, hp.min_value + n_steps * hp.step, step=hp.step)
    raise TypeError(f"Hyperparameter {hp.name!r} of type {type(hp).__name__} has no optuna distribution.")


def to_keras_value(hp: hp_module.HyperParameter, optuna_value: Any) -> Any:
    """The KerasTuner value of `hp` for a value sampled from `optuna_distribution(hp)`."""
    if _on_unit_interval(hp):
        return hp.prob_to_value(optuna_value)
    return optuna_value


def to_optuna_value(hp: hp_module.HyperParameter, keras_value: Any) -> Any:
    """The optuna value of `hp` for a KerasTuner value (the inverse of `to_keras_value`)."""
    if _on_unit_interval(hp):
        return min(max(hp.value_to_prob(keras_value), 0.0), 1.0)
    return keras_value


def optuna_parameter_names(space: Sequence[hp_module.HyperParameter]) -> list[str]:
    """Optuna parameter names for a KerasTuner space, one per registration, stable as the space grows.

    KerasTuner may register one name under several conditions (only one active at a time); each
    registration gets its own optuna parameter, `name` for the first and `name[k]` for the k-th.
    """
    seen: dict[str, int] = {}
    names = []
    for hp in space:
        count = seen.get(hp.name, 0)
        seen[hp.name] = count + 1
        names.append(hp.name if count == 0 else f"{hp.name}[{count}]")
    return names


def _suggest(
    trial: optuna.Trial,
    name: str,
    distribution: CategoricalDistribution | IntDistribution | FloatDistribution,
) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(
            name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    return trial.suggest_float(
        name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
    )


def trial_user_attributes(trial: keras_tuner.engine.trial.Trial) -> dict[str, Any]:
    """A trial's last value of each metric it recorded (finite ones), and its KerasTuner trial id.

    Args:
        trial: A KerasTuner trial.

    Returns:
        `{metric name: value, ..., "keras_tuner_trial_id": id}`, plus `"message"` for a failed trial.
    """
    attributes: dict[str, Any] = {}
    for name in sorted(trial.metrics.metrics):
        value = trial.metrics.get_last_value(name)
        if value is not None and math.isfinite(float(value)):
            attributes[name] = float(value)
    attributes[KERAS_TUNER_TRIAL_ID] = str(trial.trial_id)
    if trial.status != _TrialStatus.COMPLETED and trial.message:
        attributes[MESSAGE] = str(trial.message).strip().splitlines()[-1]
    return attributes


def name_metrics(study: optuna.Study, names: list[str]) -> None:
    """Names a new study's objective values by their metrics (optuna-dashboard shows the names)."""
    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


class KernelJournalLock(JournalFileOpenLock):
    """The lock an optuna journal's writer holds while it appends: an OS-level lock (`fcntl.flock`) on a file.

    It is a `JournalFileOpenLock` (a lock type `JournalFileBackend` takes) whose `acquire` and `release`
    are the kernel's.

    Optuna's own journal locks are files that exist while they are held. A writer killed (-9) while it
    holds one leaves the file behind, and the next writer waits out the lock's 30 s grace period before
    it breaks it: long enough for the workers of a restarted chief to give up on it. The kernel releases
    this lock when its holder ends, however it ends.

    Args:
        path: The lock file (created if missing; its content is never read).

    Example:

    ```python
    backend = JournalFileBackend("optuna_journal.log", lock_obj=KernelJournalLock("optuna_journal.lock"))
    ```
    """

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path
        self._descriptor: int | None = None

    def acquire(self) -> bool:
        """Waits for the lock and takes it; returns True."""
        descriptor = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor
        return True

    def release(self) -> None:
        """Releases the lock (closing the file releases the flock)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


class BatchedJournalFile(BaseJournalBackend):
    """An optuna journal file whose appended lines wait in memory until `flush`, which writes them at once.

    The oracle is the journal's only writer (in KerasTuner's parallel tuning it runs in the chief), so
    lines on disk and lines waiting are numbered as one sequence. Each flush holds a `KernelJournalLock` on
    `JOURNAL_LOCK_FILE` beside the journal. A last line without its newline (a writer killed mid-append)
    is cut off when the file is opened: optuna's reader skips it, and the next append would join onto it.

    Args:
        path: The journal file.
    """

    def __init__(self, path: str):
        _cut_a_torn_last_line(path)
        lock = KernelJournalLock(os.path.join(os.path.dirname(path), JOURNAL_LOCK_FILE))
        self._file = JournalFileBackend(path, lock_obj=lock)
        self._on_disk = sum(1 for _ in self._file.read_logs(0))
        self._waiting: list[dict[str, Any]] = []

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        if log_number_from < self._on_disk:
            yield from self._file.read_logs(log_number_from)
        yield from self._waiting[max(0, log_number_from - self._on_disk) :]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        self._waiting.extend(logs)

    def flush(self) -> None:
        """Writes the waiting lines to the file (one write, one fsync)."""
        if self._waiting:
            self._file.append_logs(self._waiting)
            self._on_disk += len(self._waiting)
            self._waiting = []


def _cut_a_torn_last_line(path: str) -> None:
    """Truncates the file after its last newline (to nothing if it has none) unless it ends with one."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as file:
        text = file.read()
        if text and not text.endswith(b"\n"):
            file.truncate(text.rfind(b"\n") + 1)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Lowers optuna's logging to warnings for the duration (KerasTuner reports the trials)."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


class OptunaOracle(keras_tuner.Oracle):
    """A KerasTuner oracle that asks an optuna sampler for each trial's hyperparameters.

    Args:
        sampler: Any `optuna.samplers.BaseSampler`; it keeps its own seed.
        objective: As for any KerasTuner oracle: a metric name, a `keras_tuner.Objective`, or a list of
            them. A "max" objective makes a maximizing study; a list a multi-objective study that gets
            each objective's value apart, not their sum (a Pareto search, `keras_sage.tuners.pareto`:
            use a multi-objective sampler such as `NSGAIISampler` or TPE).
        max_trials: The number of trials to run at most.
        hyperparameters: Optional `HyperParameters` to register (or fix) in advance.
        allow_new_entries: Whether the hypermodel may request hyperparameters not in `hyperparameters`.
        tune_new_entries: Whether such new hyperparameters are tuned (else they keep their defaults).
        seed: KerasTuner's seed for the oracle (the sampler is seeded on its own).
        max_retries_per_trial: How many times a crashed trial is retried.
        max_consecutive_failed_trials: How many failed trials in a row stop the search.
        failed_trials: How optuna hears of a failed trial: `"infeasible"` (complete, with the worst
            value so far and a violated constraint, so that the sampler learns to avoid it) or
            `"fail"` (optuna's FAIL state, which TPE ignores).

    Example:

    ```python
    import keras_tuner
    import optuna
    from keras_sage.tuners import OptunaOracle

    oracle = OptunaOracle(
        optuna.samplers.CmaEsSampler(seed=1),
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_trials=30,
    )
    tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build_model, directory="runs")
    ```
    """

    def __init__(
        self,
        sampler: optuna.samplers.BaseSampler,
        objective: Any = None,
        max_trials: int = 10,
        hyperparameters: keras_tuner.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        seed: int | None = None,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        failed_trials: str = "infeasible",
    ):
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        _compat.keep_oracle_seed(self, seed)
        if failed_trials not in ("infeasible", "fail"):
            raise ValueError(f'failed_trials must be "infeasible" or "fail", got {failed_trials!r}.')
        self.sampler = sampler
        self.failed_trials = failed_trials
        # KerasTuner trial_id -> the optuna trial asked for it, while it runs.
        self._asked: dict[str, optuna.Trial] = {}
        # KerasTuner trial_id -> optuna trial number.
        self._optuna_numbers: dict[str, int] = {}
        # Whether this oracle continues a search from its project directory (set by `set_state`).
        self._resumed = False
        self._study: optuna.Study | None = None
        self._journal: BatchedJournalFile | None = None

    @property
    def study(self) -> optuna.Study:
        """The optuna study, opened from the journal in the project directory on first use."""
        if self._study is None:
            self._study = self._open_study()
        return self._study

    def _journal_path(self) -> str:
        return os.path.join(_compat.oracle_project_dir(self), JOURNAL_FILE)

    def _sampler_path(self) -> str:
        return os.path.join(_compat.oracle_project_dir(self), SAMPLER_FILE)

    def _open_study(self) -> optuna.Study:
        path = self._journal_path()
        if not self._resumed and os.path.exists(path):
            # A journal left by a search that this oracle does not continue (the tuner was not
            # reloaded): start a new study rather than learn from trials KerasTuner does not know.
            os.remove(path)
        self._journal = BatchedJournalFile(path)
        storage = optuna.storages.JournalStorage(self._journal)
        directions: list[Literal["maximize", "minimize"]] = [
            "maximize" if objective.direction == "max" else "minimize" for objective in objectives_of(self)
        ]
        with _quiet_optuna():
            study = optuna.create_study(
                storage=storage,
                sampler=self.sampler,
                study_name=STUDY_NAME,
                directions=directions,
                load_if_exists=True,
            )
            name_metrics(study, [str(objective.name) for objective in objectives_of(self)])
            self._reconcile(study)
        self._journal.flush()
        return study

    def _reconcile(self, study: optuna.Study) -> None:
        """Brings the study in line with KerasTuner's trials after a reload (see the module doc)."""
        trial_ids = {number: trial_id for trial_id, number in self._optuna_numbers.items()}
        finished = set(self.end_order)
        for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial_id = trial_ids.get(frozen.number)
            if trial_id is None:
                study.tell(frozen.number, state=TrialState.FAIL)
            else:
                self._asked[trial_id] = _compat.running_trial(study, frozen)
                if trial_id in finished:
                    self._tell(study, self.trials[trial_id])
        for trial_id in self.end_order:
            if trial_id not in self._optuna_numbers:
                self._add_to_study(study, self.trials[trial_id])

    def _walk_space(self, values: dict[str, Any]) -> Iterator[tuple[hp_module.HyperParameter, str]]:
        """Yields the active hyperparameters in order, with their optuna names.

        Activity is KerasTuner's (every condition of the hyperparameter holds for `values`); the caller
        adds each hyperparameter's value to `values` before the next step, so activity follows them.
        """
        space = self.hyperparameters.space
        for hp, name in zip(space, optuna_parameter_names(space), strict=True):
            if all(condition.is_active(values) for condition in hp.conditions):
                yield hp, name

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Asks the sampler for the values of the active hyperparameters, in the space's order.

        Args:
            trial_id: The KerasTuner trial being created.

        Returns:
            `{"status": "RUNNING", "values": {...}}`.
        """
        study = self.study
        with _quiet_optuna():
            optuna_trial = study.ask()
            values: dict[str, Any] = {}
            for hp, name in self._walk_space(values):
                if isinstance(hp, hp_module.Fixed):
                    values[hp.name] = hp.value
                else:
                    values[hp.name] = to_keras_value(
                        hp, _suggest(optuna_trial, name, optuna_distribution(hp))
                    )
        assert self._journal is not None  # Opened with the study.
        self._journal.flush()
        self._optuna_numbers[trial_id] = optuna_trial.number
        self._asked[trial_id] = optuna_trial
        return {"status": _TrialStatus.RUNNING, "values": values}

    @keras_tuner.synchronized
    def end_trial(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """Ends the trial as KerasTuner does, then tells optuna its score (or that it failed).

        A trial that KerasTuner sends for a retry is told only when it finally ends.
        """
        study = self.study  # Opened (and reconciled) before KerasTuner marks this trial as ended.
        super().end_trial(trial)
        trial = self.trials[trial.trial_id]
        if trial.trial_id not in self.end_order:
            return
        with _quiet_optuna():
            if trial.trial_id in self._optuna_numbers:
                self._tell(study, trial)
            else:
                self._add_to_study(study, trial)
                self.save()
        assert self._journal is not None  # Opened with the study.
        self._journal.flush()

    def _tell(self, study: optuna.Study, trial: keras_tuner.engine.trial.Trial) -> None:
        optuna_trial = self._asked.pop(trial.trial_id, None)
        if optuna_trial is None:  # Already told (an imported trial, or a trial ended twice).
            return
        for name, value in trial_user_attributes(trial).items():
            optuna_trial.set_user_attr(name, value)
        values = self._values(trial)
        if values is not None:
            study.tell(optuna_trial, values)
        elif self.failed_trials == "infeasible":
            optuna_trial.set_constraint(FAILED_CONSTRAINT, 1.0)
            study.tell(optuna_trial, self._worst_values(study))
        else:
            study.tell(optuna_trial, state=TrialState.FAIL)

    def _values(self, trial: keras_tuner.engine.trial.Trial) -> list[float] | None:
        """A completed trial's values for optuna: its score, or with several objectives each objective's
        metric (`keras_sage.tuners.pareto`, kept apart, not summed); None unless completed and finite."""
        if trial.status != _TrialStatus.COMPLETED:
            return None
        objectives = objectives_of(self)
        score = trial.score
        values = (
            objective_values(trial, objectives)
            if len(objectives) > 1
            else [math.nan if score is None else float(score)]
        )
        return values if all(math.isfinite(value) for value in values) else None

    def _worst_values(self, study: optuna.Study) -> list[float]:
        """Each objective's worst value among the feasible complete trials (0 before there is one)."""
        values = np.array(
            [
                cast(list[float], frozen.values)  # A complete trial has values.
                for frozen in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if not any(value > 0 for value in frozen.constraints.values())
            ],
            dtype=np.float64,
        ).reshape(-1, len(study.directions))
        if not len(values):
            return [0.0] * len(study.directions)
        return [
            float(column.min() if direction == optuna.study.StudyDirection.MAXIMIZE else column.max())
            for column, direction in zip(values.T, study.directions, strict=True)
        ]

    def _add_to_study(self, study: optuna.Study, trial: keras_tuner.engine.trial.Trial) -> None:
        """Adds a finished trial that optuna did not propose, so the sampler learns from it."""
        params: dict[str, Any] = {}
        distributions: dict[str, BaseDistribution] = {}
        given = trial.hyperparameters.values
        active: dict[str, Any] = {}
        for hp, name in self._walk_space(active):
            if hp.name not in given:
                continue
            active[hp.name] = given[hp.name]
            if isinstance(hp, hp_module.Fixed):
                continue
            params[name] = to_optuna_value(hp, given[hp.name])
            distributions[name] = optuna_distribution(hp)
        values = self._values(trial)
        completed = values is not None
        infeasible = not completed and self.failed_trials == "infeasible"
        try:
            frozen = optuna.trial.create_trial(
                params=params,
                distributions=distributions,
                values=values if completed else self._worst_values(study) if infeasible else None,
                state=TrialState.COMPLETE if completed or infeasible else TrialState.FAIL,
                constraints={FAILED_CONSTRAINT: 1.0} if infeasible else None,
                user_attrs=trial_user_attributes(trial),
            )
        except ValueError as error:
            warnings.warn(
                f"Trial {trial.trial_id} has values outside the search space and is not given to "
                f"optuna: {error}",
                stacklevel=2,
            )
            return
        study.add_trial(frozen)
        self._optuna_numbers[trial.trial_id] = len(study.get_trials(deepcopy=False)) - 1

    def get_state(self) -> dict[str, Any]:
        state = cast("dict[str, Any]", super().get_state())
        state["optuna_trial_numbers"] = dict(self._optuna_numbers)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._optuna_numbers = dict(state.get("optuna_trial_numbers", {}))
        self._resumed = True
        self._study = None
        self._journal = None
        self._restore_sampler()

    def save(self) -> None:
        """Saves KerasTuner's oracle state and the sampler's random states (as JSON, atomically)."""
        super().save()
        state = {
            "format": SAMPLER_STATE_FORMAT,
            "sampler": type(self.sampler).__name__,
            "random_states": {
                path: _random_state_as_data(random_state)
                for path, random_state in _compat.sampler_random_states(self.sampler).items()
            },
        }
        text = json.dumps(state)
        write_atomically(self._sampler_path(), lambda file: file.write(text.encode()))

    def _restore_sampler(self) -> None:
        directory = _compat.oracle_project_dir(self)
        if os.path.exists(os.path.join(directory, PICKLED_SAMPLER_FILE)):
            warnings.warn(
                f"{os.path.join(directory, PICKLED_SAMPLER_FILE)} is ignored: keras-sage never unpickles "
                "files (a pickle can run code); the sampler's random state is now kept in "
                f"{SAMPLER_FILE}, so this search continues from the study but not from the old random state.",
                stacklevel=3,
            )
        path = self._sampler_path()
        if not os.path.exists(path):
            return
        try:
            with open(path, encoding="utf-8") as file:
                saved = json.load(file)
            if saved.get("format") != SAMPLER_STATE_FORMAT:
                raise ValueError(f"its format is {saved.get('format')!r}, not {SAMPLER_STATE_FORMAT!r}")
            sampler_name, states = str(saved["sampler"]), dict(saved["random_states"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path} is not a sampler state that keras-sage wrote: {error}") from None
        if sampler_name != type(self.sampler).__name__:
            warnings.warn(
                f"{path} holds the state of a {sampler_name}, but this oracle was given a "
                f"{type(self.sampler).__name__}; the new sampler starts from its own random state.",
                stacklevel=3,
            )
            return
        for name, random_state in _compat.sampler_random_states(self.sampler).items():
            if name in states:
                try:
                    _set_random_state(random_state, states[name])
                except (ValueError, TypeError, KeyError) as error:
                    raise ValueError(
                        f"{path}: the random state {name!r} cannot be restored: {error}"
                    ) from None


def _random_state_as_data(random_state: Any) -> dict[str, Any]:
    """A numpy `RandomState`'s or `Generator`'s state as JSON-able data."""
    if isinstance(random_state, np.random.Generator):
        state = dict(random_state.bit_generator.state)
    else:
        state = dict(random_state.get_state(legacy=False))
    return cast("dict[str, Any]", json.loads(json.dumps(state, default=_array_as_list)))


def _array_as_list(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"a random state holds a {type(value).__name__}")


def _set_random_state(random_state: Any, state: dict[str, Any]) -> None:
    """Restores a state saved by `_random_state_as_data`."""
    if isinstance(random_state, np.random.Generator):
        random_state.bit_generator.state = state
        return
    if state.get("bit_generator") == "MT19937":
        state = {
            **state,
            "state": {**state["state"], "key": np.asarray(state["state"]["key"], dtype=np.uint32)},
        }
    random_state.set_state(state)
