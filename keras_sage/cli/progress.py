"""The progress line of `keras-sage search` and `keras-sage worker`: one line per trial.

```
trial 7/50 · best score 0.871 (P 0.842, TG 0.029) · ETA 12 min
trial 8/50 failed: training diverged: the loss became NaN or infinite at step 3 (traceback: .../trial.log)
```

With `--verbose` a line also gives the trial's own score, its time and its hyperparameters; with
`--quiet` nothing is printed per trial.
"""

from __future__ import annotations

import math
import time
from typing import Any

import keras_tuner

from keras_sage import contract
from keras_sage.tuners import pareto
from keras_sage.tuners.sage_tuner import SageTuner

_FAILED = (keras_tuner.engine.trial.TrialStatus.FAILED, keras_tuner.engine.trial.TrialStatus.INVALID)


def format_duration(seconds: float) -> str:
    """A duration for a progress line: "< 1 min", "12 min", "2 h 05 min".

    Args:
        seconds: The duration.

    Returns:
        The text.
    """
    minutes = round(seconds / 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class ProgressTuner(SageTuner):
    """A `SageTuner` that prints one progress line per trial (the command line's).

    Args:
        *args: `SageTuner`'s arguments.
        verbosity: 0 prints nothing per trial, 1 the progress line, 2 also the trial's own score, time
            and hyperparameters.
        prefix: Put before every line (a worker's name).
        total_trials: The search's number of trials, when the oracle's `max_trials` is not (a process of
            `--trials-per-process` caps it).
        **kwargs: `SageTuner`'s keyword arguments.
    """

    def __init__(
        self,
        *args: Any,
        verbosity: int = 1,
        prefix: str = "",
        total_trials: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.verbosity = verbosity
        self.prefix = prefix
        self.total_trials = total_trials or self.oracle.max_trials
        self._search_start = time.monotonic()
        self._trial_start: dict[str, float] = {}
        self._first_number: int | None = None
        self._highest_number = 0

    def on_search_begin(self) -> None:
        super().on_search_begin()
        self._search_start = time.monotonic()

    def on_trial_begin(self, trial: keras_tuner.engine.trial.Trial) -> None:
        super().on_trial_begin(trial)
        self._trial_start[trial.trial_id] = time.monotonic()
        if self._first_number is None:
            self._first_number = _number(trial)

    def on_trial_end(self, trial: keras_tuner.engine.trial.Trial) -> None:
        try:
            super().on_trial_end(trial)
        finally:
            if self.verbosity:
                print(self.prefix + self.progress_line(trial), flush=True)

    def progress_line(self, trial: keras_tuner.engine.trial.Trial) -> str:
        """The line printed when `trial` has ended."""
        number = _number(trial)
        head = f"trial {number}/{self.total_trials}"
        # Trials are handed out in order: a lower number than one this process ended is a trial whose
        # first run never ended (its worker died), run again here; the count does not go back.
        if number < self._highest_number:
            head += f" (run again; {self._highest_number}/{self.total_trials} handed out)"
        self._highest_number = max(self._highest_number, number)
        took = time.monotonic() - self._trial_start.get(trial.trial_id, self._search_start)
        if trial.status in _FAILED:
            return f"{head} failed: {trial.message} (traceback: {self.trial_log_path(trial.trial_id)})"
        parts = [head]
        if self.verbosity > 1:
            parts.append(f"score {_score_text(trial)} in {took:.0f} s")
        if len(pareto.objectives_of(self.oracle)) > 1:
            # A Pareto search has no best score (KerasTuner would rank by the objectives' sum): its front.
            parts.append(f"{len(pareto.front_trials(self.oracle))} on the front")
        else:
            best = self.oracle.get_best_trials(1)
            parts.append(f"best score {_score_text(best[0])}" if best else "best score -")
        parts.append(f"ETA {self._eta(number)}")
        line = " · ".join(parts)
        if self.verbosity > 1:
            values = ", ".join(f"{name}={value}" for name, value in trial.hyperparameters.values.items())
            line += f"\n  {values}"
        return line

    def _eta(self, number: int) -> str:
        """Time left at the pace of the trials ended since this process started (by every worker)."""
        done = number - (self._first_number or number) + 1
        remaining = max(0, self.total_trials - number)
        if remaining == 0:
            return "0 min"
        return format_duration((time.monotonic() - self._search_start) / max(done, 1) * remaining)


def _number(trial: keras_tuner.engine.trial.Trial) -> int:
    """The trial's position in the search, from 1 (KerasTuner numbers trial ids from 0)."""
    return int(trial.trial_id) + 1


def _score_text(trial: keras_tuner.engine.trial.Trial) -> str:
    def value(name: str) -> float:
        if not trial.metrics.exists(name):
            return math.nan
        return float(trial.metrics.get_last_value(name))

    return (
        f"{value(contract.SCORE):.3f} (P {value(contract.PREMATURE_ACCURACY):.3f}, "
        f"TG {value(contract.TEACHER_GUIDANCE):.3f})"
    )
