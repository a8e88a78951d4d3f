"""`TeacherStore`: a teacher file in memory, read from and written to HDF5.

The file's layout is described in `keras_sage.teachers.format`. The store delegates reading to
`keras_sage.teachers.reader`, writing to `keras_sage.teachers.writer` and the teacher versions' records
to `keras_sage.teachers.versions`. The format's public names (`TeacherFileError`, `probe_fingerprint`,
`check_rdm_name`, ...) are importable from here as well, as they were before the format had a module.
"""

from __future__ import annotations

import copy
import datetime
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_sage._atomic import write_atomically
from keras_sage._validation import check_choice
from keras_sage.rsa import RDM, NoiseCeiling
from keras_sage.teachers.format import (
    FORMAT,
    FORMAT_VERSION,
    KINDS,
    READABLE_FORMAT_VERSIONS,
    VERSIONS_GROUP,
    StoredRDM,
    TeacherFileError,
    check_rdm_name,
    checked_accuracy,
    probe_fingerprint,
    probe_images_as_stored,
    probe_labels_as_stored,
    reading,
)
from keras_sage.teachers.reader import check_probe, load_values, read_header, read_records
from keras_sage.teachers.versions import TeacherRecords, new_version_info, rdm_group
from keras_sage.teachers.writer import stored_rdms, write_teacher_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "KINDS",
    "READABLE_FORMAT_VERSIONS",
    "VERSIONS_GROUP",
    "TeacherFileError",
    "TeacherStore",
    "check_rdm_name",
    "probe_fingerprint",
    "probe_images_as_stored",
    "probe_labels_as_stored",
]


