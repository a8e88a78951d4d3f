"""The teacher file: probe images and one RDM per teacher layer or brain region, in HDF5.

A teacher file is self-contained, so a student is always scored on exactly the images the teacher saw.
Layout (format version 1, and version 0 of a format version 2 file):

```
/                attrs: format="keras-sage-teacher", format_version=1, created, keras_sage_version
/probe/images    uint8 or float32 (n, H, W, C), gzip
/probe/labels    int64 (n,), only when the probe set has labels
/probe           attrs: fingerprint (sha256 of images and labels), source
/rdms/<name>     float32 upper triangle (k=1, row-major) of the RDM
                 attrs: kind ("model-layer" | "neural-region"), source, layer, metric, level
                 ("image" | "category"), n, n_features, n_features_used, seed
                 (+ categories, for category-level RDMs); /rdms keeps the order RDMs were added
                 optional, for recordings registered with repeats (`keras_sage.rsa.NoiseCeiling`):
                 reliability, reliability_std (float64), split_reliabilities (float64 array, one per
                 split), noise_ceiling_lower, noise_ceiling_upper (float64, NaN when some repeat is
                 missing), noise_ceiling_method (the comparison method), n_repeats
```

The noise-ceiling attributes are optional: files written before they existed open unchanged, and a
release that does not know them ignores them. They are all present or all absent. `/rdms` may carry the
attribute validation_accuracy (float64), the accuracy of the model whose layers they are.

Format version 2 adds teacher versions (`keras_sage.tuners.Bootstrap` writes them): the `/rdms` above are
version 0, unchanged, and each later version k = 1, 2, ... lives beside them on the same probe images:

```
/versions/<k>       attrs: created, source, parent_version (int), validation_accuracy (float64),
                    trial_id (str, "" if none), hyperparameters (JSON object: the architecture's
                    hyperparameter values), training (JSON object: how it was trained, e.g. epochs)
/versions/<k>/rdms/<name>   as /rdms/<name>
```

A version, once written, is never rewritten or removed: `add_version` only adds the next number, and
refuses to write when the file on disk holds a version this store has not read. A file without versions
is written as format version 1, so releases that read only version 1 still open it. JSON attributes are
parsed with `json.loads`; nothing in a teacher file is ever unpickled or executed.

Every write goes to a temporary file in the same directory that then replaces the old file
(`os.replace`), so a crash mid-write leaves the previous file intact. Reading uses HDF5 mode `"r"`.
Two processes adding layers to the same file at the same time can lose one of the additions.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from keras_sage._atomic import write_atomically
from keras_sage._errors import first_line
from keras_sage._validation import check_choice
from keras_sage._version import __version__
from keras_sage.rsa import LEVELS, METRICS, RDM, NoiseCeiling

FORMAT = "keras-sage-teacher"
# The format version of a file with teacher versions; a file without them is written as version 1.
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
VERSIONS_GROUP = "versions"
_VERSION_ATTRS = (
    "created",
    "source",
    "parent_version",
    "validation_accuracy",
    "trial_id",
    "hyperparameters",
    "training",
)
_JSON_VERSION_ATTRS = ("hyperparameters", "training")
KINDS = ("model-layer", "neural-region")
_LAYER_ATTRS = ("kind", "source", "layer", "metric", "level", "n", "n_features", "n_features_used", "seed")
# The optional noise-ceiling attributes of an RDM, and the `NoiseCeiling` field each holds.
_CEILING_ATTRS = {
    "reliability": "reliability",
    "reliability_std": "reliability_std",
    "split_reliabilities": "split_reliabilities",
    "noise_ceiling_lower": "lower",
    "noise_ceiling_upper": "upper",
    "noise_ceiling_method": "method",
    "n_repeats": "n_repeats",
}


class TeacherFileError(Exception):
    """A teacher file cannot be read or written; the message names the file and what is wrong."""


def probe_fingerprint(images: np.ndarray, labels: np.ndarray | None) -> str:
    """The SHA-256 of a probe set: the images' dtype, shape and bytes, then the labels' (if any).

    Teacher files store it, and students are scored only on probe sets with the same fingerprint. It is
    taken over the arrays in the form a teacher file stores them (`uint8` images kept, other images as
    `float32`, labels as `int64`), so the same probe set gives the same fingerprint whatever dtypes it is
    passed in.

    Args:
        images: Probe images, `uint8` or floating point, shape `(n, H, W, C)`.
        labels: Integer labels, one per image, or `None`.

    Returns:
        The hex digest.
    """
    images = probe_images_as_stored(images)
    labels = probe_labels_as_stored(labels, images.shape[0])
    digest = hashlib.sha256()
    for array in (images, labels):
        if array is None:
            digest.update(b"none")
            continue
        digest.update(array.dtype.str.encode())
        digest.update(repr(array.shape).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def probe_images_as_stored(images: Any) -> np.ndarray:
    """Probe images as a teacher file stores them: uint8 kept, floats as float32; at least 3 images."""
    images = np.asarray(images)
    if images.ndim < 2 or images.shape[0] < 3:
        raise ValueError(
            f"probe_images must hold at least 3 images, shape (n, H, W, C); got shape {images.shape}"
        )
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    if np.issubdtype(images.dtype, np.floating):
        return np.ascontiguousarray(images, dtype=np.float32)
    raise ValueError(f"probe_images must be uint8 or floating point; got dtype {images.dtype}")


def probe_labels_as_stored(labels: Any, n_images: int) -> np.ndarray | None:
    """Probe labels as a teacher file stores them: int64, one per image (None stays None)."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (n_images,):
        raise ValueError(f"probe_labels must have shape ({n_images},), one per image; got {labels.shape}")
    whole_numbers = np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))
    if not np.issubdtype(labels.dtype, np.integer) and not whole_numbers:
        raise ValueError(f"probe_labels must be integers; got dtype {labels.dtype}")
    return np.asarray(labels, dtype=np.int64)


