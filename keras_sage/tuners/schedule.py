"""Teacher bootstrapping (paper §5): the best candidate so far becomes the next teacher version.

The paper's discussion proposes "to conduct the architecture search by iteratively substituting the
teacher network with the best network discovered so far", so that a search need not start from a strong
teacher. `SageTuner(..., teacher_schedule=Bootstrap(every=K, mature_epochs=E))` does this:

1. Before a trial runs, if K more trials have completed since the last step (after K, 2K, 3K, ...
   completed trials; failed trials do not count), a bootstrap step is due.
2. The best completed trial so far, by the oracle's objective, is rebuilt from its hyperparameters (seeded
   as its trial was), trained from scratch for E epochs on the search's training data, and evaluated on
   its validation data.
3. If that mature accuracy beats the current teacher's validation accuracy by more than
   `min_improvement`, the student's representation endpoints are registered on the teacher's probe
   images (the same metric, level, feature subsample and seed as the scorer uses) as the next version of
   the teacher file, and every later trial is scored against it. Otherwise the teacher stays.
   If the best trial is the one an earlier step already trained, it is not trained again.

What a step writes: the search never modifies the teacher file it was given. At the first accepted step
that file is copied into the project directory (`BOOTSTRAP_TEACHER_FILE`) and the new version is added to
the copy, which then holds the original teacher as version 0 (or as the version it was given at) and
every bootstrapped version after it, each with its validation accuracy, trial id, hyperparameters and
training (`keras_sage.teachers.TeacherStore.add_version`). Searches that share a teacher file therefore
do not see each other's versions, and a project directory holds everything its trials were scored with.

The current teacher's accuracy: the first teacher's is `Bootstrap(teacher_accuracy=...)` if given,
otherwise the `validation_accuracy` the teacher file records for its version
(`register_teacher(..., validation_accuracy=...)`); a tuner built without either refuses to start. It
must be measured on the same validation data as the search's for the comparison to mean anything. Each
accepted version's accuracy is the one its step measured.

What the oracle sees: each trial's score P + α·TG as it was computed, against the teacher version in force
when the trial ran; the oracle's history is not rewritten (optuna's and KerasTuner's histories are
append-only, and re-scoring would cost a forward pass per past trial at each step). P is comparable across
versions, TG is not: every trial records the version that scored it (`teacher_version`, a metric and a
field of its `teacher_guidance.json`), and `Bootstrap.steps` records each step. The steps' training
counts in `SageTuner.search_cost()`.

Resuming: the schedule's state (its steps, the current version and accuracy) is saved with the tuner's
state after every step, so a resumed search (`overwrite=False`) neither repeats nor skips a step; a
version that was written but whose step was not saved yet (a crash in between) is found in the project's
teacher file and adopted without training again.

Not supported, refused when the tuner is built: KerasTuner's parallel tuning (each worker scores with its
own copy of the teacher and only the oracle is shared, so the workers cannot switch versions together),
Hyperband (a bracket compares the candidates of a rung with each other, which a version change mid-bracket
would make compare scores of different teachers), `layer_match="fixed"` (its mapping names the first
teacher's layers) and `normalise_by_ceiling` (a model's version has no noise ceilings).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from keras_sage import contract
from keras_sage._validation import check_fraction, check_non_negative_number, check_positive_int
from keras_sage.project_files import BOOTSTRAP_TEACHER_FILE
from keras_sage.teachers import TeacherStore

__all__ = ["BOOTSTRAP_TEACHER_FILE", "Bootstrap", "BootstrapStep"]

# The teacher file, in the project directory, that holds the versions a search bootstrapped.


@dataclass(frozen=True)
class BootstrapStep:
    """One bootstrap step of a search.

    Attributes:
        step: n, the step after n·K completed trials.
        completed_trials: Completed trials when the step ran.
        trial_id: The best trial that was trained to maturity, `None` if there was none to train.
        mature_accuracy: Its validation accuracy after `mature_epochs` (NaN if its training diverged).
        teacher_accuracy: The current teacher's validation accuracy it had to beat.
        accepted: Whether it became the next teacher version.
        version: The teacher version in force after the step.
        examples_processed: Training examples processed by SGD in the step (0 if nothing was trained).
        reason: In words, why it was or was not accepted.
    """

    step: int
    completed_trials: int
    trial_id: str | None
    mature_accuracy: float
    teacher_accuracy: float
    accepted: bool
    version: int
    examples_processed: int
    reason: str


class Bootstrap:
    """A teacher schedule for `SageTuner`: every `every` completed trials, the best candidate so far is
    trained to maturity and, if it beats the current teacher, becomes the next teacher version.

    See the module docstring for what a step does, what it writes and what the oracle sees.

    Args:
        every: K, the completed trials between steps.
        mature_epochs: E, the epochs the best candidate is trained for at each step.
        teacher_accuracy: The first teacher's validation accuracy; defaults to the one its teacher file
            records for its version.
        min_improvement: How much a student's accuracy must exceed the teacher's to replace it (0: any
            improvement).

    Example:

    ```python
    tuner = SageTuner(
        CNNSearchSpace(num_classes=10, input_shape=(8, 8, 1)),
        teacher="weak_teacher.h5",
        teacher_schedule=Bootstrap(every=5, mature_epochs=10, teacher_accuracy=0.62),
        oracle=TPEOracle(max_trials=30, seed=1),
        directory="searches",
        project_name="bootstrapped",
    )
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), batch_size=32)
    tuner.teacher_schedule.steps  # one BootstrapStep per step
    ```
    """

    def __init__(
        self,
        every: int,
        mature_epochs: int,
        teacher_accuracy: float | None = None,
        min_improvement: float = 0.0,
    ) -> None:
        self.every = check_positive_int("every", every)
        self.mature_epochs = check_positive_int("mature_epochs", mature_epochs)
        self.teacher_accuracy = (
            None if teacher_accuracy is None else check_fraction("teacher_accuracy", teacher_accuracy)
        )
        self.min_improvement = check_non_negative_number("min_improvement", min_improvement)
        self.steps: list[BootstrapStep] = []
        # The teacher in force: its version, its accuracy, and the project's teacher file once a step wrote
        # one (a path relative to the project directory).
        self.version = 0
        self.current_accuracy: float | None = None
        self.teacher_file: str | None = None

    def __repr__(self) -> str:
        return (
            f"Bootstrap(every={self.every}, mature_epochs={self.mature_epochs}, "
            f"teacher_accuracy={self.teacher_accuracy}, min_improvement={self.min_improvement})"
        )

    def start(self, teacher: TeacherStore) -> None:
        """Takes the first teacher: its version and its accuracy (the argument, else the file's).

        Raises:
            ValueError: Neither `teacher_accuracy` nor the file gives the teacher's accuracy.
        """
        accuracy = self.teacher_accuracy if self.teacher_accuracy is not None else teacher.validation_accuracy
        if accuracy is None:
            raise ValueError(
                f"Bootstrap needs the teacher's validation accuracy, which a student must beat to replace "
                f"it: teacher file {teacher.path} records none for version {teacher.version}; pass "
                "Bootstrap(..., teacher_accuracy=...) or register the teacher with "
                "register_teacher(..., validation_accuracy=...)"
            )
        self.version = teacher.version
        self.current_accuracy = float(accuracy)
        # A schedule passed to another tuner starts afresh (a resumed search restores its steps afterwards).
        self.steps = []
        self.teacher_file = None

    def due_step(self, completed_trials: int) -> int | None:
        """The step due after `completed_trials` completed trials, or `None` if none is.

        Step n is due once n·K trials have completed and it has not run; when several are due (a search
        resumed with more trials completed) only the latest runs.
        """
        due = completed_trials // self.every
        done = self.steps[-1].step if self.steps else 0
        return due if due > done else None

    def beats_teacher(self, accuracy: float) -> bool:
        """Whether a student's mature accuracy replaces the current teacher."""
        assert self.current_accuracy is not None  # Set by `start`.
        return math.isfinite(accuracy) and accuracy > self.current_accuracy + self.min_improvement

    def record(self, step: BootstrapStep, teacher_file: str | None = None) -> None:
        """Records a step; an accepted one also sets the teacher in force: its version, its accuracy (the
        step's mature accuracy) and the file that holds it (relative to the project directory)."""
        self.steps.append(step)
        self.version = step.version
        if step.accepted:
            self.current_accuracy = step.mature_accuracy
            self.teacher_file = teacher_file or self.teacher_file

    def trained_trial(self, trial_id: str) -> BootstrapStep | None:
        """The earlier step that trained `trial_id`, if any."""
        return next(
            (step for step in self.steps if step.trial_id == trial_id and step.examples_processed), None
        )

    def get_state(self) -> dict[str, Any]:
        """The schedule and its progress, as JSON-serialisable data (saved with the tuner's state)."""
        return {
            "every": self.every,
            "mature_epochs": self.mature_epochs,
            "min_improvement": self.min_improvement,
            "version": self.version,
            "current_accuracy": self.current_accuracy,
            "teacher_file": self.teacher_file,
            "steps": [_step_as_data(step) for step in self.steps],
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restores the progress `get_state` saved.

        Raises:
            ValueError: The state was saved with another `every`, `mature_epochs` or `min_improvement`;
                a resumed search keeps its schedule.
        """
        for name in ("every", "mature_epochs", "min_improvement"):
            if state[name] != getattr(self, name):
                raise ValueError(
                    f"the project was searched with Bootstrap({name}={state[name]!r}); resume it with the "
                    f"same schedule (got {name}={getattr(self, name)!r})"
                )
        self.steps = [_step_from_data(step) for step in state["steps"]]
        self.version = int(state["version"])
        self.current_accuracy = (
            None if state["current_accuracy"] is None else float(state["current_accuracy"])
        )
        self.teacher_file = state["teacher_file"]


def _step_as_data(step: BootstrapStep) -> dict[str, Any]:
    data = asdict(step)
    # JSON has no NaN: a diverged student's accuracy is saved as None.
    data[contract.MATURE_ACCURACY] = None if math.isnan(step.mature_accuracy) else step.mature_accuracy
    return data


def _step_from_data(data: dict[str, Any]) -> BootstrapStep:
    data = dict(data)
    accuracy = data[contract.MATURE_ACCURACY]
    data[contract.MATURE_ACCURACY] = math.nan if accuracy is None else float(accuracy)
    return BootstrapStep(**data)
