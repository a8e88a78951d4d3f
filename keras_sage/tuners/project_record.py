"""One project, any mode: a project records how it was run, so that any mode reopens it.

KerasTuner reloads a project only if it finds `<tuner id>.json`, the state file of the process reopening
it: `tuner0.json` for a single process, `chief.json` for the command line's chief. A project searched in
one mode and reopened in another was therefore searched again from scratch, over its own trials. Here
the process that holds the oracle (a single-process search or a chief) always uses the state file the
project's first search named, recorded in `project.json` with each search's mode, tuner id, host, pid
and start time; so a project reopened single-process, with `--workers N` or from a Python script reloads
its oracle and every trial, and reruns only the trials that never ended.

`open_project` takes the project's lock (`keras_sage.project_lock`) before anything in the
directory is read or removed, empties the directory for `overwrite=True` (all but the lock file, which
must stay for the lock to mean anything), and records the search.

Example:

```python
project = open_project("searches/tg_sage", tuner_id="tuner0", overwrite=False)
project.state_file  # "chief.json" if the project was first searched by `keras-sage search --workers N`
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import weakref
from pathlib import Path
from typing import Any, cast

import keras_tuner

from keras_sage import project_files
from keras_sage._atomic import write_atomically
from keras_sage.project_lock import ProjectLock, lock_project
from keras_sage.tuners import _compat

__all__ = ["OpenedProject", "open_for_tuner", "open_project", "oracle_state_file", "settle_trials"]

# The state files a project written before `project.json` existed can have, in the order they are tried.
_FORMER_STATE_FILES = (f"{project_files.CHIEF_TUNER_ID}.json", "tuner0.json")


@dataclasses.dataclass(frozen=True)
class OpenedProject:
    """A project opened by the process that holds its oracle.

    Attributes:
        directory: The project directory.
        lock: This process's hold on the project's lock.
        state_file: The name of the tuner state file this process reads and writes.
    """

    directory: str
    lock: ProjectLock
    state_file: str


def open_project(project_dir: str | os.PathLike[str], tuner_id: str, overwrite: bool) -> OpenedProject:
    """Locks the project, empties it for `overwrite`, finds its state file and records this search.

    Args:
        project_dir: The project directory (`directory/project_name`).
        tuner_id: This process's tuner id (`tuner0`, `chief`, ...).
        overwrite: Whether the project's files are removed first.

    Returns:
        The opened project.

    Raises:
        keras_sage.project_lock.ProjectLockedError: Another process searches the project.
        OSError: The project directory cannot be written, naming it.
        ValueError: Its `project.json` is not what keras-sage writes, naming it.
    """
    project_dir = os.fspath(project_dir)
    lock = lock_project(project_dir)
    try:
        if overwrite:
            _empty(project_dir)
        state_file = oracle_state_file(project_dir, tuner_id)
        _record_run(project_dir, state_file, tuner_id, lock.holder)
    except BaseException:
        lock.release()
        raise
    return OpenedProject(project_dir, lock, state_file)


def open_for_tuner(tuner: Any, tuner_kwargs: dict[str, Any]) -> OpenedProject | None:
    """Opens a tuner's project before KerasTuner's `__init__` reads it; None on a worker (the chief
    writes the project).

    The tuner's `overwrite` is done here, leaving the lock file, and set to False in `tuner_kwargs`; the
    lock is released when the tuner is garbage-collected (or the process ends).

    Args:
        tuner: The tuner being created.
        tuner_kwargs: Its keyword arguments for KerasTuner (`directory`, `project_name`, `overwrite`).

    Raises:
        keras_sage.project_lock.ProjectLockedError: Another process searches the project.
    """
    if _compat.distributed_role() == "worker":
        return None
    _compat.require_tuner_file_hook()
    project_dir = os.path.join(
        str(tuner_kwargs.get("directory") or "."), str(tuner_kwargs.get("project_name") or "untitled_project")
    )
    project = open_project(project_dir, _compat.default_tuner_id(), bool(tuner_kwargs.get("overwrite")))
    tuner_kwargs["overwrite"] = False
    weakref.finalize(tuner, project.lock.release)
    return project


def oracle_state_file(project_dir: str | os.PathLike[str], tuner_id: str) -> str:
    """The tuner state file of the project's oracle: the one `project.json` names; for a project written
    before it, `chief.json` or `tuner0.json` next to an `oracle.json`; for a new project, `<tuner_id>.json`.

    Raises:
        ValueError: `project.json` is not what keras-sage writes, naming it.
    """
    directory = Path(project_dir)
    record = _read_record(directory)
    if record is not None:
        return str(record[project_files.STATE_FILE])
    own = f"{tuner_id}.json"
    if (directory / own).exists() or not (directory / project_files.ORACLE_FILE).exists():
        return own
    return next((name for name in _FORMER_STATE_FILES if (directory / name).exists()), own)


def _read_record(directory: Path) -> dict[str, Any] | None:
    path = directory / project_files.PROJECT_RECORD_FILE
    if not path.exists():
        return None
    try:
        record = project_files.read_json(path)
    except ValueError as error:
        raise ValueError(f"{path} is not JSON ({error}); remove it to reopen the project") from None
    state_file = record.get(project_files.STATE_FILE) if isinstance(record, dict) else None
    runs = record.get(project_files.RUNS) if isinstance(record, dict) else None
    if (
        not isinstance(state_file, str)
        or Path(state_file).name != state_file
        or not state_file.endswith(".json")
        or not isinstance(runs, list)
    ):
        raise ValueError(
            f"{path} does not name the project's state file ({project_files.STATE_FILE!r}, a file name "
            f"ending .json) and its runs ({project_files.RUNS!r}, a list); remove it to reopen the project"
        )
    return cast("dict[str, Any]", record)


def _record_run(project_dir: str, state_file: str, tuner_id: str, holder: dict[str, Any]) -> None:
    """Appends this search (mode, tuner id, host, pid, start time, program) to `project.json`."""
    directory = Path(project_dir)
    record = _read_record(directory) or {project_files.STATE_FILE: state_file, project_files.RUNS: []}
    mode = _compat.distributed_role() or "single"
    record[project_files.RUNS].append(
        {"mode": mode, "tuner_id": tuner_id, **holder, "program": os.path.basename(sys.argv[0] or "python")}
    )
    text = json.dumps(record, indent=2)
    write_atomically(directory / project_files.PROJECT_RECORD_FILE, lambda file: file.write(text.encode()))


def _empty(project_dir: str) -> None:
    """Removes everything in the project directory but its lock file (KerasTuner's `overwrite=True`)."""
    for entry in Path(project_dir).iterdir():
        if entry.name == project_files.LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def settle_trials(oracle: keras_tuner.Oracle) -> None:
    """Brings a reloaded oracle in line with its trials' own files, so that no trial that ended runs again.

    KerasTuner re-queues every trial its `oracle.json` lists as running; an older chief saved that file
    before it forgot the last trial, which then ran again on every reopening, so trials listed as ended
    leave the queue. A trial whose `trial.json` says RUNNING but which `oracle.json` does not list (a
    process killed between writing the two when it created the trial) is re-queued: it never ended. A
    trial whose `trial.json` says COMPLETED or FAILED but which `oracle.json` does not list as ended
    (killed between the two when it ended the trial) is ended again from its `trial.json`, without its
    summary on the terminal: it does not run again, and the oracle learns from it as from any ended trial
    (optuna is told its score; REINFORCE's batch can end).

    Args:
        oracle: The oracle of a single-process search or a chief, just reloaded.
    """
    status = keras_tuner.engine.trial.TrialStatus
    unlisted = [
        trial
        for trial in oracle.trials.values()
        if trial.status in (status.COMPLETED, status.FAILED) and trial.trial_id not in oracle.end_order
    ]
    settled = {*oracle.end_order, *(trial.trial_id for trial in unlisted)}
    queue = _compat.retry_queue(oracle)
    queue[:] = [trial_id for trial_id in queue if trial_id not in settled]
    queue.extend(
        trial.trial_id
        for trial in oracle.trials.values()
        if trial.status == status.RUNNING and trial.trial_id not in {*queue, *oracle.end_order}
    )
    verbose, oracle.verbose = oracle.verbose, 0
    try:
        for trial in unlisted:
            oracle.end_trial(trial)
    finally:
        oracle.verbose = verbose
