"""Atomic file writes: every file keras-sage saves (teacher files, oracle and tuner state) goes here."""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Writes a file through a temporary file in the same directory, then renames it over `path`.

    The data is flushed to disk before the rename, so a crash or an error mid-write (a process killed, a
    read-only or full directory) leaves the previous file intact and no temporary file behind. A symbolic
    link is written through: its final target is replaced and the link kept. A replaced file keeps its
    permission bits; a new file gets the ones `open` would give it (0o666 less the umask).

    Args:
        path: The file to write.
        write: Called with the temporary file, opened for binary writing.

    Raises:
        OSError: The file cannot be written (of the same type and errno as the system's error, with a
            message that names `path`).

    Example:

    ```python
    write_atomically("oracle.json", lambda file: file.write(b"{}"))
    ```
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        descriptor, temporary = _create_temporary(target, directory)
    except OSError as error:
        raise _naming(error, path) from error
    try:
        if os.path.exists(target):
            os.fchmod(descriptor, stat.S_IMODE(os.stat(target).st_mode))
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError) and error.errno is not None:
            raise _naming(error, path) from error
        raise


def check_writable_directory(directory: str | os.PathLike[str], what: str = "the directory") -> None:
    """Checks that files can be created in `directory`, by writing, syncing and removing a temporary file.

    Call it before expensive work whose result goes there, so that a read-only, full or missing directory
    is reported before the work rather than after it.

    Args:
        directory: The directory (a symbolic link is followed).
        what: How the error message calls it ("the project directory").

    Raises:
        OSError: It does not exist, is read-only, full, or not writable by this user (same type and errno
            as the system's error, with a message that names the directory).

    Example:

    ```python
    check_writable_directory("searches/digits", "the project directory")
    ```
    """
    directory = os.fspath(directory)
    try:
        with tempfile.TemporaryFile(dir=os.path.realpath(directory)) as file:
            file.write(b"0")
            file.flush()
            os.fsync(file.fileno())
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise type(error)(
            error.errno, f"cannot write in {what} {directory} ({reason}; is it read-only, full or missing?)"
        ) from error


def _naming(error: OSError, path: str) -> OSError:
    """`error` again, of the same type and errno, with a message that names the file being written."""
    reason = error.strerror or type(error).__name__
    return type(error)(error.errno, f"cannot write {path} ({reason}; is its directory read-only or full?)")


def _create_temporary(target: str, directory: str) -> tuple[int, str]:
    """Creates `.<name>.tmp-<random>` next to `target` with the mode `open` gives (0o666 less the umask)."""
    while True:
        temporary = os.path.join(directory, f".{os.path.basename(target)}.tmp-{secrets.token_hex(6)}")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue
