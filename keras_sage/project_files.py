"""The project directory of a search: its file names, the JSON keys of its files, and how they are read.

A search's project directory (`directory/project_name`) is KerasTuner's layout plus a few files of
keras-sage's own. The tuner, the teacher schedule and the optuna oracle write them; the analysis and the
command line read them back, as data (JSON and HDF5 only, nothing unpickled). Every name they share is
defined here once:

```
oracle.json                    KerasTuner's oracle state (start_order, end_order, ...)
<tuner id>.json                one per process that ran trials (tuner0.json, chief.json, worker names):
                               search_examples, rerank_examples, rerank_results, bootstrap_examples,
                               teacher_schedule
trial_<id>/trial.json          KerasTuner's trial state: hyperparameters, metrics, status, message
trial_<id>/teacher_guidance.json   how the trial was scored (TEACHER_GUIDANCE_KEYS)
trial_<id>/trial.log           a failed trial's traceback
optuna_journal.log             the optuna study of `TPEOracle` and `OptunaOracle`
optuna_journal.lock            the lock its writer holds while appending to it (an flock, never stale)
optuna_journal_mirror.log      the trials of any other oracle as an optuna study, for the dashboard
optuna_sampler.json            the sampler's random state
reinforce_controller.npz       the REINFORCE controller's weights and optimizer state
bootstrap_teacher.h5           the teacher file a teacher schedule adds versions to
project.lock                   the lock of the one search writing the project: host, pid, start time
project.json                   how the project was run: each search's mode, tuner id, host, pid, start
                               time, and the state file of the process that holds the oracle
```

Example:

```python
from keras_sage import project_files

project_files.trial_files("searches/tg_sage")  # {"00": Path(".../trial_00/trial.json"), ...}
project_files.tuner_states("searches/tg_sage")  # [{"search_examples": ..., ...}, ...]
```
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ALPHA",
    "BEST_STUDENT_LAYERS",
    "BOOTSTRAP_EXAMPLES",
    "BOOTSTRAP_TEACHER_FILE",
    "CHIEF_TUNER_ID",
    "CONTROLLER_FILE",
    "JOURNAL_FILE",
    "JOURNAL_LOCK_FILE",
    "LAYER_MAPPING",
    "LAYER_MATCH",
    "LOCK_FILE",
    "MIRROR_JOURNAL_FILE",
    "NORMALISE_BY_CEILING",
    "ORACLE_FILE",
    "PICKLED_SAMPLER_FILE",
    "PROJECT_RECORD_FILE",
    "RERANK_EXAMPLES",
    "RERANK_RESULTS",
    "RUNS",
    "SAMPLER_FILE",
    "SEARCH_EXAMPLES",
    "SIMILARITIES",
    "SIMILARITY",
    "STATE_FILE",
    "TEACHER_FILE",
    "TEACHER_GUIDANCE_FILE",
    "TEACHER_SCHEDULE",
    "TRIAL_DIRECTORY_PREFIX",
    "TRIAL_FILE",
    "TRIAL_LOG",
    "RerankResult",
    "read_json",
    "rerank_results",
    "search_journal",
    "summed_examples",
    "teacher_guidance_files",
    "trial_directory",
    "trial_files",
    "tuner_states",
]

# File names.
ORACLE_FILE = "oracle.json"
TRIAL_DIRECTORY_PREFIX = "trial_"
TRIAL_FILE = "trial.json"
TRIAL_LOG = "trial.log"
TEACHER_GUIDANCE_FILE = "teacher_guidance.json"
JOURNAL_FILE = "optuna_journal.log"
# The kernel lock (`fcntl.flock`) the oracle holds while it appends to `JOURNAL_FILE`.
JOURNAL_LOCK_FILE = "optuna_journal.lock"
# The mirror of an oracle's trials as an optuna journal (`tuners/journal_mirror.py`); never read by a search.
MIRROR_JOURNAL_FILE = "optuna_journal_mirror.log"
SAMPLER_FILE = "optuna_sampler.json"
# An optuna sampler pickled by releases before 0.1; never unpickled, only warned about.
PICKLED_SAMPLER_FILE = "optuna_sampler.pkl"
BOOTSTRAP_TEACHER_FILE = "bootstrap_teacher.h5"
# The REINFORCE controller's weights and Adam state (`ReinforceOracle`), as numpy arrays.
CONTROLLER_FILE = "reinforce_controller.npz"
# The tuner id of the command line's chief (`keras-sage search --workers N`); its state is `chief.json`.
CHIEF_TUNER_ID = "chief"
# The lock a search holds on its project (`keras_sage.project_lock`), with its holder as JSON.
LOCK_FILE = "project.lock"
# How the project was run (`keras_sage.tuners.project_record`).
PROJECT_RECORD_FILE = "project.json"
STATE_FILE = "state_file"  # the tuner state file of the process that holds the oracle, whatever its mode
RUNS = "runs"  # one dict per search that opened the project: mode, tuner_id, host, pid, started

# Keys of a tuner's state file (`<tuner id>.json`) that keras-sage adds to KerasTuner's.
SEARCH_EXAMPLES = "search_examples"  # M1·E1
RERANK_EXAMPLES = "rerank_examples"  # M2·E2
RERANK_RESULTS = "rerank_results"  # one `RerankResult` as a dict per reranked candidate
BOOTSTRAP_EXAMPLES = "bootstrap_examples"  # the teacher schedule's training
TEACHER_SCHEDULE = "teacher_schedule"  # `Bootstrap.get_state()`

# Keys of a trial's `teacher_guidance.json` besides `contract.EXAMPLES_PROCESSED` and
# `contract.TEACHER_VERSION`.
ALPHA = "alpha"
SIMILARITY = "similarity"
LAYER_MATCH = "layer_match"
LAYER_MAPPING = "layer_mapping"
NORMALISE_BY_CEILING = "normalise_by_ceiling"
SIMILARITIES = "similarities"
BEST_STUDENT_LAYERS = "best_student_layers"
TEACHER_FILE = "teacher_file"


@dataclass(frozen=True)
class RerankResult:
    """One candidate trained longer after the search (`SageTuner.rerank`).

    Attributes:
        trial_id: The search trial it came from.
        score: Its search score (P + α·TG after premature training).
        mature_accuracy: Its validation accuracy after the longer training (NaN if it diverged).
        examples_processed: Training examples processed by SGD (E2).
    """

    trial_id: str
    score: float
    mature_accuracy: float
    examples_processed: int

    def as_dict(self) -> dict[str, Any]:
        """The result as its tuner state file holds it."""
        return asdict(self)


def trial_directory(project_dir: str | Path, trial_id: str) -> Path:
    """The folder of trial `trial_id` (KerasTuner's `trial_<id>`)."""
    return Path(project_dir) / f"{TRIAL_DIRECTORY_PREFIX}{trial_id}"


def trial_files(project_dir: str | Path) -> dict[str, Path]:
    """Every trial's `trial.json` in a project directory, by trial id (unordered)."""
    return {
        path.parent.name.removeprefix(TRIAL_DIRECTORY_PREFIX): path
        for path in Path(project_dir).glob(f"{TRIAL_DIRECTORY_PREFIX}*/{TRIAL_FILE}")
    }


def teacher_guidance_files(project_dir: str | Path) -> list[Path]:
    """Every trial's `teacher_guidance.json` in a project directory, sorted by path."""
    return sorted(Path(project_dir).glob(f"{TRIAL_DIRECTORY_PREFIX}*/{TEACHER_GUIDANCE_FILE}"))


def search_journal(project_dir: str | Path) -> Path | None:
    """The optuna journal that holds a search's trials: the optuna oracles' study (`JOURNAL_FILE`), else
    the mirror any other oracle writes (`MIRROR_JOURNAL_FILE`); None if the directory holds neither."""
    for name in (JOURNAL_FILE, MIRROR_JOURNAL_FILE):
        path = Path(project_dir) / name
        if path.is_file():
            return path
    return None


def read_json(path: str | Path) -> Any:
    """A JSON file of a project directory, parsed (never unpickled or executed)."""
    return json.loads(Path(path).read_text())


def tuner_states(project_dir: str | Path) -> list[dict[str, Any]]:
    """The state of every process that ran trials: each `<tuner id>.json` holding `search_examples`.

    A single process leaves `tuner0.json`; a distributed search the chief's and each worker's file, named
    by its tuner id (which the user chooses), so they are found by their content, not their name.

    Args:
        project_dir: The project directory.

    Returns:
        The states, sorted by file name.
    """
    states = []
    for path in sorted(Path(project_dir).glob("*.json")):
        state = read_json(path)
        if isinstance(state, dict) and SEARCH_EXAMPLES in state:
            states.append(state)
    return states


def summed_examples(states: list[dict[str, Any]], key: str) -> int:
    """A count of examples (`SEARCH_EXAMPLES`, `RERANK_EXAMPLES`, `BOOTSTRAP_EXAMPLES`) summed over the
    tuner states of a project."""
    return sum(int(state.get(key, 0)) for state in states)


def rerank_results(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reranked candidates every process of a project recorded (as dicts of `RerankResult`'s fields)."""
    return [result for state in states for result in state.get(RERANK_RESULTS, [])]
