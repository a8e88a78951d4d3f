"""Atomic file writes for the oracles' state files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str, write: Callable[[BinaryIO], object]) -> None:
    """Writes a file through a temporary file in the same directory, then renames it over `path`.

    A crash mid-write leaves the previous file intact.

    Args:
        path: The file to write.
        write: Called with the temporary file, opened for binary writing.
    """
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