class TeacherStore:
    """A teacher file: probe images, their labels and fingerprint, and one RDM per teacher layer.

    Use `TeacherStore.create` to start a file and `TeacherStore.open` to read one; the constructor only
    builds the in-memory store and writes nothing. A store that is not writable (what `open` returns by
    default) refuses every write; RDM values are read from the file on first use.

    A file may hold several teacher versions on the same probe images (format version 2): `versions`
    lists them, `add_version` adds the next one, and `at_version(k)` is a read-only view whose
    `layer_names`, `rdm` and `rdms` are those of version k (a `TeacherGuidedScorer` built on the view
    scores against version k). `open` returns version 0, the file's `/rdms`.

    Args:
        path: The HDF5 file.
        probe_images: The probe images, `uint8` or `float32`, shape `(n, H, W, C)`.
        probe_labels: Integer labels, shape `(n,)`, or `None`.
        source: Where the probe set came from (free text).
        writable: Whether `add_rdm` may rewrite the file.
        created: When the file was first written (ISO 8601); defaults to now.

    Example:

    ```python
    store = TeacherStore.create("teacher.h5", probe_images, probe_labels)
    store.add_rdm("conv1", keras_sage.rdm(conv1_activations), source="resnet.keras")
    teacher = TeacherStore.open("teacher.h5")
    teacher.rdm("conv1").square()
    teacher.versions, teacher.at_version(teacher.latest_version).layer_names
    ```
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        probe_images: np.ndarray,
        probe_labels: np.ndarray | None,
        source: str = "",
        writable: bool = False,
        created: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.probe_images = probe_images_as_stored(probe_images)
        self.probe_labels = probe_labels_as_stored(probe_labels, self.probe_images.shape[0])
        self.fingerprint = probe_fingerprint(self.probe_images, self.probe_labels)
        self.source = source
        self.writable = writable
        self.created = created or datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.version = 0
        self._records = TeacherRecords()

    @property
    def n_images(self) -> int:
        """The number of probe images."""
        return int(self.probe_images.shape[0])

    @property
    def layer_names(self) -> list[str]:
        """The names of the stored RDMs, in the order they were added."""
        return list(self._layers)

    @property
    def versions(self) -> list[int]:
        """The teacher versions in the file, ascending: 0 (the `/rdms`) and each added version."""
        return self._records.numbers

    @property
    def latest_version(self) -> int:
        """The newest teacher version in the file."""
        return self.versions[-1]

    @property
    def validation_accuracy(self) -> float | None:
        """The validation accuracy recorded for this store's version, or `None` if none was recorded."""
        if self.version == 0:
            return self._records.root_accuracy
        return float(self._records.versions[self.version].info["validation_accuracy"])

    @property
    def _layers(self) -> dict[str, StoredRDM]:
        """This store's version's RDMs."""
        return self._records.layers(self.version)

    def version_info(self, version: int | None = None) -> dict[str, Any]:
        """What the file records about a teacher version.

        Args:
            version: The version; defaults to this store's.

        Returns:
            For version 0: `created`, `source` (the probe set's), `validation_accuracy` (`None` if not
            recorded) and `layers`. For a later version also `parent_version`, `trial_id`,
            `hyperparameters` and `training` (dicts parsed from JSON).

        Raises:
            KeyError: The file has no such version; the message lists its versions.
        """
        version = self.version if version is None else self._records.checked(version, self.path)
        return self._records.info(version, self.created, self.source)

    def at_version(self, version: int) -> TeacherStore:
        """A read-only view of teacher version `version`: its RDMs, on the same probe images.

        Args:
            version: One of `versions`.

        Returns:
            A `TeacherStore` whose `version` is `version`; its `layer_names`, `rdm`, `rdms`,
            `layer_info` and `validation_accuracy` are that version's.

        Raises:
            KeyError: The file has no such version; the message lists its versions.
        """
        version = self._records.checked(version, self.path)
        view = copy.copy(self)
        view.version = version
        view.writable = False
        # The view shares the versions' RDMs (values read through it stay read) but keeps version 0's
        # accuracy as it is now.
        view._records = copy.copy(self._records)
        return view

    def __repr__(self) -> str:
        version = f", version={self.version}" if self.version else ""
        return (
            f"TeacherStore({str(self.path)!r}, n_images={self.n_images}{version}, layers={self.layer_names})"
        )

    # Reading.

    @classmethod
    def open(cls, path: str | os.PathLike[str], writable: bool = False) -> TeacherStore:
        """Reads a teacher file.

        Checks the format and its version, the groups and attributes, the RDM sizes, and that the probe
        images still match their fingerprint. The file itself is only ever opened read-only.

        Args:
            path: The HDF5 file.
            writable: Whether the returned store may add RDMs (each addition rewrites the file).

        Returns:
            The store.

        Raises:
            FileNotFoundError: The file does not exist.
            TeacherFileError: The file is not a valid teacher file.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"teacher file not found: {path}")
        if not path.is_file():
            raise TeacherFileError(f"{path}: not a file")
        with reading(path) as file:
            header = read_header(path, file)
            try:
                store = cls(
                    path,
                    header.probe_images,
                    header.probe_labels,
                    source=header.probe_source,
                    writable=writable,
                    created=header.created,
                )
            except ValueError as error:
                raise TeacherFileError(f"{path}: invalid probe set: {error}") from None
            check_probe(path, header, store.probe_images, store.fingerprint)
            store._records = read_records(path, file, header, store.probe_labels, store.n_images)
        return store

    def rdm(self, name: str) -> RDM:
        """The RDM stored under `name`.

        Raises:
            KeyError: No RDM has that name; the message lists the stored names.
        """
        layer = self._layer(name)
        info = layer.info
        return RDM(
            values=self._values(name),
            n=info["n"],
            metric=info["metric"],
            level=info["level"],
            n_features=info["n_features"],
            n_features_used=info["n_features_used"],
            seed=info["seed"],
            categories=layer.categories,
            name=name,
        )

    def rdms(self) -> dict[str, RDM]:
        """Every stored RDM, by name, in the order they were added."""
        return {name: self.rdm(name) for name in self._layers}

    def layer_info(self, name: str) -> dict[str, Any]:
        """The attributes of one stored RDM: kind, source, layer, metric, level, n, n_features, ...

        Raises:
            KeyError: No RDM has that name; the message lists the stored names.
        """
        return dict(self._layer(name).info)

    def noise_ceiling(self, name: str) -> NoiseCeiling | None:
        """The noise ceiling stored with a region's RDM, or `None` (a model layer, no repeats, an older file).

        Raises:
            KeyError: No RDM has that name; the message lists the stored names.
        """
        return self._layer(name).ceiling

    def noise_ceilings(self) -> dict[str, NoiseCeiling]:
        """The noise ceiling of every RDM that has one, by name (see `keras_sage.rsa.NoiseCeiling`)."""
        return {name: layer.ceiling for name, layer in self._layers.items() if layer.ceiling is not None}

    def _values(self, name: str) -> np.ndarray:
        layer = self._layers[name]
        if layer.values is None:
            load_values(self.path, rdm_group(self.version), self._layers)
        assert layer.values is not None  # Loaded just above.
        return layer.values

    def _layer(self, name: str) -> StoredRDM:
        if name not in self._layers:
            raise KeyError(
                f"{self.path} has no RDM named {name!r}; it has: {', '.join(self._layers) or '(none)'}"
            )
        return self._layers[name]

    # Writing.

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        probe_images: np.ndarray,
        probe_labels: np.ndarray | None = None,
        source: str = "",
        overwrite: bool = False,
    ) -> TeacherStore:
        """Writes a new teacher file holding only the probe set, and returns it writable.

        Args:
            path: The HDF5 file to write.
            probe_images: `uint8` or floating-point images, shape `(n, H, W, C)`; floats are stored as
                `float32`.
            probe_labels: Integer labels, shape `(n,)`, or `None`. Category-level RDMs need them.
            source: Where the probe set came from (free text).
            overwrite: Whether to replace an existing file.

        Returns:
            The new, writable store.

        Raises:
            FileNotFoundError: The directory of `path` does not exist.
            FileExistsError: The file exists and `overwrite` is false.
        """
        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot write {path}: directory {path.parent} does not exist")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
        store = cls(path, probe_images, probe_labels, source=source, writable=True)
        store._save()
        return store

    def add_rdm(
        self,
        name: str,
        rdm: RDM,
        kind: str = "model-layer",
        source: str = "",
        layer: str | None = None,
        overwrite: bool = False,
    ) -> None:
        """Adds one RDM and rewrites the file; every other stored RDM is kept.

        Args:
            name: The name to store it under.
            rdm: The RDM, computed on this store's probe images.
            kind: `"model-layer"` or `"neural-region"`.
            source: Where the RDM came from (a model path, a recording file).
            layer: The model layer or brain region it was computed from; defaults to `name`.
            overwrite: Whether to replace an RDM already stored under `name`.
        """
        self.add_rdms(
            {name: rdm}, kind=kind, source=source, layers={name: layer or name}, overwrite=overwrite
        )

    def add_rdms(
        self,
        rdms: Mapping[str, RDM],
        kind: str = "model-layer",
        source: str = "",
        layers: Mapping[str, str] | None = None,
        overwrite: bool = False,
        ceilings: Mapping[str, NoiseCeiling] | None = None,
        validation_accuracy: float | None = None,
    ) -> None:
        """Adds several RDMs with one rewrite of the file; every other stored RDM is kept.

        Args:
            rdms: The RDMs by name, computed on this store's probe images.
            kind: `"model-layer"` or `"neural-region"`.
            source: Where the RDMs came from (a model path, a recording file).
            layers: The model layer or brain region of each name; defaults to the name.
            overwrite: Whether to replace RDMs already stored under the same names.
            ceilings: The noise ceiling of some of the names, stored with their RDMs.
            validation_accuracy: Version 0's validation accuracy, recorded in the same rewrite (as
                `set_validation_accuracy` does); `None` keeps the recorded one.

        Raises:
            TeacherFileError: The store was opened read-only, or the file on disk holds a teacher
                version this store has not read (reopen it).
            ValueError: A name exists and `overwrite` is false, an RDM does not fit the probe set, or
                `validation_accuracy` is not a number in [0, 1].
        """
        self._check_writable("add RDMs")
        check_choice("kind", kind, KINDS)
        accuracy = self._records.root_accuracy
        if validation_accuracy is not None:
            accuracy = checked_accuracy(validation_accuracy)
        new_layers = stored_rdms(
            rdms, kind, source, layers or {}, ceilings or {}, self.probe_labels, self.n_images
        )
        clashes = [name for name in new_layers if name in self._layers]
        if clashes and not overwrite:
            raise ValueError(f"{self.path} already has an RDM named {clashes[0]!r}; pass overwrite=True")
        self._records.check_none_unread(self.path)
        self._load_everything()
        previous_layers, previous_accuracy = dict(self._layers), self._records.root_accuracy
        self._layers.update(new_layers)
        self._records.root_accuracy = accuracy
        try:
            self._save()
        except BaseException:
            self._layers.clear()
            self._layers.update(previous_layers)
            self._records.root_accuracy = previous_accuracy
            raise

    def set_validation_accuracy(self, accuracy: float) -> None:
        """Records version 0's validation accuracy (the `/rdms` attribute) and rewrites the file.

        `keras_sage.tuners.Bootstrap` takes it as the accuracy a bootstrapped student must beat.

        Raises:
            TeacherFileError: The store is read-only, or the file on disk holds a teacher version this
                store has not read (reopen it).
            ValueError: `accuracy` is not a number in [0, 1].
        """
        self._check_writable("record a validation accuracy")
        accuracy = checked_accuracy(accuracy)
        self._records.check_none_unread(self.path)
        self._load_everything()
        previous, self._records.root_accuracy = self._records.root_accuracy, accuracy
        try:
            self._save()
        except BaseException:
            self._records.root_accuracy = previous
            raise

    def add_version(
        self,
        rdms: Mapping[str, RDM],
        validation_accuracy: float,
        source: str = "",
        parent_version: int | None = None,
        trial_id: str = "",
        hyperparameters: Mapping[str, Any] | None = None,
        training: Mapping[str, Any] | None = None,
    ) -> int:
        """Adds the next teacher version, on this file's probe images, and rewrites the file.

        Earlier versions are kept unchanged; no version is ever overwritten. The RDMs are stored as
        model layers (`kind="model-layer"`).

        Args:
            rdms: The new version's RDMs by name, computed on this store's probe images.
            validation_accuracy: The accuracy of the model they come from, in [0, 1].
            source: Where they came from (free text).
            parent_version: The version the new one replaces; defaults to the latest.
            trial_id: The search trial whose architecture the model is.
            hyperparameters: The architecture's hyperparameter values (stored as JSON).
            training: How the model was trained, e.g. `{"epochs": 10}` (stored as JSON).

        Returns:
            The new version's number (the latest plus 1).

        Raises:
            TeacherFileError: The store is read-only, or the file on disk holds a version this store has
                not read (reopen it).
            ValueError: No RDMs, a name HDF5 cannot hold, an RDM that does not fit the probe set, an
                accuracy outside [0, 1], or values JSON cannot hold.
        """
        self._check_writable("add a teacher version")
        if not rdms:
            raise ValueError(f"{self.path}: a teacher version needs at least one RDM")
        new_layers = stored_rdms(rdms, "model-layer", source, {}, {}, self.probe_labels, self.n_images)
        parent = (
            self.latest_version
            if parent_version is None
            else self._records.checked(parent_version, self.path)
        )
        info = new_version_info(validation_accuracy, source, parent, trial_id, hyperparameters, training)
        self._records.check_none_unread(self.path)
        self._load_everything()
        number = self._records.add(info, new_layers)
        try:
            self._save()
        except BaseException:
            del self._records.versions[number]
            raise
        return number

    def _check_writable(self, what: str) -> None:
        if self.version != 0:
            raise TeacherFileError(
                f"{self.path}: the view at teacher version {self.version} is read-only; {what} through the "
                "store TeacherStore.open(path, writable=True) returns"
            )
        if not self.writable:
            raise TeacherFileError(
                f"{self.path} was opened read-only; use TeacherStore.open(path, writable=True) to {what}"
            )

    def _load_everything(self) -> None:
        """Reads every RDM value of every version into memory, before the file is rewritten."""
        for group, layers in self._records.groups():
            load_values(self.path, group, layers)

    def _save(self) -> None:
        """Writes the whole store to a temporary file in the same directory, then renames it over `path`."""
        write = functools.partial(
            write_teacher_file,
            created=self.created,
            probe_images=self.probe_images,
            probe_labels=self.probe_labels,
            probe_source=self.source,
            fingerprint=self.fingerprint,
            records=self._records,
        )
        write_atomically(self.path, write)
