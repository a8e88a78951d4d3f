"""Running a teacher bootstrap step (paper §5) for a search: `BootstrapRunner`.

`keras_sage.tuners.schedule` says when a step is due and what it decided (`Bootstrap`, `BootstrapStep`);
this module does a step's work: it finds the best completed trial, has it trained to maturity (by the
tuner's `CandidateTrainer`, as `rerank` trains), computes the student's RDMs
on the teacher's probe images, writes them as the next version of the project's teacher file, and hands
back the scorer to use from then on. `SageTuner` holds one runner when it has a teacher schedule.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np

from keras_sage import contract
from keras_sage._atomic import write_atomically
from keras_sage._errors import first_line
from keras_sage.features import default_endpoints
from keras_sage.objective import TeacherGuidedScorer
from keras_sage.project_files import BOOTSTRAP_TEACHER_FILE
from keras_sage.teachers import TeacherStore
from keras_sage.teachers.register import model_layer_rdms
from keras_sage.tuners import _compat
from keras_sage.tuners.schedule import Bootstrap, BootstrapStep
from keras_sage.tuners.training import CandidateTrainer, TrainingData

__all__ = ["BootstrapRunner", "check_schedule"]

_COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED


class BootstrapRunner:
    """Runs a teacher schedule's due steps for one search.

    Args:
        schedule: The search's `Bootstrap` schedule, already started on the first teacher.
        oracle: The search's oracle: its completed trials say when a step is due, its best trial is the
            student.
        project_dir: The search's project directory, where the bootstrapped teacher file is written.
        endpoints: Callable returning the names of a model's representation layers; defaults to
            `keras_sage.features.default_endpoints`.

    Example:

    ```python
    runner = BootstrapRunner(schedule, tuner.oracle, tuner.project_dir)
    data = TrainingData((x_train, y_train), {"batch_size": 64}, (x_val, y_val))
    scorer = runner.run_if_due(tuner.scorer, tuner.trainer, data)
    if scorer is not None:  # a step ran
        tuner.scorer = scorer
    ```
    """

    def __init__(
        self,
        schedule: Bootstrap,
        oracle: keras_tuner.Oracle,
        project_dir: str,
        endpoints: Callable[[keras.Model], Sequence[str]] | None = None,
    ) -> None:
        self.schedule = schedule
        self.oracle = oracle
        self.project_dir = project_dir
        self.endpoints = endpoints

    def run_if_due(
        self, scorer: TeacherGuidedScorer, trainer: CandidateTrainer, data: TrainingData
    ) -> TeacherGuidedScorer | None:
        """Runs the schedule's step if one is due (see `keras_sage.tuners.schedule`).

        Args:
            scorer: The scorer in force, whose teacher a student must beat.
            trainer: The search's trainer, which trains the student for the schedule's `mature_epochs`.
            data: What the search trains and validates on.

        Returns:
            `None` if no step was due; otherwise the scorer to use from now on: a new one for an accepted
            version, else `scorer`.

        Raises:
            keras_tuner.errors.FatalRuntimeError: The step failed (e.g. the project's teacher file could
                not be written); the search stops rather than score later trials against the wrong teacher.
        """
        completed = sum(trial.status == _COMPLETED for trial in self.oracle.trials.values())
        step = self.schedule.due_step(completed)
        if step is None:
            return None
        try:
            teacher = self._run(step, completed, scorer, trainer, data)
        except keras_tuner.errors.FatalError:
            raise
        except Exception as error:
            raise keras_tuner.errors.FatalRuntimeError(
                f"teacher bootstrap step {step} failed: {type(error).__name__}: {first_line(error)}"
            ) from error
        return scorer if teacher is None else scorer.with_teacher(teacher)

    def _run(
        self,
        step: int,
        completed: int,
        scorer: TeacherGuidedScorer,
        trainer: CandidateTrainer,
        data: TrainingData,
    ) -> TeacherStore | None:
        """One bootstrap step: train the best trial to maturity and, if it beats the teacher, add its RDMs
        as the next teacher version. Returns the teacher at that version, or `None` if it was not added."""
        schedule = self.schedule
        assert schedule.current_accuracy is not None  # Set by `Bootstrap.start`.
        adopted = self._adopt_written_version(step, completed)
        if adopted is not None:
            return adopted
        base: dict[str, Any] = {
            "step": step,
            "completed_trials": completed,
            "teacher_accuracy": schedule.current_accuracy,
        }
        best = [trial for trial in self.oracle.get_best_trials(1) if trial.status == _COMPLETED]
        if not best:
            schedule.record(
                BootstrapStep(
                    **base,
                    trial_id=None,
                    mature_accuracy=math.nan,
                    accepted=False,
                    version=schedule.version,
                    examples_processed=0,
                    reason="no completed trial to train",
                )
            )
            return None
        trial = best[0]
        earlier = schedule.trained_trial(trial.trial_id)
        if earlier is not None:
            schedule.record(
                BootstrapStep(
                    **base,
                    trial_id=trial.trial_id,
                    mature_accuracy=earlier.mature_accuracy,
                    accepted=False,
                    version=schedule.version,
                    examples_processed=0,
                    reason=f"the best trial is still trial {trial.trial_id}, trained at step {earlier.step}",
                )
            )
            return None
        mature = trainer.train_to_maturity(trial, schedule.mature_epochs, data)
        model, accuracy, examples = mature.model, mature.accuracy, mature.examples
        outcome: dict[str, Any] = {
            "trial_id": trial.trial_id,
            contract.MATURE_ACCURACY: accuracy,
            contract.EXAMPLES_PROCESSED: examples,
        }
        if not schedule.beats_teacher(accuracy):
            reason = (
                "its training diverged"
                if math.isnan(accuracy)
                else f"its mature accuracy {accuracy:.4f} does not beat the teacher's "
                f"{schedule.current_accuracy:.4f}"
                + (f" by more than {schedule.min_improvement:g}" if schedule.min_improvement else "")
            )
            schedule.record(
                BootstrapStep(**base, **outcome, accepted=False, version=schedule.version, reason=reason)
            )
            return None
        rdms, problem = self.student_rdms(model, scorer)
        if problem is not None:
            schedule.record(
                BootstrapStep(**base, **outcome, accepted=False, version=schedule.version, reason=problem)
            )
            return None
        teacher = self._add_teacher_version(step, trial, rdms, accuracy, examples, scorer.teacher)
        schedule.record(
            BootstrapStep(
                **base,
                **outcome,
                accepted=True,
                version=teacher.version,
                reason=f"its mature accuracy {accuracy:.4f} beats the teacher's "
                f"{schedule.current_accuracy:.4f}",
            ),
            teacher_file=BOOTSTRAP_TEACHER_FILE,
        )
        return teacher

    def student_rdms(
        self, model: keras.Model, scorer: TeacherGuidedScorer
    ) -> tuple[dict[str, Any], str | None]:
        """The RDMs of a student's representation endpoints on the teacher's probe images.

        They are computed as `scorer` computes a candidate's (its feature subsample, seed and
        preprocessing), with the metric and level of its teacher's first RDM; endpoints whose RDM is
        constant are left out.

        Args:
            model: The student.
            scorer: The scorer in force.

        Returns:
            The RDMs by endpoint name and `None`, or no RDMs and a reason why there are none.
        """
        teacher = scorer.teacher
        first = teacher.layer_info(teacher.layer_names[0])
        endpoints = default_endpoints(model) if self.endpoints is None else list(self.endpoints(model))
        if not endpoints:
            return {}, "the student has no representation endpoints"
        try:
            rdms = model_layer_rdms(
                model,
                teacher.probe_images,
                teacher.probe_labels,
                endpoints,
                metric=first["metric"],
                level=first["level"],
                max_features=scorer.max_features,
                batch_size=scorer.batch_size,
                seed=scorer.seed,
                allow_constant=True,
                preprocessing=scorer.probe_preprocessing,
            )
        except ValueError as error:
            return {}, f"its RDMs cannot be computed: {first_line(error)}"
        varied = {name: value for name, value in rdms.items() if np.ptp(value.values) > 0}
        if not varied:
            return {}, f"every endpoint of the student has a constant RDM ({', '.join(rdms)})"
        return varied, None

    def _add_teacher_version(
        self,
        step: int,
        trial: keras_tuner.engine.trial.Trial,
        rdms: dict[str, Any],
        accuracy: float,
        examples: int,
        current: TeacherStore,
    ) -> TeacherStore:
        """Adds a student's RDMs as the next version of the project's teacher file (copied from the
        current teacher's file at the first step) and returns the view at that version."""
        schedule = self.schedule
        path = os.path.join(self.project_dir, BOOTSTRAP_TEACHER_FILE)
        if not os.path.exists(path):
            with open(current.path, "rb") as original:
                data = original.read()
            write_atomically(path, lambda file: file.write(data))
        store = TeacherStore.open(path, writable=True)
        if store.fingerprint != current.fingerprint:
            raise ValueError(f"{path} holds another probe set than the search's teacher {current.path}")
        version = store.add_version(
            rdms,
            validation_accuracy=accuracy,
            source=f"bootstrap step {step} of {self.project_dir}: trial {trial.trial_id}",
            parent_version=schedule.version,
            trial_id=trial.trial_id,
            hyperparameters=_plain(trial.hyperparameters.values),
            training={
                "epochs": schedule.mature_epochs,
                contract.EXAMPLES_PROCESSED: examples,
                "bootstrap_step": step,
            },
        )
        return store.at_version(version)

    def _adopt_written_version(self, step: int, completed: int) -> TeacherStore | None:
        """After a crash between writing a step's version and saving the tuner's state: takes that version
        from the project's teacher file instead of training again. Returns the teacher at that version, or
        `None` if no version was written for the step."""
        schedule = self.schedule
        assert schedule.current_accuracy is not None  # Set by `Bootstrap.start`.
        path = os.path.join(self.project_dir, BOOTSTRAP_TEACHER_FILE)
        if not os.path.exists(path):
            return None
        store = TeacherStore.open(path)
        # Only a version this project's step wrote: the file may be a copy of another search's teacher file.
        source = f"bootstrap step {step} of {self.project_dir}:"
        written = [
            version
            for version in store.versions[1:]
            if store.version_info(version)["training"].get("bootstrap_step") == step
            and str(store.version_info(version)["source"]).startswith(source)
            and version > schedule.version
        ]
        if not written:
            return None
        info = store.version_info(written[-1])
        schedule.record(
            BootstrapStep(
                step=step,
                completed_trials=completed,
                trial_id=info["trial_id"],
                mature_accuracy=info["validation_accuracy"],
                teacher_accuracy=float(schedule.current_accuracy),
                accepted=True,
                version=written[-1],
                examples_processed=int(info["training"].get(contract.EXAMPLES_PROCESSED, 0)),
                reason="its version was written before the search stopped",
            ),
            teacher_file=BOOTSTRAP_TEACHER_FILE,
        )
        return store.at_version(written[-1])


def check_schedule(
    schedule: Bootstrap, oracle: keras_tuner.Oracle | None, layer_match: str, normalise_by_ceiling: bool
) -> None:
    """Refuses a teacher schedule in a setting it does not support, naming the reason.

    Args:
        schedule: The tuner's `teacher_schedule`.
        oracle: The oracle the tuner was given, if any.
        layer_match: The tuner's `layer_match`.
        normalise_by_ceiling: The tuner's `normalise_by_ceiling`.

    Raises:
        TypeError: `schedule` is not a `Bootstrap`.
        ValueError: Parallel tuning, a Hyperband oracle, `layer_match="fixed"`, `normalise_by_ceiling`,
            or an oracle whose objective is one teacher layer's `S_<layer>`.
    """
    if not isinstance(schedule, Bootstrap):
        raise TypeError(f"teacher_schedule must be a Bootstrap or None; got {type(schedule).__name__}")
    if _compat.distributed_role() is not None:
        raise ValueError(
            "teacher_schedule=Bootstrap(...) is not supported in parallel tuning: each worker scores with "
            "its own copy of the teacher and only the oracle is shared, so the workers cannot switch to a "
            "new teacher version together; run the search in one process"
        )
    if isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        raise ValueError(
            "teacher_schedule=Bootstrap(...) is not supported with Hyperband: a bracket promotes the best "
            "candidates of a rung, and a teacher version changing within a bracket would compare scores "
            "against different teachers"
        )
    if layer_match == "fixed":
        raise ValueError(
            "teacher_schedule=Bootstrap(...) cannot be used with layer_match='fixed': its layer_mapping "
            "names the first teacher's layers, and a bootstrapped version has the student's layers"
        )
    if normalise_by_ceiling:
        raise ValueError(
            "teacher_schedule=Bootstrap(...) cannot be used with normalise_by_ceiling=True: a bootstrapped "
            "version is a model's, with no noise ceilings"
        )
    objective = getattr(getattr(oracle, "objective", None), "name", None)
    if isinstance(objective, str) and contract.teacher_layer_of_metric(objective) is not None:
        raise ValueError(
            f"teacher_schedule=Bootstrap(...) cannot be used with the objective {objective!r}: it names a "
            "layer of the first teacher, and a bootstrapped version has the student's layers"
        )


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameter values as plain Python values (numpy scalars converted), for JSON."""
    return {name: value.item() if isinstance(value, np.generic) else value for name, value in values.items()}