def check_rdm_name(name: Any, what: str = "an RDM name") -> None:
    """Checks that HDF5 can hold `name` as the name of an RDM, before anything is computed or written.

    A name must be a non-empty string other than "." and "..", without "/" (HDF5's path separator) or
    NUL (where HDF5 would cut it), that UTF-8 can encode.

    Args:
        name: The layer or region name.
        what: How to name it in the error message, e.g. "region name".

    Raises:
        ValueError: The name cannot be stored; the message says why.
    """
    problem = None
    if not isinstance(name, str):
        problem = f"must be a string, got {type(name).__name__}"
    elif not name or name in (".", ".."):
        problem = "must not be empty, '.' or '..'"
    elif "/" in name or "\x00" in name:
        problem = "must be written without '/' or NUL (HDF5 reads them as a path separator, an end of name)"
    else:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            problem = "must be encodable as UTF-8"
    if problem is not None:
        raise ValueError(f"{what} {name!r} cannot be stored in a teacher file: it {problem}")


@dataclass
class _Layer:
    """One stored RDM: its attributes, and its values once read."""

    info: dict[str, Any]
    values: np.ndarray | None = None
    categories: np.ndarray | None = None
    ceiling: NoiseCeiling | None = None


@dataclass
class _Version:
    """One teacher version after version 0: its attributes (JSON ones parsed) and its RDMs."""

    info: dict[str, Any]
    layers: dict[str, _Layer]


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
        self._layers: dict[str, _Layer] = {}
        # Version 0's RDMs (the file's /rdms) and its validation accuracy; a view's `_layers` are another
        # version's, read from `_group`.
        self._root_layers = self._layers
        self._root_accuracy: float | None = None
        self._group = "rdms"
        self._versions: dict[int, _Version] = {}

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
        return [0, *sorted(self._versions)]

    @property
    def latest_version(self) -> int:
        """The newest teacher version in the file."""
        return self.versions[-1]

    @property
    def validation_accuracy(self) -> float | None:
        """The validation accuracy recorded for this store's version, or `None` if none was recorded."""
        if self.version == 0:
            return self._root_accuracy
        return float(self._versions[self.version].info["validation_accuracy"])

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
        version = self.version if version is None else self._checked_version(version)
        if version == 0:
            return {
                "version": 0,
                "created": self.created,
                "source": self.source,
                "validation_accuracy": self._root_accuracy,
                "layers": list(self._root_layers),
            }
        stored = self._versions[version]
        return {"version": version, **copy.deepcopy(stored.info), "layers": list(stored.layers)}

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
        version = self._checked_version(version)
        view = copy.copy(self)
        view.version = version
        view.writable = False
        view._layers = self._root_layers if version == 0 else self._versions[version].layers
        view._group = "rdms" if version == 0 else f"{VERSIONS_GROUP}/{version}/rdms"
        return view

    def _checked_version(self, version: Any) -> int:
        if (
            isinstance(version, bool)
            or not isinstance(version, (int, np.integer))
            or version not in self.versions
        ):
            raise KeyError(f"{self.path} has no teacher version {version!r}; it has: {self.versions}")
        return int(version)

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
        with _reading(path) as file:
            store = cls._from_file(path, file, writable)
        return store

    @classmethod
    def _from_file(cls, path: Path, file: h5py.File, writable: bool) -> TeacherStore:
        def fail(problem: str) -> TeacherFileError:
            return TeacherFileError(f"{path}: {problem}")

        if file.attrs.get("format") != FORMAT:
            raise fail(f"not a keras-sage teacher file (attribute format is not {FORMAT!r})")
        version = file.attrs.get("format_version")
        if version not in READABLE_FORMAT_VERSIONS:
            readable = ", ".join(str(v) for v in READABLE_FORMAT_VERSIONS)
            raise fail(f"format_version {version} is not supported; this release reads version(s) {readable}")
        for group in ("probe", "rdms"):
            if not isinstance(file.get(group), h5py.Group):
                raise fail(f"missing group /{group}")
        probe = file["probe"]
        if not isinstance(probe.get("images"), h5py.Dataset):
            raise fail("missing dataset /probe/images")
        images = probe["images"][()]
        labels = probe["labels"][()] if "labels" in probe else None
        try:
            store = cls(
                path,
                images,
                labels,
                source=str(probe.attrs.get("source", "")),
                writable=writable,
                created=str(file.attrs.get("created", "")) or None,
            )
        except ValueError as error:
            raise fail(f"invalid probe set: {error}") from None
        if store.probe_images.dtype != images.dtype:
            raise fail(f"/probe/images has dtype {images.dtype}; expected uint8 or float32")
        if probe.attrs.get("fingerprint") != store.fingerprint:
            raise fail("the probe images or labels were modified (their fingerprint does not match)")

        store._layers.update(store._read_layers(file["rdms"], "/rdms", fail))
        if "validation_accuracy" in file["rdms"].attrs:
            store._root_accuracy = _accuracy(file["rdms"].attrs["validation_accuracy"], "/rdms", fail)
        versions = file.get(VERSIONS_GROUP)
        if versions is not None:
            if version < 2 or not isinstance(versions, h5py.Group):
                raise fail(f"/{VERSIONS_GROUP} is not a group of a format_version 2 file")
            for key, group in versions.items():
                number = _version_number(key, fail)
                store._versions[number] = store._read_version(key, group, fail)
        return store

    def _read_layers(self, group: Any, where: str, fail: Any) -> dict[str, _Layer]:
        """The RDMs of one version's `rdms` group, checked, without their values."""
        layers = {}
        for name, dataset in group.items():
            if not isinstance(dataset, h5py.Dataset):
                raise fail(f"{where}/{name} is not a dataset")
            missing = [attr for attr in _LAYER_ATTRS if attr not in dataset.attrs]
            if missing:
                raise fail(f"{where}/{name} lacks attribute(s) {', '.join(missing)}")
            info = {attr: _python(dataset.attrs[attr]) for attr in _LAYER_ATTRS}
            if info["metric"] not in METRICS:
                raise fail(
                    f"{where}/{name} has metric {info['metric']!r}; this release knows {', '.join(METRICS)}"
                )
            categories = dataset.attrs.get("categories")
            try:
                self._check_rdm_shape(name, info["n"], info["level"], categories, dataset.shape)
            except ValueError as error:
                raise fail(str(error)) from None
            ceiling = _ceiling_from_attrs(dataset.attrs, f"{where}/{name}", fail)
            layers[name] = _Layer(info, categories=categories, ceiling=ceiling)
        return layers

    def _read_version(self, key: str, group: Any, fail: Any) -> _Version:
        """One `/versions/<k>` group, checked: its attributes (JSON parsed) and its RDMs."""
        where = f"/{VERSIONS_GROUP}/{key}"
        if not isinstance(group, h5py.Group) or not isinstance(group.get("rdms"), h5py.Group):
            raise fail(f"{where} is not a teacher version (a group with an rdms group)")
        missing = [attr for attr in _VERSION_ATTRS if attr not in group.attrs]
        if missing:
            raise fail(f"{where} lacks attribute(s) {', '.join(missing)}")
        info = {attr: _python(group.attrs[attr]) for attr in _VERSION_ATTRS}
        for attr in _JSON_VERSION_ATTRS:
            try:
                info[attr] = json.loads(info[attr])
            except (TypeError, ValueError):
                raise fail(f"{where} attribute {attr} is not JSON") from None
            if not isinstance(info[attr], dict):
                raise fail(f"{where} attribute {attr} is not a JSON object")
        info["validation_accuracy"] = _accuracy(info["validation_accuracy"], where, fail)
        try:
            info["parent_version"] = int(info["parent_version"])
        except (TypeError, ValueError):
            raise fail(
                f"{where} attribute parent_version is not an integer: {info['parent_version']!r}"
            ) from None
        info["trial_id"] = str(info["trial_id"])
        layers = self._read_layers(group["rdms"], f"{where}/rdms", fail)
        if not layers:
            raise fail(f"{where} holds no RDMs")
        return _Version(info, layers)

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
            self._load_values(self._group, self._layers)
        assert layer.values is not None  # Loaded just above.
        return layer.values

    def _load_values(self, group: str, layers: Mapping[str, _Layer]) -> None:
        """Reads the values of `layers` (of the file's `group`) that are not in memory yet."""
        if all(layer.values is not None for layer in layers.values()):
            return
        with _reading(self.path) as file:
            for name, layer in layers.items():
                if layer.values is None:
                    if f"{group}/{name}" not in file:
                        raise TeacherFileError(f"{self.path}: /{group}/{name} disappeared from the file")
                    layer.values = np.asarray(file[f"{group}/{name}"][()], dtype=np.float32)

    def _layer(self, name: str) -> _Layer:
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
        accuracy = self._root_accuracy
        if validation_accuracy is not None:
            accuracy = _checked_accuracy(validation_accuracy)
        new_layers = self._new_layers(rdms, kind, source, layers or {}, ceilings or {})
        clashes = [name for name in new_layers if name in self._layers]
        if clashes and not overwrite:
            raise ValueError(f"{self.path} already has an RDM named {clashes[0]!r}; pass overwrite=True")
        self._check_no_unread_versions()
        self._load_everything()
        previous_layers, previous_accuracy = dict(self._layers), self._root_accuracy
        self._layers.update(new_layers)
        self._root_accuracy = accuracy
        try:
            self._save()
        except BaseException:
            self._layers.clear()
            self._layers.update(previous_layers)
            self._root_accuracy = previous_accuracy
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
        accuracy = _checked_accuracy(accuracy)
        self._check_no_unread_versions()
        self._load_everything()
        previous, self._root_accuracy = self._root_accuracy, accuracy
        try:
            self._save()
        except BaseException:
            self._root_accuracy = previous
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
        new_layers = self._new_layers(rdms, "model-layer", source, {}, {})
        parent = self.latest_version if parent_version is None else self._checked_version(parent_version)
        info = {
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "source": source,
            "parent_version": parent,
            "validation_accuracy": _checked_accuracy(validation_accuracy),
            "trial_id": str(trial_id),
            "hyperparameters": _json_object("hyperparameters", hyperparameters),
            "training": _json_object("training", training),
        }

        self._check_no_unread_versions()
        self._load_everything()
        number = self.latest_version + 1
        self._versions[number] = _Version(info, new_layers)
        try:
            self._save()
        except BaseException:
            del self._versions[number]
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

    def _check_no_unread_versions(self) -> None:
        """Refuses to rewrite the file when it holds a teacher version another process added since."""

        def fail(problem: str) -> TeacherFileError:
            return TeacherFileError(f"{self.path}: {problem}")

        if not self.path.exists():
            return
        with _reading(self.path) as file:
            on_disk = sorted(_version_number(key, fail) for key in file.get(VERSIONS_GROUP, {}))
        unknown = sorted(set(on_disk) - set(self._versions))
        if unknown:
            raise TeacherFileError(
                f"{self.path}: the file holds teacher version(s) {unknown} that this store has not read "
                "(another process added them); reopen it with TeacherStore.open before rewriting it"
            )

    def _load_everything(self) -> None:
        """Reads every RDM value of every version into memory, before the file is rewritten."""
        self._load_values("rdms", self._root_layers)
        for number, stored in self._versions.items():
            self._load_values(f"{VERSIONS_GROUP}/{number}/rdms", stored.layers)

    def _new_layers(
        self,
        rdms: Mapping[str, RDM],
        kind: str,
        source: str,
        layers: Mapping[str, str],
        ceilings: Mapping[str, NoiseCeiling],
    ) -> dict[str, _Layer]:
        """RDMs to store, checked against this probe set, with their attributes."""
        new_layers = {}
        for name, rdm in rdms.items():
            check_rdm_name(name)
            values = np.asarray(rdm.values, dtype=np.float32)
            categories = None if rdm.categories is None else np.asarray(rdm.categories)
            self._check_rdm_shape(name, rdm.n, rdm.level, categories, values.shape)
            info = {
                "kind": kind,
                "source": source,
                "layer": layers.get(name, name),
                "metric": rdm.metric,
                "level": rdm.level,
                "n": int(rdm.n),
                "n_features": int(rdm.n_features),
                "n_features_used": int(rdm.n_features_used),
                "seed": int(rdm.seed),
            }
            new_layers[name] = _Layer(info, values=values, categories=categories, ceiling=ceilings.get(name))
        return new_layers

    def _check_rdm_shape(
        self, name: str, n: int, level: str, categories: np.ndarray | None, shape: tuple[int, ...]
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"RDM {name!r} has level {level!r}; expected one of {', '.join(LEVELS)}")
        if level == "image" and n != self.n_images:
            raise ValueError(
                f"RDM {name!r} is over {n} images but the probe set has {self.n_images}; "
                "compute it on this store's probe images"
            )
        if level == "category":
            if self.probe_labels is None:
                raise ValueError(f"RDM {name!r} is category-level but the probe set has no labels")
            if categories is None or len(categories) != n:
                raise ValueError(f"RDM {name!r} is category-level but does not list its {n} categories")
            unknown = np.setdiff1d(categories, self.probe_labels)
            if unknown.size:
                raise ValueError(f"RDM {name!r} has categories {unknown.tolist()} not among the probe labels")
        expected = (n * (n - 1) // 2,)
        if tuple(shape) != expected:
            raise ValueError(
                f"RDM {name!r} has shape {tuple(shape)}; an upper triangle of {n} needs {expected}"
            )

    def _save(self) -> None:
        """Writes the whole store to a temporary file in the same directory, then renames it over `path`."""

        def write_hdf5(target: Any) -> None:
            with h5py.File(target, "w") as file:
                file.attrs["format"] = FORMAT
                file.attrs["format_version"] = FORMAT_VERSION if self._versions else 1
                file.attrs["created"] = self.created
                file.attrs["keras_sage_version"] = __version__
                probe = file.create_group("probe")
                probe.create_dataset("images", data=self.probe_images, compression="gzip")
                if self.probe_labels is not None:
                    probe.create_dataset("labels", data=self.probe_labels)
                probe.attrs["fingerprint"] = self.fingerprint
                probe.attrs["source"] = self.source
                rdms = _write_layers(file.create_group("rdms", track_order=True), self._root_layers)
                if self._root_accuracy is not None:
                    rdms.attrs["validation_accuracy"] = self._root_accuracy
                if self._versions:
                    versions = file.create_group(VERSIONS_GROUP)
                    for number, stored in sorted(self._versions.items()):
                        group = versions.create_group(str(number))
                        for attr, value in stored.info.items():
                            group.attrs[attr] = json.dumps(value) if attr in _JSON_VERSION_ATTRS else value
                        _write_layers(group.create_group("rdms", track_order=True), stored.layers)

        write_atomically(self.path, write_hdf5)


def _write_layers(group: Any, layers: Mapping[str, _Layer]) -> Any:
    """Writes RDMs, with their attributes, into an HDF5 group; returns the group."""
    for name, layer in layers.items():
        dataset = group.create_dataset(name, data=layer.values)
        for attr, value in layer.info.items():
            dataset.attrs[attr] = value
        if layer.categories is not None:
            dataset.attrs["categories"] = layer.categories
        if layer.ceiling is not None:
            for attr, field in _CEILING_ATTRS.items():
                dataset.attrs[attr] = getattr(layer.ceiling, field)
    return group


def _version_number(key: str, fail: Any) -> int:
    """The number of a `/versions/<k>` group: a positive integer written in decimal."""
    if not (key.isascii() and key.isdigit()) or key != str(int(key)) or int(key) < 1:
        raise fail(f"/{VERSIONS_GROUP}/{key}: a teacher version is named by a positive integer")
    return int(key)


def _checked_accuracy(accuracy: Any) -> float:
    """A validation accuracy: a real number in [0, 1]."""
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float, np.integer, np.floating)):
        raise ValueError(f"validation_accuracy must be a number in [0, 1]; got {accuracy!r}")
    if not 0.0 <= float(accuracy) <= 1.0:
        raise ValueError(f"validation_accuracy must be a number in [0, 1]; got {accuracy!r}")
    return float(accuracy)


