"""Teacher versions in memory: the RDMs of version 0 (`/rdms`) and of each added version, by number.

`TeacherStore` keeps one `TeacherRecords` for its file; the reader fills it and the writer writes it
whole. A version, once added, is never changed or removed (see `keras_sage.teachers.format`).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keras_sage.teachers.format import (
    VERSIONS_GROUP,
    StoredRDM,
    TeacherFileError,
    checked_accuracy,
    json_object,
    reading,
    version_number,
)


@dataclass
class StoredVersion:
    """One teacher version after version 0: its attributes (JSON ones parsed) and its RDMs."""

    info: dict[str, Any]
    layers: dict[str, StoredRDM]


@dataclass
class TeacherRecords:
    """The RDMs of a teacher file by version, as read or about to be written.

    Args:
        root_layers: Version 0's RDMs (the file's `/rdms`), in the order they were added.
        root_accuracy: Version 0's validation accuracy, or `None` if none is recorded.
        versions: Each later version by number (1, 2, ...).

    Example:

    ```python
    records = TeacherRecords()
    records.numbers  # [0]
    ```
    """

    root_layers: dict[str, StoredRDM] = field(default_factory=dict)
    root_accuracy: float | None = None
    versions: dict[int, StoredVersion] = field(default_factory=dict)

    @property
    def numbers(self) -> list[int]:
        """The version numbers, ascending: 0 and each added version."""
        return [0, *sorted(self.versions)]

    def layers(self, version: int) -> dict[str, StoredRDM]:
        """The RDMs of one version (kept, not copied, so values read into them stay read)."""
        return self.root_layers if version == 0 else self.versions[version].layers

    def groups(self) -> Iterator[tuple[str, dict[str, StoredRDM]]]:
        """Yields `(HDF5 group, RDMs)` for every version, version 0 first."""
        yield rdm_group(0), self.root_layers
        for number, stored in self.versions.items():
            yield rdm_group(number), stored.layers

    def checked(self, version: Any, path: Path) -> int:
        """`version` as an int, if the file at `path` has it.

        Raises:
            KeyError: It has no such version; the message names the file and lists its versions.
        """
        if (
            isinstance(version, bool)
            or not isinstance(version, (int, np.integer))
            or version not in self.numbers
        ):
            raise KeyError(f"{path} has no teacher version {version!r}; it has: {self.numbers}")
        return int(version)

    def info(self, version: int, created: str, source: str) -> dict[str, Any]:
        """What the file records about one version (`TeacherStore.version_info` describes the keys).

        Args:
            version: A version number these records hold.
            created: When the file was first written, version 0's `created`.
            source: Where the probe set came from, version 0's `source`.
        """
        if version == 0:
            return {
                "version": 0,
                "created": created,
                "source": source,
                "validation_accuracy": self.root_accuracy,
                "layers": list(self.root_layers),
            }
        stored = self.versions[version]
        return {"version": version, **copy.deepcopy(stored.info), "layers": list(stored.layers)}

    def add(self, info: dict[str, Any], layers: dict[str, StoredRDM]) -> int:
        """Adds the next version (the latest number plus 1) and returns its number."""
        number = self.numbers[-1] + 1
        self.versions[number] = StoredVersion(info, layers)
        return number

    def check_none_unread(self, path: Path) -> None:
        """Refuses to rewrite `path` when it holds a teacher version another process added since.

        Raises:
            TeacherFileError: The file on disk holds a version these records lack, or is not readable.
        """

        def fail(problem: str) -> TeacherFileError:
            return TeacherFileError(f"{path}: {problem}")

        if not path.exists():
            return
        with reading(path) as file:
            on_disk = sorted(version_number(key, fail) for key in file.get(VERSIONS_GROUP, {}))
        unknown = sorted(set(on_disk) - set(self.versions))
        if unknown:
            raise TeacherFileError(
                f"{path}: the file holds teacher version(s) {unknown} that this store has not read "
                "(another process added them); reopen it with TeacherStore.open before rewriting it"
            )


def rdm_group(version: int) -> str:
    """The HDF5 group that holds a version's RDMs: `rdms`, or `versions/<k>/rdms`."""
    return "rdms" if version == 0 else f"{VERSIONS_GROUP}/{version}/rdms"


def new_version_info(
    validation_accuracy: float,
    source: str,
    parent_version: int,
    trial_id: str,
    hyperparameters: Mapping[str, Any] | None,
    training: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The attributes of a version about to be added, checked, with `created` set to now.

    Raises:
        ValueError: An accuracy outside [0, 1], or values JSON cannot hold.
    """
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "parent_version": parent_version,
        "validation_accuracy": checked_accuracy(validation_accuracy),
        "trial_id": str(trial_id),
        "hyperparameters": json_object("hyperparameters", hyperparameters),
        "training": json_object("training", training),
    }
