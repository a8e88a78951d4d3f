"""The teacher file format: probe images and one RDM per teacher layer or brain region, in HDF5.

This is the authoritative description of teacher file format 2; `TeacherStore` reads and writes it.

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
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from keras_sage._errors import first_line
from keras_sage.rsa import LEVELS, NoiseCeiling

FORMAT = "keras-sage-teacher"
# The format version of a file with teacher versions; a file without them is written as version 1.
FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)
VERSIONS_GROUP = "versions"
VERSION_ATTRS = (
    "created",
    "source",
    "parent_version",
    "validation_accuracy",
    "trial_id",
    "hyperparameters",
    "training",
)
JSON_VERSION_ATTRS = ("hyperparameters", "training")
KINDS = ("model-layer", "neural-region")
LAYER_ATTRS = ("kind", "source", "layer", "metric", "level", "n", "n_features", "n_features_used", "seed")
# The optional noise-ceiling attributes of an RDM, and the `NoiseCeiling` field each holds.
CEILING_ATTRS = {
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


# Makes the error for a problem in one teacher file; the message names the file.
Fail = Callable[[str], TeacherFileError]


@dataclass
class StoredRDM:
    """One stored RDM: its attributes (`LAYER_ATTRS`), and its values once read."""

    info: dict[str, Any]
    values: np.ndarray | None = None
    categories: np.ndarray | None = None
    ceiling: NoiseCeiling | None = None


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


def check_rdm_shape(
    name: str,
    n: int,
    level: str,
    categories: np.ndarray | None,
    shape: tuple[int, ...],
    probe_labels: np.ndarray | None,
    n_images: int,
) -> None:
    """Checks that an RDM fits a probe set: its level, its number of rows or categories, its length.

    Args:
        name: The RDM's name, for the error message.
        n: The number of rows it compares (images, or categories at category level).
        level: `"image"` or `"category"`.
        categories: The categories of a category-level RDM, else `None`.
        shape: The shape of its stored values.
        probe_labels: The probe set's labels, or `None`.
        n_images: The number of probe images.

    Raises:
        ValueError: It does not fit; the message names the RDM and says why.
    """
    if level not in LEVELS:
        raise ValueError(f"RDM {name!r} has level {level!r}; expected one of {', '.join(LEVELS)}")
    if level == "image" and n != n_images:
        raise ValueError(
            f"RDM {name!r} is over {n} images but the probe set has {n_images}; "
            "compute it on this store's probe images"
        )
    if level == "category":
        if probe_labels is None:
            raise ValueError(f"RDM {name!r} is category-level but the probe set has no labels")
        if categories is None or len(categories) != n:
            raise ValueError(f"RDM {name!r} is category-level but does not list its {n} categories")
        unknown = np.setdiff1d(categories, probe_labels)
        if unknown.size:
            raise ValueError(f"RDM {name!r} has categories {unknown.tolist()} not among the probe labels")
    expected = (n * (n - 1) // 2,)
    if tuple(shape) != expected:
        raise ValueError(f"RDM {name!r} has shape {tuple(shape)}; an upper triangle of {n} needs {expected}")


def checked_accuracy(accuracy: Any) -> float:
    """A validation accuracy as stored: a real number in [0, 1], as a float.

    Raises:
        ValueError: It is not a number in [0, 1].
    """
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float, np.integer, np.floating)):
        raise ValueError(f"validation_accuracy must be a number in [0, 1]; got {accuracy!r}")
    if not 0.0 <= float(accuracy) <= 1.0:
        raise ValueError(f"validation_accuracy must be a number in [0, 1]; got {accuracy!r}")
    return float(accuracy)


def json_object(name: str, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """`values` as a plain dict that JSON can hold (checked now, so a bad value fails before writing).

    Raises:
        ValueError: JSON cannot hold a value; the message names the parameter `name`.
    """
    data = dict(values or {})
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be JSON-serialisable (str, int, float, bool, None): {error}") from None
    return data


def version_number(key: str, fail: Fail) -> int:
    """The number of a `/versions/<k>` group, a positive integer in decimal; `fail` names a bad one."""
    if not (key.isascii() and key.isdigit()) or key != str(int(key)) or int(key) < 1:
        raise fail(f"/{VERSIONS_GROUP}/{key}: a teacher version is named by a positive integer")
    return int(key)


@contextlib.contextmanager
def reading(path: Path) -> Iterator[h5py.File]:
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