def _accuracy(value: Any, where: str, fail: Any) -> float:
    """A stored validation accuracy, checked; `fail` names the place of a bad one."""
    try:
        return _checked_accuracy(_python(value))
    except ValueError:
        raise fail(f"{where} attribute validation_accuracy is not a number in [0, 1]: {value!r}") from None


def _json_object(name: str, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """`values` as a plain dict that JSON can hold (checked now, so a bad value fails before writing)."""
    data = dict(values or {})
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be JSON-serialisable (str, int, float, bool, None): {error}") from None
    return data


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[h5py.File]:
    """Opens `path` read-only; HDF5 errors (a truncated or corrupt file) become `TeacherFileError`."""
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise TeacherFileError(f"{path}: truncated or not an HDF5 file ({first_line(error)})") from None
    try:
        with file:
            yield file
    except OSError as error:
        raise TeacherFileError(f"{path}: the file is damaged or truncated ({first_line(error)})") from None


def _ceiling_from_attrs(attrs: Any, where: str, fail: Any) -> NoiseCeiling | None:
    """The `NoiseCeiling` in a dataset's attributes, `None` if it has none; `fail` names a partial one."""
    present = [attr for attr in _CEILING_ATTRS if attr in attrs]
    if not present:
        return None
    if len(present) < len(_CEILING_ATTRS):
        missing = [attr for attr in _CEILING_ATTRS if attr not in attrs]
        raise fail(f"{where} has a noise ceiling without attribute(s) {', '.join(missing)}")
    fields = {field: _python(attrs[attr]) for attr, field in _CEILING_ATTRS.items()}
    fields["split_reliabilities"] = np.asarray(attrs["split_reliabilities"], dtype=np.float64).reshape(-1)
    try:
        return NoiseCeiling(
            reliability=float(fields["reliability"]),
            reliability_std=float(fields["reliability_std"]),
            split_reliabilities=fields["split_reliabilities"],
            lower=float(fields["lower"]),
            upper=float(fields["upper"]),
            method=str(fields["method"]),
            n_repeats=int(fields["n_repeats"]),
        )
    except (TypeError, ValueError) as error:
        raise fail(f"{where} has an invalid noise ceiling ({error})") from None


def _python(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value (str, int, float)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
