"""Atomic file writes: every file keras-sage saves (teacher files, oracle and tuner state) goes here."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Writes a file through a temporary file in the same directory, then renames it over `path`.

    The data is flushed to disk before the rename, so a crash or an error mid-write leaves the previous
    file intact and no temporary file behind.

    Args:
        path: The file to write.
        write: Called with the temporary file, opened for binary writing.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
