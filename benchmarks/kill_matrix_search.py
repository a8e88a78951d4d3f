"""The search process of `kill_matrix.py`: a tiny search that can hold still at one moment of a trial.

    python benchmarks/kill_matrix_search.py DIRECTORY TEACHER tpe MAX_TRIALS [--pause-at PHASE:N]

The same command runs a single-process search, a chief or a worker (KerasTuner's environment variables
decide), as `tests/distributed/search.py` does: digits at 8x8, a CNN space of at most 2 layers, 2 SGD steps
per candidate, TPE. With `--pause-at PHASE:N` the N-th trial this process runs holds still at PHASE:
`building` (in the hypermodel's `build`), `training` (after its first batch), `scoring` (before the
teacher-guided scorer runs), `reporting` (the trial has run, before it is reported to the oracle) or
`after` (after the trial has been reported). The process writes `paused-<tuner id>` (holding the trial id)
in DIRECTORY and waits until `resume-<tuner id>` appears there, so the driver can kill it (or another
process) at that moment. Each process appends `<trial id> <tuner id>` to `DIRECTORY/begun-runs` when it
begins a trial and to `DIRECTORY/finished-runs` when the oracle has ended a trial it ran.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from typing import Any

import tensorflow as tf

from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.tuners import SageTuner, TPEOracle
from keras_sage.tuners.distributed import ChiefUnreachableError

SEED = 3
PHASES = ("building", "training", "scoring", "reporting", "after")


class Pause:
    """Where this process holds still: the `trial`-th trial it runs, at `phase`."""

    def __init__(self, directory: str, text: str | None):
        phase, _, trial = (text or ":0").partition(":")
        if text is not None and phase not in PHASES:
            raise SystemExit(f"--pause-at: PHASE is one of {', '.join(PHASES)}, got {phase!r}")
        self.directory = directory
        self.phase = phase
        self.trial = int(trial)
        self.begun = 0
        self.tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")

    def at(self, phase: str, trial_id: str) -> None:
        """Holds still if this is the moment: writes the marker, waits for the resume file."""
        if phase != self.phase or self.begun != self.trial:
            return
        self.phase = ""  # Once.
        marker = os.path.join(self.directory, f"paused-{self.tuner_id}")
        with open(marker + ".tmp", "w") as file:
            file.write(trial_id)
        os.replace(marker + ".tmp", marker)
        resume = os.path.join(self.directory, f"resume-{self.tuner_id}")
        deadline = time.monotonic() + 600
        while not os.path.exists(resume) and time.monotonic() < deadline:
            time.sleep(0.05)


class PausingSpace(CNNSearchSpace):
    def __init__(self, pause: Pause, **kwargs: Any):
        super().__init__(**kwargs)
        self.pause = pause
        self.trial_id = ""

    def build(self, hp: Any) -> Any:
        self.pause.at("building", self.trial_id)
        return super().build(hp)


class Search(SageTuner):
    def __init__(self, *args: Any, pause: Pause, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pause = pause
        evaluate = self.scorer.evaluate

        def pausing_evaluate(*evaluate_args: Any, **evaluate_kwargs: Any) -> Any:
            self.pause.at("scoring", self.current_trial_id)
            return evaluate(*evaluate_args, **evaluate_kwargs)

        self.scorer.evaluate = pausing_evaluate  # type: ignore[method-assign]
        self.current_trial_id = ""

    def _log(self, name: str, trial_id: str) -> None:
        with open(os.path.join(self.directory, name), "a") as file:
            file.write(f"{trial_id} {self.tuner_id}\n")

    def on_trial_begin(self, trial: Any) -> None:
        self.pause.begun += 1
        self.current_trial_id = self.hypermodel.trial_id = trial.trial_id
        self._log("begun-runs", trial.trial_id)
        super().on_trial_begin(trial)

    def on_batch_end(self, trial: Any, model: Any, batch: int, logs: Any = None) -> None:
        if batch == 0:
            self.pause.at("training", trial.trial_id)

    def on_trial_end(self, trial: Any) -> None:
        self.pause.at("reporting", trial.trial_id)
        super().on_trial_end(trial)
        self._log("finished-runs", trial.trial_id)
        self.pause.at("after", trial.trial_id)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("teacher")
    parser.add_argument("oracle", choices=("tpe",))
    parser.add_argument("max_trials", type=int)
    parser.add_argument("--pause-at")
    args = parser.parse_args()
    tf.config.experimental.enable_op_determinism()
    splits = digits(image_size=8, probe_size=20)
    pause = Pause(args.directory, args.pause_at)
    space = PausingSpace(pause, max_layers=2, num_classes=10, input_shape=(8, 8, 1))
    tuner = Search(
        space,
        teacher=args.teacher,
        premature_steps=2,
        oracle=TPEOracle(max_trials=args.max_trials, n_startup_trials=2, seed=SEED),
        directory=args.directory,
        project_name="search",
        pause=pause,
    )
    print(f"search.py: {tuner.tuner_id} searches", flush=True)
    try:
        tuner.search(
            splits.x_train[:64],
            splits.y_train[:64],
            validation_data=(splits.x_val[:32], splits.y_val[:32]),
            batch_size=16,
            verbose=0,
        )
    except ChiefUnreachableError as error:
        print(f"search.py: {tuner.tuner_id} gave up at {time.time()}", flush=True)
        print(error, file=sys.stderr, flush=True)
        return 3
    print(f"search.py: {tuner.tuner_id} search returned at {time.time()}", flush=True)
    return 0


if __name__ == "__main__":
    status = main()
    gc.freeze()
    sys.exit(status)
