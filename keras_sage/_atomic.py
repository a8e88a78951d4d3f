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

    The data is flushed to disk before the rename, so a crash or an error mid-write leaves the previous
    file intact and no temporary file behind. A symbolic link is written through: its final target is
    replaced and the link kept. A replaced file keeps its permission bits; a new file gets the ones
    `open` would give it (0o666 less the umask).

    Args:
        path: The file to write.
        write: Called with the temporary file, opened for binary writing.

    Raises:
        PermissionError: The directory cannot be written to (the message names it).
    """
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target)
    descriptor, temporary = _create_temporary(target, directory)
    try:
        if os.path.exists(target):
            os.fchmod(descriptor, stat.S_IMODE(os.stat(target).st_mode))
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def check_writable_directory(path: str | os.PathLike[str]) -> None:
    """Checks, by creating and removing a temporary file, that `write_atomically(path, ...)` can write.

    Call it before expensive work whose result goes to `path`, so that a read-only directory is reported
    before the work rather than after it.

    Args:
        path: The file that will be written (a symbolic link is followed to its target).

    Raises:
        FileNotFoundError: The directory does not exist.
        PermissionError: The directory cannot be written to.
    """
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {os.fspath(path)}: directory {directory} does not exist")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except PermissionError as error:
        raise PermissionError(
            f"cannot write {os.fspath(path)}: directory {directory} is not writable"
        ) from error


def _create_temporary(target: str, directory: str) -> tuple[int, str]:
    """Creates `.<name>.tmp-<random>` next to `target` with the mode `open` gives (0o666 less the umask)."""
    while True:
        temporary = os.path.join(directory, f".{os.path.basename(target)}.tmp-{secrets.token_hex(6)}")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), temporary
        except FileExistsError:
            continue
        except PermissionError as error:
            raise PermissionError(f"cannot write {target}: directory {directory} is not writable") from error
