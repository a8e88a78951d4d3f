"""Checks of a teacher file against the scoring settings, made once when a scorer is built.

A teacher file can be unusable for a search (NaN or constant RDMs), or unusable with some settings: linear
CKA needs image-level Euclidean RDMs, normalising by noise ceilings needs a ceiling for every region, and a
fixed layer mapping must name every teacher layer. Each is refused here, before any candidate is trained,
with one line naming the file and the RDM; `keras-sage teacher show` reports the same.

Example:

```python
check_teacher_rdms("teacher.h5", store.rdms())
check_cka_teacher(store)  # ValueError unless every RDM is an image-level euclidean one
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from keras_sage.rsa import RDM
from keras_sage.teachers import TeacherStore

__all__ = [
    "check_cka_teacher",
    "check_every_layer_has_a_ceiling",
    "check_teacher_rdms",
    "checked_layer_mapping",
]


# What each metric's dissimilarities can be: 1 − r for correlation and cosine, a norm for euclidean
# (cross-validated distances are unbiased estimates and may be negative: not checked).
_METRIC_RANGES = {"correlation": (0.0, 2.0), "cosine": (0.0, 2.0), "euclidean": (0.0, np.inf)}
# float32 rounding of values at the ends of their range.
_RANGE_TOLERANCE = 1e-4


def check_teacher_rdms(path: str | os.PathLike[str], teacher_rdms: dict[str, RDM]) -> None:
    """Refuses teacher RDMs that cannot guide a search: NaN or infinite values, values outside their
    metric's range (a correlation distance of −5), or all values equal.

    A constant RDM (every pair of probe images equally dissimilar) gives S = 0 to every candidate.

    Args:
        path: The teacher file, for the message.
        teacher_rdms: Its RDMs, by name.

    Raises:
        ValueError: Naming the file and the RDM.
    """
    for name, teacher_rdm in teacher_rdms.items():
        values = np.asarray(teacher_rdm.values)
        if not np.isfinite(values).all():
            raise ValueError(
                f"teacher file {path}: RDM {name!r} holds NaN or infinite values; register the teacher again"
            )
        low, high = _METRIC_RANGES.get(teacher_rdm.metric, (-np.inf, np.inf))
        if values.size and (values.min() < low - _RANGE_TOLERANCE or values.max() > high + _RANGE_TOLERANCE):
            raise ValueError(
                f"teacher file {path}: RDM {name!r} holds values from {values.min():.4g} to "
                f"{values.max():.4g}, outside [{low:g}, {high:g}], the range of {teacher_rdm.metric} "
                "distances; register the teacher again"
            )
        if values.size and np.ptp(values) == 0:
            raise ValueError(
                f"teacher file {path}: RDM {name!r} is constant (every pair of probe images equally "
                "dissimilar), so it scores every candidate S = 0; register it on varied probe images"
            )


def check_cka_teacher(teacher: TeacherStore) -> None:
    """Refuses a teacher file that cannot be scored with `method="cka"`.

    CKA needs the centred Gram matrix of every teacher layer's features, which only an image-level
    Euclidean RDM holds (`keras_sage.rsa.gram_from_euclidean_rdm`). Only the RDMs' attributes are read.

    Args:
        teacher: The teacher file.

    Raises:
        ValueError: Naming the file and the first RDM of another metric or level.
    """
    for name in teacher.layer_names:
        info = teacher.layer_info(name)
        if info["metric"] != "euclidean" or info["level"] != "image":
            raise ValueError(
                f"teacher file {teacher.path}: RDM {name!r} has metric {info['metric']!r} and level "
                f"{info['level']!r}, but similarity 'cka' compares the teacher's features, whose centred "
                "Gram matrix only an image-level euclidean RDM holds; register the teacher with "
                "metric='euclidean' (and level='image') for CKA, or score this file with an RDM "
                "comparison such as 'pearson'"
            )


def check_every_layer_has_a_ceiling(teacher: TeacherStore, method: str) -> None:
    """Refuses `normalise_by_ceiling=True` when some teacher RDM has no usable noise ceiling."""
    for name in teacher.layer_names:
        ceiling = teacher.noise_ceiling(name)
        if ceiling is None:
            problem = (
                "has no noise ceiling (a model layer, responses without repeats, or an older file); "
                "register the recordings with repeats"
            )
        elif ceiling.method != method:
            problem = (
                f"has a noise ceiling computed with {ceiling.method!r}, not the similarity {method!r}; "
                f"register the recordings with ceiling_method={method!r}"
            )
        elif ceiling.ceiling <= 0:
            problem = f"has a noise ceiling of 0 (split-half reliability {ceiling.reliability:.3f})"
        else:
            continue
        raise ValueError(
            f"normalise_by_ceiling=True divides every S_i by its region's noise ceiling, but RDM {name!r} "
            f"of teacher file {teacher.path} {problem}"
        )


def checked_layer_mapping(
    layer_match: str, layer_mapping: Mapping[str, str] | None, teacher: TeacherStore
) -> dict[str, str] | None:
    """The teacher layer → student endpoint mapping of `layer_match="fixed"`, checked against the teacher."""
    if layer_match != "fixed":
        if layer_mapping is not None:
            raise ValueError(f'layer_mapping is used only with layer_match="fixed", not {layer_match!r}')
        return None
    if not layer_mapping:
        raise ValueError(
            'layer_match="fixed" needs layer_mapping: teacher layer name → student endpoint name'
        )
    unknown = [name for name in layer_mapping if name not in teacher.layer_names]
    unmapped = [name for name in teacher.layer_names if name not in layer_mapping]
    if unknown or unmapped:
        problem = (
            f"maps {unknown[0]!r}, which is not a layer of the teacher"
            if unknown
            else f"does not map the teacher layer {unmapped[0]!r}"
        )
        layers = ", ".join(teacher.layer_names)
        raise ValueError(f"layer_mapping {problem}; teacher file {teacher.path} has layers {layers}")
    return {str(name): str(endpoint) for name, endpoint in layer_mapping.items()}
