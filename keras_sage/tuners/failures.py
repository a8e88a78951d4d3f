"""The failure policy of a search: a failed trial is one line and a log file, never a crash of the search.

Architecture spaces hold candidates that cannot be built (a spatial size below 1) and candidates whose
training diverges (NaN loss). Each is a FAILED trial whose message is one line saying why
(`failure_reason`), with its traceback in `trial.log` in its folder (`write_failure_log`). The search goes
on until `max_consecutive_failed_trials` trials fail in a row; then `consecutive_failures` gives the
`SearchStoppedError` that names the causes they shared. A search that ended with every trial failed (fewer
trials than that limit) gets a `SearchStoppedError` too from `check_some_trial_completed`, naming the most
common cause (the command line exits 1 with it).

Example:

```python
failure_reason(keras_tuner.errors.FailedTrialError("training diverged: at step 3"))
# "training diverged: at step 3"
failure_cause("training diverged: at step 3")  # "training diverged"
```
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import keras_tuner

from keras_sage._atomic import write_atomically
from keras_sage._errors import first_line
from keras_sage.project_files import TRIAL_LOG

__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS",
    "FAILED_STATUSES",
    "SearchStoppedError",
    "check_some_outcome_completed",
    "check_some_trial_completed",
    "consecutive_failures",
    "failure_cause",
    "failure_reason",
    "write_failure_log",
]

# Unbuildable and diverging candidates are common in architecture spaces, so the default oracle tolerates
# more failed trials in a row than KerasTuner's default of 3 before it stops the search.
DEFAULT_MAX_CONSECUTIVE_FAILED_TRIALS = 10
FAILED_STATUSES = (keras_tuner.engine.trial.TrialStatus.FAILED, keras_tuner.engine.trial.TrialStatus.INVALID)


class SearchStoppedError(RuntimeError):
    """The search stopped because too many trials failed in a row; the message says for which causes."""


def failure_reason(error: BaseException | None, message: str | None = None) -> str:
    """One line saying why a trial failed.

    Args:
        error: The exception the trial raised, if known.
        message: KerasTuner's message of the trial (its traceback), used when `error` is not known.

    Returns:
        A `FailedTrialError`'s message as it is ("training diverged: ...", "candidate cannot be built:
        ..."), any other error as "Type: its first line".
    """
    if error is not None:
        if isinstance(error, keras_tuner.errors.FailedTrialError):
            return first_line(error)
        return f"{type(error).__name__}: {_informative_line(error)}"
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    if not lines:
        return "unknown reason"
    kind, separator, text = lines[-1].partition(": ")
    kind = kind.rsplit(".", 1)[-1]
    if not separator:
        return kind
    return text if kind == "FailedTrialError" else f"{kind}: {text}"


def _informative_line(error: BaseException) -> str:
    """The error's first line, or for a heading such as TensorFlow's "Graph execution error:" the line
    that says what went wrong ("Received a label value of 9 which is outside the valid range of [0, 3)."),
    found after the graph's traceback."""
    heading = first_line(error)
    if not heading.endswith(":"):
        return heading
    for line in reversed(str(error).splitlines()):
        text = line.strip()
        if text and not line[0].isspace() and not text.startswith(("[[", "File ", "Detected at node")):
            return f"{heading} {text.split('  ')[0]}"
    return heading


def failure_cause(reason: str) -> str:
    """The cause in a failure reason: what comes before its first colon ("training diverged")."""
    return reason.split(":", 1)[0].strip() or reason


def write_failure_log(path: str, traceback_text: str) -> None:
    """Writes a failed trial's traceback to its `trial.log`, atomically."""
    write_atomically(path, lambda file: file.write(traceback_text.encode()))


def consecutive_failures(oracle: keras_tuner.Oracle) -> SearchStoppedError | None:
    """The error that says which causes the last failed trials shared, if they stopped the search.

    Args:
        oracle: The search's oracle, after KerasTuner refused to go on.

    Returns:
        A `SearchStoppedError` when the oracle's last `max_consecutive_failed_trials` trials all failed,
        else None.
    """
    limit = getattr(oracle, "max_consecutive_failed_trials", None)
    end_order = getattr(oracle, "end_order", None)
    if not limit or end_order is None or len(end_order) < limit:
        return None
    failed = keras_tuner.engine.trial.TrialStatus.FAILED
    trials = [oracle.trials[trial_id] for trial_id in end_order[-limit:]]
    if any(trial.status != failed for trial in trials):
        return None
    reasons = [failure_reason(None, trial.message) for trial in trials]
    counts: dict[str, int] = {}
    for reason in reasons:
        counts[failure_cause(reason)] = counts.get(failure_cause(reason), 0) + 1
    ids = ", ".join(trial.trial_id for trial in trials)
    if len(counts) == 1:
        causes = f"all for the same cause: {reasons[-1]}"
    else:
        causes = "for these causes: " + ", ".join(f"{count}× {cause}" for cause, count in counts.items())
    return SearchStoppedError(
        f"the search stopped after {limit} failed trials in a row (trials {ids}), {causes}; "
        f"each trial's traceback is in its folder's {TRIAL_LOG}"
    )


def check_some_trial_completed(oracle: keras_tuner.Oracle) -> None:
    """Raises if the search's trials have ended and every one failed (a search without a result).

    Args:
        oracle: The search's oracle, after the search.

    Raises:
        SearchStoppedError: Every ended trial failed; the message gives the most common cause, one line.
    """
    trials = [oracle.trials[trial_id] for trial_id in getattr(oracle, "end_order", [])]
    check_some_outcome_completed([(str(trial.status), trial.message) for trial in trials])


def check_some_outcome_completed(outcomes: Sequence[tuple[str, str | None]]) -> None:
    """`check_some_trial_completed` on the ended trials' `(status, message)`, e.g. as a project directory
    records them (`keras_sage.analysis.project_records`).

    Raises:
        SearchStoppedError: Every trial failed; the message gives the most common cause, one line.
    """
    failed = {str(status) for status in FAILED_STATUSES}
    if not outcomes or any(status not in failed for status, _ in outcomes):
        return
    reasons = [failure_reason(None, message) for _, message in outcomes]
    causes = collections.Counter(failure_cause(reason) for reason in reasons)
    cause, count = causes.most_common(1)[0]
    example = next(reason for reason in reasons if failure_cause(reason) == cause)
    raise SearchStoppedError(
        f"every trial of the search failed ({len(outcomes)}); the most common cause ({count} of them): "
        f"{example}; each trial's traceback is in its folder's {TRIAL_LOG}"
    )
