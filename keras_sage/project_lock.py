"""One writer per project: the lock a search holds on its project directory.

A single-process search and a chief hold an OS-level lock (`fcntl.flock`) on `project.lock` in the
project directory for as long as their tuner lives; workers do not take it (the chief writes the project
for them). The kernel releases the lock when the process ends, however it ends, so a `kill -9` never
leaves a stale lock: the next search simply takes it. A second search on a locked project is refused at
once with a `ProjectLockedError` naming the holder (host, pid, start time), which the holder writes into
the lock file when it takes it.

Within one process, tuners of the same project share the lock (a script may reopen its own project). A
tuner holds it from its creation to the end of its `search` (and again during each later `search`), so
that a script that searched a project may hand it to another process; the lock is released when no
tuner of the process holds it, or when the process ends.

Example:

```python
lock = lock_project("searches/tg_sage")  # raises ProjectLockedError if another process searches it
...
lock.release()
```
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import threading
from typing import Any

from keras_sage._atomic import check_writable_directory
from keras_sage._errors import first_line
from keras_sage.project_files import LOCK_FILE

__all__ = ["ProjectLock", "ProjectLockedError", "lock_project"]

_HOLDER_KEYS = ("host", "pid", "started")


class ProjectLockedError(OSError):
    """Another process is searching the project; the message names it (host, pid, start time)."""


class ProjectLock:
    """One hold on a project's lock file (see `lock_project`); the holds of one process share the lock.

    Attributes:
        path: The lock file.
        holder: Who holds it: `{"host": ..., "pid": ..., "started": ...}`.
    """

    def __init__(self, path: str, project_dir: str, holder: dict[str, Any]):
        self.path = path
        self.holder = holder
        self._project_dir = project_dir
        self.held = True

    def release(self) -> None:
        """Gives up this hold (again: nothing); the lock is released when this process holds it no more."""
        with _registry_lock:
            if not self.held:
                return
            self.held = False
            descriptor, holds = _held[self.path]
            if holds > 1:
                _held[self.path] = (descriptor, holds - 1)
                return
            del _held[self.path]
            del _holders[self.path]
        os.close(descriptor)  # Closing the file releases the flock.

    def acquire(self) -> None:
        """Takes the lock again after `release` (nothing if this hold has it).

        Raises:
            ProjectLockedError: Another process took it meanwhile.
        """
        if not self.held:
            # The new hold's count is this one's; the new object itself is not kept.
            self.holder = lock_project(self._project_dir).holder
            self.held = True


_registry_lock = threading.Lock()
# This process's lock files: descriptor and number of holds, by real path.
_held: dict[str, tuple[int, int]] = {}
_holders: dict[str, dict[str, Any]] = {}


def lock_project(project_dir: str | os.PathLike[str]) -> ProjectLock:
    """Takes the project's lock, creating the project directory if needed; shared within this process.

    Args:
        project_dir: The project directory (`directory/project_name`).

    Returns:
        A hold on the lock, kept until its `release()` (or the end of the process).

    Raises:
        ProjectLockedError: Another process holds the lock; the message names it.
        OSError: The project directory or its lock file cannot be created (read-only, ...), naming it.
    """
    project_dir = os.fspath(project_dir)
    try:
        os.makedirs(project_dir, exist_ok=True)
        path = os.path.realpath(os.path.join(project_dir, LOCK_FILE))
        with _registry_lock:
            if path in _held:
                descriptor, holds = _held[path]
                _held[path] = (descriptor, holds + 1)
                return ProjectLock(path, project_dir, _holders[path])
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        check_writable_directory(project_dir, "the project directory")  # Its one line, if that is why.
        raise type(error)(
            error.errno,
            f"cannot create the lock file of the project directory {project_dir}: {first_line(error)}",
        ) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        holder = _read_holder(descriptor)
        os.close(descriptor)
        if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        raise ProjectLockedError(
            f"the project {project_dir} is being searched by another process ({describe_holder(holder)}); "
            "wait for it to end, or give this search another project_name",
        ) from None
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    text = json.dumps(holder).encode()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, text, 0)
    with _registry_lock:
        _held[path] = (descriptor, 1)
        _holders[path] = holder
    return ProjectLock(path, project_dir, holder)


def describe_holder(holder: dict[str, Any] | None) -> str:
    """`host H, pid P, started T`, or what is known of the holder."""
    if holder is None:
        return "holder unknown"
    return ", ".join(f"{key} {holder[key]}" for key in _HOLDER_KEYS if key in holder)


def _read_holder(descriptor: int) -> dict[str, Any] | None:
    """The holder the lock file names (None if it names none yet: the holder is writing it)."""
    try:
        holder = json.loads(os.pread(descriptor, 4096, 0).decode())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None
