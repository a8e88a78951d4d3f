"""SageTuner: a KerasTuner `Tuner` that scores each candidate by P + α·TG (TG-SAGE, paper §3.2, §4).

Each trial builds a candidate from the hypermodel, trains it for the premature budget (a number of epochs
or of SGD steps), and scores it with a `TeacherGuidedScorer`: P is its validation accuracy, TG the mean
over teacher layers of the best RDM similarity to any of its representation endpoints. The oracle sees
`score` = P + α·TG (direction max); `premature_accuracy`, `teacher_guidance`, `S_<teacher layer>`, and
the candidate's `params` and `flops` are recorded as trial metrics too. With α = 0 the same code runs
plain performance-guided search.

After the search, `rerank(top_k, epochs, ...)` trains the best candidates longer (the paper's post-search
step), and `search_cost()` reports the cost as the paper does (§4.3): examples processed by SGD,
M1·E1 during the search plus M2·E2 during reranking (plus any teacher bootstrapping's training).

With `teacher_schedule=Bootstrap(every=K, mature_epochs=E)` the teacher improves during the search (paper
§5): every K completed trials the best candidate so far is trained to maturity and, if it beats the
teacher, becomes the next teacher version (`keras_sage.tuners.schedule` says when a step is due,
`keras_sage.tuners.bootstrap` runs it).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import keras
import keras_tuner
import numpy as np

from keras_sage import contract, project_files
from keras_sage._atomic import check_writable_directory, write_atomically
from keras_sage._validation import check_positive_int
from keras_sage.objective import TeacherGuidedScorer
from keras_sage.project_files import RerankResult
from keras_sage.proxies import PROXY_BATCH_SIZE, zero_cost_proxies
from keras_sage.rsa import DEFAULT_MAX_FEATURES
from keras_sage.score import DEFAULT_ALPHA, DEFAULT_MEMORY_BUDGET, ScoringConfig
from keras_sage.teachers import TeacherStore
from keras_sage.tuners import _compat, distributed, handshake, journal_mirror, pareto, project_record
from keras_sage.tuners.bootstrap import BootstrapRunner, check_schedule
from keras_sage.tuners.failures import (
    DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS,
    FAILED_STATUSES,
    SearchStoppedError,
    consecutive_failures,
    failure_cause,
    failure_reason,
    write_failure_log,
)
from keras_sage.tuners.pareto import SCORE_OBJECTIVE
from keras_sage.tuners.schedule import Bootstrap
from keras_sage.tuners.tensorboard_metrics import log_trial_metrics
from keras_sage.tuners.training import CandidateTrainer, TrainingData, first_batch, size_metrics

# The failure policy's names stay importable from here, where they were before their own module.
__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS",
    "SCORE_OBJECTIVE",
    "SageTuner",
    "SearchStoppedError",
    "failure_cause",
    "failure_reason",
]

# Which layers of a candidate are its representation endpoints: their names, or a callable of the model.
Endpoints = Sequence[str] | Callable[[keras.Model], Sequence[str]]


class SageTuner(keras_tuner.Tuner):
    """Teacher-guided architecture search (TG-SAGE) with any KerasTuner oracle.

    `search(x, y, validation_data=(x_val, y_val), batch_size=...)` works like KerasTuner's: each trial
    trains one candidate for the premature budget on `(x, y)` (arrays or a `tf.data.Dataset`), evaluates P
    on `validation_data` and TG on the teacher's probe images, and reports `score` = P + α·TG. The project
    directory, `results_summary()`, `get_best_models()` (the premature weights) and resuming with
    `overwrite=False` are KerasTuner's.

    A candidate that cannot be built (`CandidateBuildError`) or whose loss becomes NaN or infinite is a
    FAILED trial whose message is one line saying why (printed, unless `search(verbose=0)`); its traceback
    goes to `trial.log` in the trial's folder (`trial_log_path`), not to the terminal. The search goes on
    until `max_consecutive_failed_trials` trials fail in a row; then it stops with a `SearchStoppedError`
    that names the causes those trials shared. The oracle this class creates allows
    `DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS` (10), an oracle you pass keeps its own setting.

    Bad settings fail when the tuner is built, before any training: α negative, not finite or not a
    number, a budget that is not a positive integer, a teacher whose RDMs are not finite or constant or
    whose metric or level is unknown, and probe images whose shape is not the hypermodel's
    `input_shape` (checked at the first trial's build for a hypermodel without that attribute).

    As in KerasTuner, a subclass may override `on_epoch_begin`, `on_epoch_end`, `on_batch_begin` and
    `on_batch_end` (each called with the trial, the model, the epoch or batch and its logs) while a
    candidate trains, in the search and in `rerank`; the trial's score stays P + α·TG, reported when it ends.

    Randomness: the oracle's seed (`seed`) also seeds each trial's weight initialization and data order
    (`keras.utils.set_random_seed(seed + trial number)`), so the same seed gives the same trials. In
    parallel tuning each process takes it from the oracle it was given (a worker's oracle is otherwise
    unused), so a trial gets the same seed whichever worker runs it, provided the oracle has a seed
    (without one, KerasTuner draws a different one in each process).

    Parallel tuning is KerasTuner's chief/worker mode, with heartbeats, bounded waits and a prompt exit
    (`keras_sage.tuners.distributed`); a worker whose config differs from its chief's is refused before it
    trains (`keras_sage.tuners.handshake`). One process writes a project: the tuner takes the project's lock
    (`keras_sage.project_lock`; a second search of it raises `ProjectLockedError`, naming the first) and
    reopens a project whatever mode searched it before (`keras_sage.tuners.project_record`). Every file
    KerasTuner replaces in the project directory is written atomically, so a search killed at any point
    resumes (`overwrite=False`): trials that ended are kept and a trial that was running runs again.

    Args:
        hypermodel: A `keras_tuner.HyperModel` (e.g. `CNNSearchSpace`) whose `build(hp)` returns a compiled
            model with an accuracy metric.
        teacher: A `TeacherStore`, or the path of a teacher file.
        alpha: α, the weight of TG in the score; 1 is the paper's value for ~2 epochs; 0 is plain P.
        premature_epochs: Epochs of premature training per candidate (default 2, as in the paper's
            TG-SAGE searches). Give either this or `premature_steps`.
        premature_steps: SGD steps of premature training per candidate, instead of epochs.
        oracle: Any KerasTuner oracle. Its objective, if given, must be one of the reported metrics;
            `None` as its objective means `score`. Defaults to a `RandomSearchOracle` with `max_trials`
            and `seed`.
        max_trials: Trials of the default oracle.
        seed: Seed of the default oracle; with an oracle passed in, its own seed is used.
        endpoints: Which layers of a candidate are compared with the teacher: their names (every candidate
            must have them), or a callable returning them for a model. By default
            `keras_sage.features.default_endpoints`: the layers named by keras-sage's convention
            (`layer_<n>`, `cell_<n>`, `L<n>`) when a model has them, otherwise the end of each stage, the
            rule `register_teacher` uses for a teacher; so a KerasTuner user's own `build_model(hp)`
            works as it is.
        probe: Optional `(images, labels)` the teacher must have been registered on; a teacher file with a
            different probe fingerprint is refused.
        probe_preprocessing: Optional callable applied to probe image batches before the candidate sees
            them (see `TeacherGuidedScorer`).
        max_features: Features subsampled per student endpoint for its RDM.
        memory_budget: Bytes that student feature extraction may use (endpoints are grouped to fit).
        probe_batch_size: Probe images per forward pass.
        similarity: How a student RDM is compared with a teacher RDM (`keras_sage.rsa.compare`'s
            `method`); the paper's is `"pearson"`. `"cka"` is linear CKA of the features, for teachers
            registered with image-level euclidean RDMs.
        layer_match: How S_i is taken over the student endpoints: `"max"` (the paper's), `"mean"`, or
            `"fixed"` with `layer_mapping` (teacher layer → student endpoint). Each trial's
            `teacher_guidance.json` records the similarity and matching that scored it.
        layer_mapping: Teacher layer name → student endpoint name, with `layer_match="fixed"`.
        normalise_by_ceiling: Whether TG is the mean of S_i / ceiling_i over the regions' noise ceilings
            instead of the mean of S_i (see `TeacherGuidedScorer`).
        proxy_weights: β of the field's proxies at initialisation to add to the score, by name:
            score = P + α·TG + Σ β·`keras_sage.score.proxy_term(x)` (e.g. `{"synflow": 0.05}`: 0.05 per
            decade of synflow). Each weighed proxy is computed on the first 64 training images before the
            candidate trains, and recorded as a trial metric.
        teacher_schedule: `Bootstrap(every=K, mature_epochs=E)` to replace the teacher during the search
            by the best candidate so far whenever it beats it (see `keras_sage.tuners.schedule`); `None`
            keeps the teacher. Each trial records the teacher version that scored it
            (`teacher_version`).
        **kwargs: Passed to `keras_tuner.Tuner`: `directory`, `project_name`, `overwrite`,
            `distribution_strategy`, `max_model_size`, `tuner_id`, ...

    Example:

    ```python
    tuner = SageTuner(
        CNNSearchSpace(max_layers=10, num_classes=10, input_shape=(16, 16, 1)),
        teacher="teacher.h5",
        alpha=1.0,
        premature_epochs=2,
        max_trials=20,
        directory="searches",
        project_name="tg_sage",
    )
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), batch_size=64)
    tuner.results_summary()
    best = tuner.rerank(top_k=3, epochs=20, x=x_train, y=y_train, validation_data=(x_val, y_val))
    tuner.search_cost()
    ```
    """

    def __init__(
        self,
        hypermodel: keras_tuner.HyperModel | Callable[[keras_tuner.HyperParameters], keras.Model],
        teacher: TeacherStore | str | os.PathLike[str],
        alpha: float = DEFAULT_ALPHA,
        premature_epochs: int | None = None,
        premature_steps: int | None = None,
        oracle: keras_tuner.Oracle | None = None,
        max_trials: int = 10,
        seed: int | None = None,
        endpoints: Endpoints | None = None,
        probe: tuple[np.ndarray, np.ndarray | None] | None = None,
        probe_preprocessing: Callable[[np.ndarray], Any] | None = None,
        max_features: int | None = DEFAULT_MAX_FEATURES,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        probe_batch_size: int = 128,
        similarity: str = "pearson",
        layer_match: str = "max",
        layer_mapping: Mapping[str, str] | None = None,
        normalise_by_ceiling: bool = False,
        teacher_schedule: Bootstrap | None = None,
        proxy_weights: Mapping[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("executions_per_trial", 1) != 1:
            raise ValueError("SageTuner trains each candidate once per trial; executions_per_trial must be 1")
        if premature_epochs is not None and premature_steps is not None:
            raise ValueError("give either premature_epochs or premature_steps, not both")
        if premature_epochs is None and premature_steps is None:
            premature_epochs = 2
        self.premature_epochs = (
            None if premature_epochs is None else check_positive_int("premature_epochs", premature_epochs)
        )
        self.premature_steps = (
            None if premature_steps is None else check_positive_int("premature_steps", premature_steps)
        )
        # Every scorer of the search, the first and one per bootstrapped teacher version, has this config.
        config = ScoringConfig(
            alpha=alpha,
            similarity=similarity,
            layer_match=layer_match,
            layer_mapping=layer_mapping,
            normalise_by_ceiling=normalise_by_ceiling,
            max_features=max_features,
            seed=0 if seed is None else seed,
            probe_batch_size=probe_batch_size,
            memory_budget=memory_budget,
            probe_preprocessing=probe_preprocessing,
            proxy_weights=dict(proxy_weights or {}),
        )
        self.scorer = TeacherGuidedScorer(teacher, config, expected_probe=probe)
        self.teacher_schedule = teacher_schedule
        if teacher_schedule is not None:
            check_schedule(teacher_schedule, oracle, layer_match, normalise_by_ceiling)
            teacher_schedule.start(self.scorer.teacher)
        if probe_preprocessing is None:
            _check_probe_shape(self.scorer.teacher, getattr(hypermodel, "input_shape", None), "hypermodel's")
        self.endpoints = _endpoints_callable(endpoints)
        self._verbose = 1
        self._trial_errors: dict[str, Exception] = {}
        self._probe_checked = False
        _compat.require_trial_end_hook()
        # Examples processed by SGD: during the search (M1·E1) and during reranking (M2·E2).
        self.search_examples = 0
        self.rerank_examples = 0
        self.rerank_results: list[RerankResult] = []
        if oracle is None:
            max_trials = check_positive_int("max_trials", max_trials)
            oracle = keras_tuner.oracles.RandomSearchOracle(
                objective=SCORE_OBJECTIVE,
                max_trials=max_trials,
                seed=seed,
                max_consecutive_failed_trials=DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS,
            )
            _compat.keep_oracle_seed(oracle, seed)
        pareto.use_reported_objectives(oracle)
        journal_mirror.mirror_each_trial(oracle)
        _compat.require_initial_space_hook()
        _compat.install_atomic_json_writes()
        self._timeouts = distributed.Timeouts.from_environment()
        # On a worker KerasTuner replaces `self.oracle` by a client of the chief's; trials keep this seed.
        self._seed_oracle = oracle
        self._heartbeat: distributed.Heartbeat | None = None
        # What a stopped heartbeat found: the message of a chief that stopped answering, or None.
        self._lost_chief: str | None = None
        # One writer per project, any mode: locked, and the state file the project recorded.
        self._project = project_record.open_for_tuner(self, kwargs)
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.trainer = CandidateTrainer(self, self._trial_seed)
        self._bootstrap_runner = (
            None
            if teacher_schedule is None
            else BootstrapRunner(teacher_schedule, self.oracle, self.project_dir, self.endpoints)
        )
        if _compat.distributed_role() == "worker":
            distributed.bound_worker_client(self.oracle, self._timeouts, self.tuner_id)

    def _populate_initial_space(self) -> None:
        """Declares the search space without building models when the hypermodel can declare it whole.

        KerasTuner finds conditional hyperparameters by building the model once per conditional scope
        (20 builds for a 20-layer `CNNSearchSpace`); a hypermodel that overrides `declare_hyperparameters`
        declares every hyperparameter, active or not, so no build is needed. (This overrides a private
        KerasTuner hook; `_compat.require_initial_space_hook` checks that KerasTuner still calls it.)
        """
        declares_whole_space = (
            type(self.hypermodel).declare_hyperparameters
            is not keras_tuner.HyperModel.declare_hyperparameters
        )
        if not declares_whole_space:
            _compat.populate_initial_space_by_building(self)
            return
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """Starts a worker's heartbeat for the trial (see `keras_sage.tuners.distributed`)."""
        super().on_trial_begin(trial)
        self._lost_chief = None
        if _compat.distributed_role() == "worker":
            self._heartbeat = distributed.Heartbeat(
                self.oracle, trial.trial_id, self._timeouts, self.tuner_id
            )

    def _stop_heartbeat(self) -> None:
        """Stops a worker's heartbeat for its trial, if one runs, keeping what it found (`_lost_chief`)."""
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()
            self._lost_chief = heartbeat.lost or self._lost_chief

    def _get_tuner_fname(self) -> str:
        """The state file of the process that holds the oracle: the one its project recorded, whatever the
        tuner id (`keras_sage.tuners.project_record`); a worker's own `<tuner id>.json`."""
        if self._project is None:
            return cast("str", super()._get_tuner_fname())
        return os.path.join(self.project_dir, self._project.state_file)

    def reload(self) -> None:
        """Reloads the project, as KerasTuner does, running again only the trials that never ended and
        ending again those that ended but that the oracle does not list (`project_record.settle_trials`)."""
        super().reload()
        if _compat.distributed_role() != "worker":
            project_record.settle_trials(self.oracle)

    @property
    def alpha(self) -> float:
        """α, the weight of TG in the score."""
        return self.scorer.alpha

    @property
    def objective(self) -> TeacherGuidedScorer:
        """Deprecated: the teacher-guided scorer is `scorer`; `oracle.objective` is KerasTuner's Objective."""
        warnings.warn(
            "SageTuner.objective is now SageTuner.scorer; the old name will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.scorer

    def run_trial(
        self, trial: keras_tuner.engine.trial.Trial, *fit_args: Any, **fit_kwargs: Any
    ) -> dict[str, Any]:
        """Builds, trains for the premature budget, and scores one candidate.

        Returns:
            The trial's metrics: `score`, `premature_accuracy`, `teacher_guidance`, `S_<teacher layer>`,
            `params` and `flops` (the compactness columns of the paper's Tables 2 and 3; `flops` only if
            the model's input size is fixed), `examples_processed`, and `teacher_version` (the version of
            the teacher file that scored it; 0 unless a teacher schedule replaced the teacher).

        Raises:
            keras_tuner.errors.FailedTrialError: The candidate cannot be built or its training diverged.
        """
        try:
            return self._run_trial(trial, *fit_args, **fit_kwargs)
        except Exception as error:
            self._trial_errors[trial.trial_id] = error
            raise

    def _run_trial(
        self, trial: keras_tuner.engine.trial.Trial, *fit_args: Any, **fit_kwargs: Any
    ) -> dict[str, Any]:
        data = _training_data(fit_args, fit_kwargs)
        hp = trial.hyperparameters
        self._bootstrap_if_due(data)
        keras.utils.set_random_seed(self._trial_seed(trial.trial_id))
        try:
            model = _compat.build_model(self, hp)
        except contract.CandidateBuildError as error:
            raise keras_tuner.errors.FailedTrialError(f"candidate cannot be built: {error}") from error
        if not self._probe_checked and self.scorer.probe_preprocessing is None:
            try:
                _check_probe_shape(self.scorer.teacher, model.input_shape, "candidate's")
            except ValueError as error:
                raise keras_tuner.errors.FatalValueError(str(error)) from None
            self._probe_checked = True

        proxies = self._proxies_at_initialisation(model, data)
        self._warm_start(trial, model)
        size = size_metrics(model)
        epochs, steps, initial_epoch = self._premature_budget(trial)
        run = self.trainer.fit(trial, model, data, epochs, steps, initial_epoch=initial_epoch)
        self.search_examples += run.examples
        if run.diverged:
            raise keras_tuner.errors.FailedTrialError(run.failure())

        endpoints = None if self.endpoints is None else self.endpoints(model)
        result = self.scorer.evaluate(
            model, data.validation_data, endpoints=endpoints, batch_size=data.batch_size, proxies=proxies
        )
        if not math.isfinite(result.score):
            raise keras_tuner.errors.FailedTrialError(f"the candidate's score is not finite: {result}")

        model.save_weights(_compat.checkpoint_path(self, trial.trial_id))
        _write_json(_compat.build_config_path(self, trial.trial_id), model.get_build_config())
        config = self.scorer.config
        _write_json(
            os.path.join(self.get_trial_dir(trial.trial_id), project_files.TEACHER_GUIDANCE_FILE),
            {
                project_files.ALPHA: result.alpha,
                project_files.SIMILARITY: config.similarity,
                project_files.LAYER_MATCH: config.layer_match,
                project_files.LAYER_MAPPING: self.scorer.layer_mapping,
                project_files.NORMALISE_BY_CEILING: config.normalise_by_ceiling,
                project_files.SIMILARITIES: result.similarities,
                project_files.BEST_STUDENT_LAYERS: result.best_student_layers,
                contract.EXAMPLES_PROCESSED: run.examples,
                contract.TEACHER_VERSION: self.scorer.teacher.version,
                project_files.TEACHER_FILE: str(self.scorer.teacher.path),
            },
        )
        metrics = {
            **result.metrics(),
            **size,
            contract.EXAMPLES_PROCESSED: float(run.examples),
            contract.TEACHER_VERSION: float(self.scorer.teacher.version),
        }
        log_trial_metrics(self, trial, data.fit_kwargs, metrics)
        return pareto.reported_metrics(self.oracle, metrics)

    def _proxies_at_initialisation(self, model: keras.Model, data: TrainingData) -> dict[str, float]:
        """The proxies the score weighs (`proxy_weights`), on the first training batch, before training."""
        names = list(self.scorer.config.proxy_weights)
        if not names:
            return {}
        images, labels = first_batch(data, PROXY_BATCH_SIZE)
        return zero_cost_proxies(model, images, labels, names=names)

    def _bootstrap_if_due(self, data: TrainingData) -> None:
        """Runs the teacher schedule's step if one is due before this trial (`BootstrapRunner`) and saves
        the tuner's state after it.

        Raises:
            keras_tuner.errors.FatalRuntimeError: The step failed (see `BootstrapRunner.run_if_due`).
        """
        if self._bootstrap_runner is None:
            return
        scorer = self._bootstrap_runner.run_if_due(self.scorer, self.trainer, data)
        if scorer is not None:
            self.scorer = scorer
            self.save()

    def _premature_budget(self, trial: keras_tuner.engine.trial.Trial) -> tuple[int | None, int | None, int]:
        """The trial's training: `(epochs, steps, initial_epoch)`; here the premature budget, from scratch.

        A subclass with a budget per trial (`SageHyperband`'s rungs) overrides this.
        """
        return self.premature_epochs, self.premature_steps, 0

    def _warm_start(self, trial: keras_tuner.engine.trial.Trial, model: keras.Model) -> None:
        """Loads the weights a trial's candidate starts from; here none: every candidate trains from its
        initialization. A subclass that continues earlier trials (`SageHyperband`) overrides this."""

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Runs the search, as KerasTuner's `search`; in parallel tuning, as chief or worker.

        A failed trial prints one line (its traceback goes to its `trial.log`). A chief serves its oracle
        until the search has ended and returns within half a second of the last worker being told to stop
        (KerasTuner's polls every 20 s); a worker that loses its chief raises `ChiefUnreachableError`
        within a bounded time. See `keras_sage.tuners.distributed` for both, and for the heartbeats that
        re-queue the trial of a worker that dies.

        Args:
            *fit_args: Training data, as for `keras.Model.fit` (e.g. `x, y`, or a dataset).
            **fit_kwargs: `validation_data` (required), `batch_size`, `callbacks`, and `verbose` (0 prints
                nothing per trial).

        Raises:
            OSError: The project directory cannot be written (read-only or full), naming it.
            SearchStoppedError: Too many trials failed in a row; the message names their causes.
            keras_sage.tuners.distributed.ChiefUnreachableError: A worker could not reach its chief.
            keras_sage.tuners.handshake.ConfigMismatchError: The chief refused this worker: another config
                (the message names the first differing setting), or its name taken by a live worker.
            keras_sage.project_lock.ProjectLockedError: Another process took the project's lock since an
                earlier `search` of this tuner released it.
        """
        if self._project is None:
            self._search(*fit_args, **fit_kwargs)
            return
        self._project.lock.acquire()
        try:
            self._search(*fit_args, **fit_kwargs)
        finally:
            self._project.lock.release()

    def _search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """`search` as chief, worker or single process (the project's lock held, if this process takes it)."""
        check_writable_directory(self.project_dir, "the project directory")
        self._verbose = int(fit_kwargs.get("verbose", 1))
        role = _compat.distributed_role()
        fingerprint = handshake.search_fingerprint(self, fit_args, fit_kwargs) if role else {}
        if role == "chief":
            if "verbose" in fit_kwargs:
                self.oracle.verbose = fit_kwargs["verbose"]
            self.save()
            distributed.serve_chief(self.oracle, self._timeouts, fingerprint)
            return
        if role == "worker":
            distributed.present_config(self.oracle, self.tuner_id, fingerprint)
        self._lost_chief = None
        try:
            with _compat.no_trial_tracebacks():
                super().search(*fit_args, **fit_kwargs)
        except KeyboardInterrupt:
            # The heartbeat's interrupt may land after the trial's end stopped it (in `on_trial_end`).
            self._stop_heartbeat()
            if self._lost_chief is None:
                raise
            raise distributed.ChiefUnreachableError(self._lost_chief) from None
        finally:
            self._stop_heartbeat()

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """Ends a trial as KerasTuner does; a failed one gets a one-line message and its traceback goes to
        its `trial.log`; a worker's heartbeat for the trial stops. The examples the trial trained on are
        saved before the oracle ends it (so a trial that `reload` ends again from its `trial.json` is
        counted).

        Raises:
            SearchStoppedError: `max_consecutive_failed_trials` trials failed in a row; the message names
                their causes.
        """
        self._log_failure(trial)
        # This process's state alone (`BaseTuner.save` would write the oracle's again): what KerasTuner's
        # `Stateful.save`, next after `BaseTuner` in the order of bases, writes.
        super(keras_tuner.engine.base_tuner.BaseTuner, self).save(self._get_tuner_fname())
        try:
            super().on_trial_end(trial)
        except RuntimeError:
            stopped = consecutive_failures(self.oracle)
            if stopped is None:
                raise
            raise stopped from None
        finally:
            self._stop_heartbeat()

    def _log_failure(self, trial: keras_tuner.engine.trial.Trial) -> None:
        """A failed trial's traceback to its `trial.log`, one line to its message (and the terminal)."""
        if trial.status not in FAILED_STATUSES:
            return
        error = self._trial_errors.pop(trial.trial_id, None)
        reason = failure_reason(error, trial.message)
        log = self.trial_log_path(trial.trial_id)
        write_failure_log(log, str(trial.message or reason))
        trial.message = reason
        if self._verbose:
            print(f"Trial {trial.trial_id} failed: {reason} (traceback in {log})", flush=True)

    def pareto_front(self) -> list[keras_tuner.engine.trial.Trial]:
        """The completed trials no other completed trial beats on every objective, in the order they
        started (`keras_sage.tuners.pareto`; with one objective, the best trials)."""
        return pareto.front_trials(self.oracle)

    def results_summary(self, num_trials: int = 10) -> None:
        """KerasTuner's summary of the best trials, the Pareto front's members first and marked."""
        pareto.results_summary(self, num_trials)

    def trial_log_path(self, trial_id: str) -> str:
        """The file that holds a failed trial's traceback, in the trial's folder."""
        return os.path.join(self.get_trial_dir(trial_id), project_files.TRIAL_LOG)

    def rerank(
        self,
        top_k: int | None,
        epochs: int,
        *fit_args: Any,
        validation_data: Any,
        front: bool = False,
        **fit_kwargs: Any,
    ) -> list[RerankResult]:
        """Trains the `top_k` best candidates of the search from scratch for `epochs` (M2 = top_k, E2).

        The paper's post-search step (§4.3): premature scores do not rank mature performance perfectly,
        so the best few candidates are trained longer and the one with the highest validation accuracy
        is kept. The results and the examples processed are saved with the tuner's state.

        Args:
            top_k: How many of the best completed trials to train; with `front`, how many of the Pareto
                front's most spread members (None: the whole front).
            epochs: Training epochs for each.
            front: Train the Pareto front (`pareto_front`) instead of the best by score.
            *fit_args: Training data, as for `search` (e.g. `x, y`).
            validation_data: `(x_val, y_val)` for the mature accuracy.
            **fit_kwargs: Passed to `HyperModel.fit` (e.g. `batch_size`).

        Returns:
            `RerankResult`s, highest mature accuracy first.
        """
        epochs = check_positive_int("epochs", epochs)
        trials = pareto.rerank_candidates(self.oracle, top_k, front)
        data = TrainingData(fit_args, fit_kwargs, validation_data)
        results = []
        for trial in trials:
            mature = self.trainer.train_to_maturity(trial, epochs, data)
            self.rerank_examples += mature.examples
            results.append(
                RerankResult(
                    trial_id=trial.trial_id,
                    score=pareto.search_score(self.oracle, trial),
                    mature_accuracy=mature.accuracy,
                    examples_processed=mature.examples,
                )
            )
        results.sort(
            key=lambda result: -np.inf if math.isnan(result.mature_accuracy) else result.mature_accuracy,
            reverse=True,
        )
        self.rerank_results.extend(results)
        self.save()
        return results

    @property
    def bootstrap_examples(self) -> int:
        """Examples processed by the teacher schedule's steps: the sum over its recorded steps (a step whose
        version was written before a crash included), 0 without a schedule."""
        if self.teacher_schedule is None:
            return 0
        return sum(step.examples_processed for step in self.teacher_schedule.steps)

    def search_cost(self) -> int:
        """The cost of the search so far in examples processed by SGD: M1·E1 + M2·E2 (paper §4.3), plus
        the training of the teacher schedule's steps (`bootstrap_examples`)."""
        return self.search_examples + self.rerank_examples + self.bootstrap_examples

    def get_state(self) -> dict[str, Any]:
        state = cast("dict[str, Any]", super().get_state())
        state.update(
            {
                project_files.SEARCH_EXAMPLES: self.search_examples,
                project_files.RERANK_EXAMPLES: self.rerank_examples,
                project_files.RERANK_RESULTS: [result.as_dict() for result in self.rerank_results],
                project_files.BOOTSTRAP_EXAMPLES: self.bootstrap_examples,
            }
        )
        if self.teacher_schedule is not None:
            state[project_files.TEACHER_SCHEDULE] = self.teacher_schedule.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.search_examples = int(state.get(project_files.SEARCH_EXAMPLES, 0))
        self.rerank_examples = int(state.get(project_files.RERANK_EXAMPLES, 0))
        self.rerank_results = [
            RerankResult(**result) for result in state.get(project_files.RERANK_RESULTS, [])
        ]
        schedule_state = state.get(project_files.TEACHER_SCHEDULE)
        if (schedule_state is None) != (self.teacher_schedule is None):
            raise ValueError(
                f"the project {self.project_dir} was searched "
                + ("with" if schedule_state is not None else "without")
                + " a teacher schedule; resume it "
                + (
                    "with the same teacher_schedule=Bootstrap(...)"
                    if schedule_state is not None
                    else "without one"
                )
            )
        if self.teacher_schedule is not None and schedule_state is not None:
            self.teacher_schedule.set_state(schedule_state)
            if self.teacher_schedule.teacher_file is not None:
                path = os.path.join(self.project_dir, self.teacher_schedule.teacher_file)
                teacher = TeacherStore.open(path).at_version(self.teacher_schedule.version)
                self.scorer = self.scorer.with_teacher(teacher)

    def _trial_seed(self, trial_id: str) -> int:
        return int((self._seed_oracle.seed + int(trial_id)) % 2**31)


def _check_probe_shape(teacher: TeacherStore, input_shape: Any, whose: str) -> None:
    """Refuses a teacher whose probe images do not have the candidates' input shape (None: any size)."""
    if not isinstance(input_shape, (tuple, list)) or not all(
        size is None or isinstance(size, int) for size in input_shape
    ):
        return
    expected = tuple(input_shape)
    if len(expected) == len(teacher.probe_images.shape):
        expected = expected[1:]
    probe = tuple(teacher.probe_images.shape[1:])
    if len(probe) != len(expected) or any(
        size is not None and size != found for size, found in zip(expected, probe, strict=True)
    ):
        raise ValueError(
            f"teacher file {teacher.path}: its probe images have shape {probe}, but the {whose} input shape "
            f"is {expected}; register the teacher on probe images of the candidates' input shape (or pass "
            "probe_preprocessing)"
        )


def _training_data(fit_args: tuple[Any, ...], fit_kwargs: dict[str, Any]) -> TrainingData:
    """What `search` was given to train and validate on, checked.

    Raises:
        keras_tuner.errors.FatalValueError: No `validation_data`, or a budget argument (`epochs`,
            `steps_per_epoch`) that the tuner's premature budget sets.
    """
    fit_kwargs = dict(fit_kwargs)
    validation_data = fit_kwargs.pop("validation_data", None)
    if validation_data is None:
        raise keras_tuner.errors.FatalValueError(
            "SageTuner.search needs validation_data=(x_val, y_val) to measure premature accuracy P"
        )
    for budget_argument in ("epochs", "steps_per_epoch"):
        if budget_argument in fit_kwargs:
            raise keras_tuner.errors.FatalValueError(
                f"{budget_argument} is set by SageTuner's premature_epochs / premature_steps, not by search()"
            )
    return TrainingData(tuple(fit_args), fit_kwargs, validation_data)


def _endpoints_callable(endpoints: Endpoints | None) -> Callable[[keras.Model], Sequence[str]] | None:
    """`SageTuner(endpoints=...)` as a callable of the model (None: the scorer's default rule).

    Raises:
        TypeError: `endpoints` is neither layer names nor a callable.
    """
    if endpoints is None or callable(endpoints):
        return endpoints
    if isinstance(endpoints, str) or not all(isinstance(name, str) for name in endpoints):
        raise TypeError(
            "endpoints must be a list of layer names or a callable returning them for a model; "
            f"got {endpoints!r}"
        )
    names = list(endpoints)
    if not names:
        raise ValueError("endpoints is empty: name at least one layer to compare with the teacher")

    def named_layers(model: keras.Model) -> Sequence[str]:
        return names

    return named_layers


def _write_json(path: str, data: Any) -> None:
    """Writes `data` as JSON, atomically."""
    write_atomically(path, lambda file: file.write(json.dumps(data, indent=2).encode()))
