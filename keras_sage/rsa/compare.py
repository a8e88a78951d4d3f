"""Similarity of two representations: RDM upper-triangle correlations (§3.1) and linear CKA.

The paper scores a student layer against a teacher layer with Pearson's r between the upper triangles of
their RDMs; Spearman's ρ and Kendall's τ_a are the rank-based alternatives common in RSA. A constant
RDM or representation has no defined correlation: its similarity is 0, with a
`ConstantRepresentationWarning`, never NaN.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from keras_sage.rsa.dissimilarity import RDM, ConstantRepresentationWarning, rows_of_condensed

COMPARE_METHODS = ("pearson", "spearman", "kendall")

_CHUNK = 2**17  # values per float64 chunk in Pearson's r


def compare(rdm_a: RDM | np.ndarray, rdm_b: RDM | np.ndarray, method: str = "pearson") -> float:
    """Correlates the upper triangles of two RDMs.

    Args:
        rdm_a: an `RDM`, or a 1-D array holding an upper triangle in row-major order.
        rdm_b: the same, over the same number of rows.
        method: "pearson" (the paper), "spearman", or "kendall" (τ_a: ties count as neither concordant
            nor discordant, and the denominator is every pair).

    Returns:
        The correlation as a float; 0.0 when either RDM is constant.

    Raises:
        ValueError: on RDMs of different sizes (naming both), NaN or inf values, fewer than 3 rows, or an
            unknown `method`.

    Example:

    ```python
    similarity = keras_sage.compare(teacher_rdm, student_rdm)  # the paper's corr(M^{T_i}, M^{C_j})
    ```
    """
    if method not in COMPARE_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, COMPARE_METHODS))}, got {method!r}")
    values_a, label_a = _upper_triangle(rdm_a, "rdm_a")
    values_b, label_b = _upper_triangle(rdm_b, "rdm_b")
    n_a = rows_of_condensed(len(values_a), label_a)
    n_b = rows_of_condensed(len(values_b), label_b)
    if n_a != n_b:
        raise ValueError(
            f"cannot compare RDMs of different sizes: {label_a} has n={n_a}, {label_b} has n={n_b}"
        )
    for values, label in ((values_a, label_a), (values_b, label_b)):
        if not np.isfinite(values).all():
            raise ValueError(f"{label} contains NaN or inf")
    constant = [label for values, label in ((values_a, label_a), (values_b, label_b)) if np.ptp(values) == 0]
    if constant:
        warnings.warn(
            f"{' and '.join(constant)} is constant; its {method} correlation is undefined and is set to 0",
            ConstantRepresentationWarning,
            stacklevel=2,
        )
        return 0.0
    if method == "pearson":
        return _pearson(values_a, values_b)
    if method == "spearman":
        import scipy.stats  # imported here: it takes longer to import than the rest of keras_sage.rsa

        return _pearson(scipy.stats.rankdata(values_a), scipy.stats.rankdata(values_b))
    return _kendall_tau_a(values_a, values_b)


def linear_cka(acts_a: Any, acts_b: Any) -> float:
    """Linear centred kernel alignment (Kornblith et al., 2019) of two layers' activations.

    CKA = ‖Y_cᵀ X_c‖²_F / (‖X_cᵀ X_c‖_F ‖Y_cᵀ Y_c‖_F), with X_c and Y_c centred over images; computed in
    whichever of the image-space or feature-space forms is cheaper.

    Args:
        acts_a: array (n_images, ...) of one representation; axes after the first are flattened.
        acts_b: array (n_images, ...) of another representation of the same images.

    Returns:
        CKA in [0, 1]; 0.0 when either representation is the same for every image.

    Raises:
        ValueError: on different numbers of images, NaN or inf, or fewer than 3 images.

    Example:

    ```python
    keras_sage.linear_cka(teacher_activations, student_activations)
    ```
    """
    centred_a = _centred_columns(acts_a, "acts_a")
    centred_b = _centred_columns(acts_b, "acts_b")
    if len(centred_a) != len(centred_b):
        raise ValueError(
            f"cannot compare activations of different numbers of images: acts_a has {len(centred_a)}, "
            f"acts_b has {len(centred_b)}"
        )
    n, features_a, features_b = len(centred_a), centred_a.shape[1], centred_b.shape[1]
    if n < features_a + features_b:
        # Image space: HSIC ∝ <K, L>_F with Gram matrices K = X_c X_cᵀ and L = Y_c Y_cᵀ.
        gram_a = (centred_a @ centred_a.T).astype(np.float64)
        gram_b = (centred_b @ centred_b.T).astype(np.float64)
        cross = np.vdot(gram_a, gram_b)
    else:
        cross = np.sum(np.square((centred_b.T @ centred_a).astype(np.float64)))
        gram_a = (centred_a.T @ centred_a).astype(np.float64)
        gram_b = (centred_b.T @ centred_b).astype(np.float64)
    norm_a, norm_b = np.linalg.norm(gram_a), np.linalg.norm(gram_b)
    if norm_a == 0 or norm_b == 0:
        constant = " and ".join(name for name, norm in (("acts_a", norm_a), ("acts_b", norm_b)) if norm == 0)
        warnings.warn(
            f"{constant} is the same for every image; its CKA is undefined and is set to 0",
            ConstantRepresentationWarning,
            stacklevel=2,
        )
        return 0.0
    return float(cross / (norm_a * norm_b))


def _upper_triangle(rdm: RDM | np.ndarray, parameter: str) -> tuple[np.ndarray, str]:
    if isinstance(rdm, RDM):
        label = f"{parameter} (layer {rdm.name!r})" if rdm.name is not None else parameter
        return rdm.values, label
    values = np.asarray(rdm)
    if values.ndim != 1:
        raise ValueError(f"{parameter} must be an RDM or a 1-D upper triangle, got shape {values.shape}")
    return values, parameter


def _pearson(values_a: np.ndarray, values_b: np.ndarray) -> float:
    """Pearson's r with float64 accumulation; both inputs are known to be non-constant.

    Works through two small reused float64 buffers, so a large float32 RDM is never copied whole.
    """
    mean_a, mean_b = np.mean(values_a, dtype=np.float64), np.mean(values_b, dtype=np.float64)
    buffer_a, buffer_b = np.empty(_CHUNK), np.empty(_CHUNK)
    cross = squares_a = squares_b = 0.0
    for start in range(0, len(values_a), _CHUNK):
        chunk_a, chunk_b = values_a[start : start + _CHUNK], values_b[start : start + _CHUNK]
        centred_a = np.subtract(chunk_a, mean_a, out=buffer_a[: len(chunk_a)])
        centred_b = np.subtract(chunk_b, mean_b, out=buffer_b[: len(chunk_b)])
        cross += np.einsum("i,i->", centred_a, centred_b)
        squares_a += np.einsum("i,i->", centred_a, centred_a)
        squares_b += np.einsum("i,i->", centred_b, centred_b)
    return float(np.clip(cross / np.sqrt(squares_a * squares_b), -1.0, 1.0))


def _tied_pairs(values: np.ndarray) -> float:
    """The number of pairs of equal values, Σ t(t − 1)/2 over groups of t ties."""
    counts = np.unique(values, return_counts=True)[1].astype(np.float64)
    return float(np.sum(counts * (counts - 1) / 2))


def _kendall_tau_a(values_a: np.ndarray, values_b: np.ndarray) -> float:
    """τ_a = (concordant − discordant) / (N(N − 1)/2), from scipy's O(N log N) τ_b.

    τ_b = (C − D) / √((N₀ − T_a)(N₀ − T_b)), where N₀ = N(N − 1)/2 and T_a, T_b count the pairs tied in
    each input, so τ_a = τ_b · √((N₀ − T_a)(N₀ − T_b)) / N₀.
    """
    import scipy.stats

    all_pairs = len(values_a) * (len(values_a) - 1) / 2
    tau_b = scipy.stats.kendalltau(values_a, values_b, variant="b").statistic
    untied_a, untied_b = all_pairs - _tied_pairs(values_a), all_pairs - _tied_pairs(values_b)
    return float(tau_b * np.sqrt(untied_a) * np.sqrt(untied_b) / all_pairs)


def _centred_columns(activations: Any, parameter: str) -> np.ndarray:
    matrix = np.asarray(activations)
    if matrix.ndim < 2:
        raise ValueError(f"{parameter} must have shape (n_images, ...), got {matrix.shape}")
    matrix = matrix.reshape(len(matrix), -1)
    if len(matrix) < 3:
        raise ValueError(f"{parameter}: CKA needs at least 3 images, got {len(matrix)}")
    column_means = np.mean(matrix, axis=0, dtype=np.float64)
    if not np.isfinite(column_means).all():
        raise ValueError(f"{parameter} contains NaN or inf")
    return np.subtract(matrix, column_means, dtype=np.float32)
