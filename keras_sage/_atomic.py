"""Atomic file writes: every file keras-sage saves (teacher files, oracle and tuner state) goes here."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Writes a file through a temporary file in the same directory, then renames it over `path`.

    The data is flushed to disk before the rename, so a crash or an error mid-write (a process killed, a
    read-only or full directory) leaves the previous file intact and no temporary file behind.

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
    directory = os.path.dirname(os.path.abspath(path))
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=directory)
    except OSError as error:
        raise _naming(error, path) from error
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        if isinstance(error, OSError) and error.errno is not None:
            raise _naming(error, path) from error
        raise


def _naming(error: OSError, path: str) -> OSError:
    """`error` again, of the same type and errno, with a message that names the file being written."""
    reason = error.strerror or type(error).__name__
    return type(error)(error.errno, f"cannot write {path} ({reason}; is its directory read-only or full?)")


def check_writable_directory(directory: str | os.PathLike[str]) -> None:
    """Checks that files can be created in `directory` by writing and removing a small temporary file.

    Args:
        directory: An existing directory.

    Raises:
        OSError: It is read-only, full, or not writable by this user (same type and errno as the
            system's error, with a message that names the directory).

    Example:

    ```python
    check_writable_directory("searches/digits")
    ```
    """
    directory = os.fspath(directory)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".keras-sage-write-check-", dir=directory)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(b"0")
                file.flush()
                os.fsync(file.fileno())
        finally:
            os.remove(temporary)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise type(error)(
            error.errno,
            f"cannot write in the project directory {directory} ({reason}; is it read-only or full?)",
        ) from error
