"""A tiny teacher-guided search run as its own process by the distributed and crash-safety tests.

The same command runs a single-process search, a chief or a worker: KerasTuner's environment variables
(KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT) decide which, as in any KerasTuner
parallel search. Digits at 8x8, a CNN space of at most 2 layers, 2 SGD steps per candidate.

    python tests/distributed/search.py DIRECTORY TEACHER {tpe,reinforce,pareto} MAX_TRIALS [--pause-at N]

`pareto` is TPE over the objective list [premature_accuracy, teacher_guidance] (a Pareto search).

`--pause-at N` makes the N-th trial this process runs stop in its first batch: the process writes
`paused-<tuner id>` (holding the trial id) in DIRECTORY and sleeps, so a test can kill it mid-training.
Each process appends `<trial id> <tuner id> <seed>` to `DIRECTORY/finished-runs` when a trial it ran has
been ended by the oracle (the seed is the one the trial's weights and data order were drawn with), so a
test can count how many times a trial ran to the end, and where.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import signal
import sys
import time

import keras_tuner
import tensorflow as tf

from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.tuners import ReinforceOracle, SageTuner, TPEOracle
from keras_sage.tuners.distributed import ChiefUnreachableError

SEED = 3


class Search(SageTuner):
    """A `SageTuner` that can pause in a trial's first batch and logs the trials it finished."""

    def __init__(self, *args, pause_at: int | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pause_at = pause_at
        self.trials_begun = 0

    def on_trial_begin(self, trial):
        self.trials_begun += 1
        super().on_trial_begin(trial)

    def on_batch_end(self, trial, model, batch, logs=None):
        if self.trials_begun == self.pause_at and batch == 0:
            marker = os.path.join(self.directory, f"paused-{self.tuner_id}")
            with open(marker + ".tmp", "w") as file:
                file.write(trial.trial_id)
            os.replace(marker + ".tmp", marker)
            time.sleep(600)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        with open(os.path.join(self.directory, "finished-runs"), "a") as file:
            file.write(f"{trial.trial_id} {self.tuner_id} {self._trial_seed(trial.trial_id)}\n")


def die_with_parent() -> None:
    """On Linux, has the kernel SIGKILL this process when the test that started it dies (even by SIGKILL).

    Done here, not in a `preexec_fn` (which runs between fork and exec in a copy of a threaded process).
    """
    parent = os.environ.get("KERAS_SAGE_TEST_PARENT_PID")
    if parent is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # The test died before the request.
        os._exit(1)


def main() -> int:
    die_with_parent()
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("teacher")
    parser.add_argument("oracle", choices=("tpe", "reinforce", "pareto"))
    parser.add_argument("max_trials", type=int)
    parser.add_argument("--pause-at", type=int)
    args = parser.parse_args()
    tf.config.experimental.enable_op_determinism()
    splits = digits(image_size=8, probe_size=20)
    space = CNNSearchSpace(max_layers=2, num_classes=10, input_shape=(8, 8, 1))
    if args.oracle == "tpe":
        oracle = TPEOracle(max_trials=args.max_trials, n_startup_trials=2, seed=SEED)
    elif args.oracle == "pareto":
        objectives = [
            keras_tuner.Objective("premature_accuracy", "max"),
            keras_tuner.Objective("teacher_guidance", "max"),
        ]
        oracle = TPEOracle(objective=objectives, max_trials=args.max_trials, n_startup_trials=2, seed=SEED)
    else:
        oracle = ReinforceOracle(space, max_trials=args.max_trials, batch_size=2, seed=SEED)
    tuner = Search(
        space,
        teacher=args.teacher,
        premature_steps=2,
        oracle=oracle,
        directory=args.directory,
        project_name="search",
        pause_at=args.pause_at,
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
    gc.freeze()  # as the `keras-sage` command does: no final collection of the TensorFlow heap at exit
    sys.exit(status)
