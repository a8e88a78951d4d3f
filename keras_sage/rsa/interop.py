"""RDMs to and from rsatoolbox (`pip install "keras-sage[neuro]"`), with the same values.

Both store an RDM as its upper triangle in row-major order (scipy's `squareform` order), so the values
pass through unchanged. What keras-sage knows beyond the values travels in rsatoolbox's descriptors:
the name, `n_features`, `n_features_used` and `seed` of each RDM as `rdm_descriptors`, the level as a
`descriptors` entry, and a category-level RDM's categories as the `category` pattern descriptor. The
metric is rsatoolbox's `dissimilarity_measure`; note that keras-sage's "euclidean" is the Euclidean
distance, where rsatoolbox's `calc_rdm(method="euclidean")` gives the squared distance per channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from keras_sage.rsa.dissimilarity import LEVELS, RDM


def to_rsatoolbox(rdms: RDM | Mapping[str, RDM]) -> Any:
    """Converts one RDM, or several over the same rows, into an `rsatoolbox.rdm.RDMs`.

    Args:
        rdms: an `RDM`, or name → `RDM` (e.g. `TeacherStore.rdms()`), all with the same number of rows,
            metric and level (and categories, at the category level).

    Returns:
        An `rsatoolbox.rdm.RDMs` holding the same values in float64, one RDM per input, named by the
        `name` rdm descriptor.

    Raises:
        ImportError: rsatoolbox is not installed.
        ValueError: on no RDMs, or RDMs that differ in rows, metric, level or categories.

    Example:

    ```python
    teacher_rdms = keras_sage.rsa.to_rsatoolbox(keras_sage.TeacherStore.open("monkey.h5").rdms())
    rsatoolbox.vis.show_rdm(teacher_rdms)
    ```
    """
    rsatoolbox = _import_rsatoolbox()
    named = {rdms.name if rdms.name is not None else "rdm": rdms} if isinstance(rdms, RDM) else dict(rdms)
    if not named:
        raise ValueError("to_rsatoolbox needs at least one RDM")
    first_name, first = next(iter(named.items()))
    for name, rdm in named.items():
        for what, value, expected in (
            ("numbers of rows", rdm.n, first.n),
            ("metric", rdm.metric, first.metric),
            ("level", rdm.level, first.level),
        ):
            if value != expected:
                raise ValueError(
                    f"cannot put RDMs of different {what} in one rsatoolbox RDMs: {first_name!r} has "
                    f"{expected!r}, {name!r} has {value!r}"
                )
        if not np.array_equal(_categories(rdm), _categories(first)):
            raise ValueError(f"RDMs {first_name!r} and {name!r} are over different categories")
    if first.level == "category":
        pattern_descriptors = {"category": _categories(first).tolist()}
    else:
        pattern_descriptors = {"index": list(range(first.n))}
    return rsatoolbox.rdm.RDMs(
        np.stack([np.asarray(rdm.values, dtype=np.float64) for rdm in named.values()]),
        dissimilarity_measure=first.metric,
        descriptors={"level": first.level},
        rdm_descriptors={
            "name": list(named),
            "n_features": [rdm.n_features for rdm in named.values()],
            "n_features_used": [rdm.n_features_used for rdm in named.values()],
            "seed": [rdm.seed for rdm in named.values()],
        },
        pattern_descriptors=pattern_descriptors,
    )


def from_rsatoolbox(rdms: Any) -> dict[str, RDM]:
    """Converts an `rsatoolbox.rdm.RDMs` into keras-sage RDMs, by name.

    Names come from the `name` rdm descriptor when it holds distinct names (as `to_rsatoolbox` writes
    it), else they are the RDMs' positions "0", "1", ... `n_features`, `n_features_used` and `seed` come
    from the rdm descriptors of those names, or are 0 when rsatoolbox does not know them; the level and a
    category-level RDM's categories come from what `to_rsatoolbox` writes, else the level is "image".

    Args:
        rdms: an `rsatoolbox.rdm.RDMs`.

    Returns:
        name → `RDM` (float32 values), in rsatoolbox's order.

    Raises:
        ImportError: rsatoolbox is not installed.
        TypeError: `rdms` is not an `rsatoolbox.rdm.RDMs`.
        ValueError: on NaN or inf dissimilarities (naming the RDM) or an unknown level.

    Example:

    ```python
    data_rdms = rsatoolbox.rdm.calc_rdm(dataset, method="crossnobis", descriptor="image")
    brain = keras_sage.rsa.from_rsatoolbox(data_rdms)["0"]
    ```
    """
    rsatoolbox = _import_rsatoolbox()
    if not isinstance(rdms, rsatoolbox.rdm.RDMs):
        raise TypeError(f"from_rsatoolbox expects an rsatoolbox.rdm.RDMs, got {type(rdms).__name__}")
    vectors = np.asarray(rdms.get_vectors())
    descriptors = rdms.rdm_descriptors
    given_names = [str(name) for name in descriptors.get("name", [])]
    if len(given_names) == len(vectors) and len(set(given_names)) == len(given_names):
        names = given_names
    else:
        names = [str(position) for position in range(len(vectors))]
    level = str(rdms.descriptors.get("level", "image"))
    if level not in LEVELS:
        raise ValueError(f"rsatoolbox RDMs have level {level!r}; expected one of {', '.join(LEVELS)}")
    categories = None
    if level == "category":
        categories = np.asarray(rdms.pattern_descriptors["category"])
    metric = str(rdms.dissimilarity_measure) if rdms.dissimilarity_measure is not None else "unknown"

    def known(descriptor: str, position: int) -> int:
        values = descriptors.get(descriptor)
        return int(values[position]) if values is not None and len(values) == len(vectors) else 0

    converted = {}
    for position, (name, values) in enumerate(zip(names, vectors, strict=True)):
        if not np.isfinite(values).all():
            raise ValueError(f"rsatoolbox RDM {name!r} has NaN or inf dissimilarities")
        converted[name] = RDM(
            values=values,
            n=int(rdms.n_cond),
            metric=metric,
            level=level,
            n_features=known("n_features", position),
            n_features_used=known("n_features_used", position),
            seed=known("seed", position),
            categories=categories,
            name=name,
        )
    return converted


def _categories(rdm: RDM) -> np.ndarray:
    return np.asarray(rdm.categories) if rdm.categories is not None else np.empty(0)


def _import_rsatoolbox() -> Any:
    try:
        import rsatoolbox
    except ImportError as error:
        raise ImportError(
            'rsatoolbox is not installed; install it with `pip install "keras-sage[neuro]"` to convert '
            "RDMs to and from rsatoolbox"
        ) from error
    return rsatoolbox
