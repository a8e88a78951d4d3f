"""Cross-validated RDMs of recordings with repeats: cross-validated Euclidean and crossnobis distances.

A distance between two noisy patterns is biased upwards by their noise: two images a region does not
tell apart still get a positive Euclidean distance. Cross-validating over repeats removes that bias
(Walther et al., 2016; rsatoolbox's `calc_rdm(..., method="crossnobis")`): for each repeat k, the
difference of the two patterns averaged over the other repeats is multiplied with their difference in
repeat k, whose noise is independent,

    d_ij = 1/(R·P) Σ_k (ā_i^(−k) − ā_j^(−k))ᵀ W (x_i^(k) − x_j^(k)),

with R repeats, P sites, ā^(−k) the mean over the repeats other than k, and W the noise precision (the
identity for the cross-validated Euclidean distance). The expected value is the squared distance of the
noise-free patterns (scaled by W and 1/P): 0 means indistinguishable, and an estimate can be negative.
Averaged over k this is one kernel, K = (S W Sᵀ − Σ_k X_k W X_kᵀ) / (R(R − 1)) with S = Σ_k X_k, and
d_ij = (K_ii + K_jj − 2 K_ij) / P.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from keras_sage.rsa.dissimilarity import LEVELS, RDM

CROSSVALIDATED_METRICS = ("cv-euclidean", "crossnobis")


def crossvalidated_rdm(
    responses: Any,
    precision: Any = None,
    labels: Any = None,
    level: str = "image",
    name: str | None = None,
) -> RDM:
    """The leave-one-repeat-out cross-validated RDM of recordings, as rsatoolbox's `calc_rdm` gives it.

    With `precision=None` the distance is the cross-validated squared Euclidean distance per site
    (rsatoolbox's "crossnobis" with its default identity noise); with a noise precision matrix it is the
    crossnobis distance. Either is unbiased: its expected value for two images the region responds to
    identically is 0, so small values can be negative. See the module docstring for the formula.

    Args:
        responses: array (n_images, n_sites, n_repeats), every repeat recorded (no NaN).
        precision: None, or the noise precision (inverse noise covariance) across sites, as an
            (n_sites, n_sites) symmetric matrix or an (n_sites,) diagonal.
        labels: one label per image; required, and only used, when `level="category"`.
        level: "image" compares images; "category" first averages the images of each label within each
            repeat and compares categories.
        name: the region's name, used in error messages and stored on the RDM.

    Returns:
        An `RDM` with metric "cv-euclidean" or "crossnobis"; `n_features` is the number of sites.

    Raises:
        ValueError: on responses that are not a real (n_images, n_sites, n_repeats) array, hold NaN or
            inf, have fewer than 2 repeats or fewer than 3 rows to compare; on a precision of the wrong
            shape or with NaN or inf; or on missing labels for `level="category"`.

    Example:

    ```python
    it_rdm = keras_sage.rsa.crossvalidated_rdm(it_responses, name="IT")  # (images, sites, repeats)
    ```
    """
    where = f"responses {name!r}" if name is not None else "responses"
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(map(repr, LEVELS))}, got {level!r}")
    array = np.asarray(responses)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{where}: responses must be real numbers; got dtype {array.dtype}")
    if array.ndim != 3:
        raise ValueError(
            f"{where}: a cross-validated RDM needs responses of shape (n_images, n_sites, n_repeats); "
            f"got {array.shape}"
        )
    n_images, n_sites, n_repeats = array.shape
    if n_repeats < 2:
        raise ValueError(f"{where}: a cross-validated RDM needs at least 2 repeats; got {n_repeats}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{where}: NaN or inf responses; a cross-validated RDM needs every repeat recorded")
    categories = None
    if level == "category":
        if labels is None:
            raise ValueError(f"{where}: level='category' needs labels, one per image")
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != n_images:
            raise ValueError(f"{where}: got {len(labels)} labels for {n_images} images")
        categories, category_of_image = np.unique(labels, return_inverse=True)
        array = np.stack([array[category_of_image == c].mean(axis=0) for c in range(len(categories))])
    n = len(array)
    if n < 3:
        compared = "categories" if level == "category" else "images"
        raise ValueError(f"{where}: an RDM needs at least 3 {compared}, got {n}")
    weigh = _precision_weighting(precision, n_sites, where)
    total = array.sum(axis=2)
    kernel = total @ weigh(total).T
    for repeat in range(n_repeats):
        patterns = array[:, :, repeat]
        kernel -= patterns @ weigh(patterns).T
    kernel /= n_repeats * (n_repeats - 1)
    diagonal = np.diag(kernel)
    squared = (diagonal[:, None] + diagonal[None, :] - kernel - kernel.T) / n_sites
    rows, columns = np.triu_indices(n, k=1)
    return RDM(
        values=squared[rows, columns],
        n=n,
        metric="cv-euclidean" if precision is None else "crossnobis",
        level=level,
        n_features=n_sites,
        n_features_used=n_sites,
        seed=0,
        categories=categories,
        name=name,
    )


def _precision_weighting(precision: Any, n_sites: int, where: str) -> Callable[[np.ndarray], np.ndarray]:
    """The map x ↦ x W (rows are patterns) for the noise precision W; the identity when it is None."""
    if precision is None:
        return lambda patterns: patterns
    weights = np.asarray(precision, dtype=np.float64)
    if weights.shape not in ((n_sites,), (n_sites, n_sites)):
        raise ValueError(
            f"{where}: precision must have shape ({n_sites},) or ({n_sites}, {n_sites}), one row per site; "
            f"got {weights.shape}"
        )
    if not np.isfinite(weights).all():
        raise ValueError(f"{where}: precision contains NaN or inf")
    if weights.ndim == 1:
        return lambda patterns: patterns * weights
    return lambda patterns: patterns @ weights
