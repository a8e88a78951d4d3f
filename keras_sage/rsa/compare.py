"""Similarity of two representations: RDM upper-triangle correlations (§3.1) and linear CKA.

The paper scores a student layer against a teacher layer with Pearson's r between the upper triangles of
their RDMs. Beside it, the comparisons rsatoolbox offers and recommends:

- "spearman": Pearson's r of the ranks (ties get their average rank);
- "kendall": Kendall's τ_a (ties count as neither concordant nor discordant);
- "rho-a": Spearman's ρ_A, the expected Spearman correlation when ties are broken at random:
  12 Σ (r_a − r̄)(r_b − r̄) / (N³ − N) over the N entries' average ranks. Unlike "spearman" it is not
  renormalised by the ranks' spread, so a tied RDM (a categorical model) cannot reach 1 by its ties;
- "cosine_cov" and "corr_cov": the cosine (respectively the correlation) of two RDMs after whitening by the
  covariance of RDM entries that independent, identically distributed pattern noise induces (Diedrichsen et
  al., 2021, rsatoolbox's default `sigma_k`). Whitening that way is the same as comparing the double-centred
  matrices −½ H D H (H = I − 11ᵀ/n) with the Frobenius inner product, which is what is computed here, from
  the upper triangle, row sums and total of each RDM, without forming an n×n matrix. For `corr_cov` each
  RDM's mean entry is subtracted first. For squared-Euclidean RDMs `cosine_cov` is linear CKA.

An RDM to compare is an `RDM`, its upper triangle (row-major, scipy's `squareform` order), or the square
matrix itself, as scipy and rsatoolbox hold RDMs, when it is symmetric with a zero diagonal to within 1e-5
of its largest |entry|.

A constant RDM or representation has no defined correlation: its similarity is 0, with a
`ConstantRepresentationWarning`, never NaN ("cosine_cov" is defined for a constant RDM; there only an
all-zero RDM is degenerate).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_sage.rsa.dissimilarity import RDM, ConstantRepresentationWarning, rows_of_condensed

COMPARE_METHODS = ("pearson", "spearman", "kendall", "rho-a", "corr_cov", "cosine_cov")
# A square RDM must be symmetric with a zero diagonal to within this fraction of its largest |entry|.
_SQUARE_TOLERANCE = 1e-5

_CHUNK = 2**17  # values per float64 chunk in Pearson's r


def compare(rdm_a: RDM | np.ndarray, rdm_b: RDM | np.ndarray, method: str = "pearson") -> float:
    """Correlates the upper triangles of two RDMs.

    Args:
        rdm_a: an `RDM`, a 1-D array holding an upper triangle in row-major order, or a square (n, n)
            RDM as scipy's `squareform` and rsatoolbox give: symmetric with a zero diagonal (to within
            1e-5 of its largest |entry|), compared through its upper triangle.
        rdm_b: the same, over the same number of rows.
        method: "pearson" (the paper), "spearman", "kendall" (τ_a: ties count as neither concordant
            nor discordant, and the denominator is every pair), "rho-a" (Spearman's ρ_A, rsatoolbox's
            recommendation for models with tied dissimilarities), "corr_cov" or "cosine_cov" (whitened by
            the covariance of RDM entries, as rsatoolbox defines them); see the module docstring.

    Returns:
        The similarity as a float; 0.0 when either RDM is constant (all-zero for "cosine_cov").

    Raises:
        ValueError: on RDMs of different sizes (naming both), NaN or inf values, fewer than 3 rows, a
            square matrix that is not symmetric or has a non-zero diagonal (saying which, and by how
            much), or an unknown `method`.

    Example:

    ```python
    similarity = keras_sage.compare(teacher_rdm, student_rdm)  # the paper's corr(M^{T_i}, M^{C_j})
    keras_sage.compare(scipy.spatial.distance.squareform(distances), student_rdm)  # a square RDM
    ```
    """
    _check_method(method)
    values_a, label_a = _upper_triangle(rdm_a, "rdm_a")
    values_b, label_b = _upper_triangle(rdm_b, "rdm_b")
    _check_same_size(rows_of_condensed(len(values_a), label_a), label_a, values_b, label_b)
    mean_a, mean_b = _finite_mean(values_a, label_a), _finite_mean(values_b, label_b)
    degenerate = [(label_a, _degenerate(values_a, method)), (label_b, _degenerate(values_b, method))]
    if _warn_if_degenerate(degenerate, method):
        return 0.0
    if method == "pearson":
        return _pearson_with_each(values_b, mean_b, [_Centred.of(values_a, mean_a)])[0]
    return _similarity(_prepared(values_a, method), _prepared(values_b, method), method)


class ReferenceRDMs:
    """RDMs prepared once to be compared with many others, as a teacher's RDMs are with every candidate's.

    `compare(rdm)` gives, for every reference, what `keras_sage.compare(reference, rdm, method)` gives,
    with less work: each reference is checked and prepared once (for Pearson's r its mean and centred
    norm, for the rank methods its ranks, for the whitened methods its row sums), and for Pearson's r each
    compared RDM is read once for all the references together.

    Args:
        references: name → an `RDM`, a 1-D upper triangle (kept, not copied) or a square RDM (as for
            `compare`: symmetric, zero diagonal; its upper triangle is kept).
        method: one of `COMPARE_METHODS`, as for `compare`.

    Raises:
        ValueError: on no references, NaN or inf values, fewer than 3 rows, a square matrix that is not
            a symmetric, zero-diagonal RDM, or an unknown `method`.

    Example:

    ```python
    references = ReferenceRDMs(teacher.rdms())
    references.compare(student_rdm)  # {"V4": 0.41, "IT": 0.33}
    ```
    """

    def __init__(self, references: Mapping[str, RDM | np.ndarray], method: str = "pearson") -> None:
        _check_method(method)
        if not references:
            raise ValueError("ReferenceRDMs needs at least one reference RDM")
        self.method = method
        self._references: dict[str, _Reference] = {}
        for name, reference in references.items():
            values, label = _upper_triangle(reference, f"reference {name!r}")
            n = rows_of_condensed(len(values), label)
            mean = _finite_mean(values, label)
            constant = _degenerate(values, method)
            centred = _Centred.of(values, mean) if method == "pearson" and not constant else None
            prepared = _prepared(values, method) if method != "pearson" and not constant else None
            self._references[name] = _Reference(values, label, n, constant, centred, prepared)

    @property
    def names(self) -> list[str]:
        """The names of the references, in order."""
        return list(self._references)

    def compare(self, rdm: RDM | np.ndarray) -> dict[str, float]:
        """Correlates an RDM with every reference.

        Args:
            rdm: an `RDM`, a 1-D upper triangle or a square RDM (as for `compare`), over the
                references' number of rows.

        Returns:
            The similarity with each reference, by name, in the references' order; 0.0 with a
            `ConstantRepresentationWarning` where either is constant (all-zero for "cosine_cov").

        Raises:
            ValueError: on a size other than a reference's (naming both), NaN or inf values, fewer
                than 3 rows, or a square matrix that is not a symmetric, zero-diagonal RDM.
        """
        values, label = _upper_triangle(rdm, "rdm")
        for reference in self._references.values():
            _check_same_size(reference.n, reference.label, values, label)
        mean = _finite_mean(values, label)
        rdm_constant = _degenerate(values, self.method)
        prepared = None
        similarities: dict[str, float] = {}
        pearson_names = []
        for name, reference in self._references.items():
            constant = [(reference.label, reference.constant), (label, rdm_constant)]
            if _warn_if_degenerate(constant, self.method):
                similarities[name] = 0.0
            elif self.method == "pearson":
                pearson_names.append(name)
            elif reference.prepared is not None:
                prepared = prepared if prepared is not None else _prepared(values, self.method)
                similarities[name] = _similarity(reference.prepared, prepared, self.method)
        if pearson_names:
            centred = [
                reference.centred
                for name in pearson_names
                if (reference := self._references[name]).centred is not None
            ]
            similarities.update(zip(pearson_names, _pearson_with_each(values, mean, centred), strict=True))
        return {name: similarities[name] for name in self._references}


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


def centred_gram(activations: Any) -> np.ndarray:
    """The centred Gram matrix H X Xᵀ H of a layer's activations (H = I − 11ᵀ/n), what linear CKA needs.

    It is n×n whatever the layer's width, so it is what a teacher file can store for CKA in place of
    the activations. For a squared-Euclidean RDM D of the same activations it equals −½ H D H.

    Args:
        activations: array (n_images, ...); axes after the first are flattened.

    Returns:
        The float64 (n_images, n_images) matrix.

    Raises:
        ValueError: on NaN or inf, or fewer than 3 images.

    Example:

    ```python
    gram = keras_sage.rsa.centred_gram(teacher_activations)
    keras_sage.rsa.linear_cka_gram(gram, keras_sage.rsa.centred_gram(student_activations))
    ```
    """
    centred = _centred_columns(activations, "activations").astype(np.float64)
    return np.asarray(centred @ centred.T)


def gram_from_euclidean_rdm(rdm: RDM) -> np.ndarray:
    """The centred Gram matrix of the features an image-level Euclidean RDM was computed from.

    For distances d_ij = ‖x_i − x_j‖ the centred Gram matrix H X Xᵀ H is −½ H D⁽²⁾ H, with D⁽²⁾ the
    squared distances (classical multidimensional scaling), so an RDM of `metric="euclidean"` holds all
    that linear CKA needs of a layer: `linear_cka_gram(gram_from_euclidean_rdm(teacher_rdm),
    centred_gram(student_features))` is the CKA of the teacher's (subsampled) features with the
    student's. Correlation and cosine RDMs have lost the features' scale and centre, so they cannot
    give it.

    Args:
        rdm: An `RDM` of `metric="euclidean"` and `level="image"`.

    Returns:
        The float64 (n_images, n_images) matrix.

    Raises:
        ValueError: on another metric or level (naming the RDM), or NaN or inf values.

    Example:

    ```python
    teacher_gram = keras_sage.rsa.gram_from_euclidean_rdm(keras_sage.rdm(teacher_acts, metric="euclidean"))
    keras_sage.rsa.linear_cka_gram(teacher_gram, keras_sage.rsa.centred_gram(student_acts))
    ```
    """
    if rdm.metric != "euclidean" or rdm.level != "image":
        raise ValueError(
            f"RDM {rdm.name!r} has metric {rdm.metric!r} and level {rdm.level!r}; only an image-level "
            "euclidean RDM gives the centred Gram matrix of its features"
        )
    distances = rdm.square().astype(np.float64)
    if not np.isfinite(distances).all():
        raise ValueError(f"RDM {rdm.name!r} contains NaN or inf")
    return -0.5 * _double_centred(distances**2, f"RDM {rdm.name!r}")


def linear_cka_gram(gram_a: Any, gram_b: Any) -> float:
    """Linear CKA from two Gram matrices of the same images: ⟨K_c, L_c⟩_F / (‖K_c‖_F ‖L_c‖_F).

    The matrices are centred (K_c = H K H) here, so plain Gram matrices X Xᵀ and the output of
    `centred_gram` give the same value; `linear_cka_gram(centred_gram(x), centred_gram(y))` is
    `linear_cka(x, y)`.

    Args:
        gram_a: array (n_images, n_images), a Gram (kernel) matrix of one representation.
        gram_b: the same for another representation of the same images.

    Returns:
        CKA in [0, 1] for positive semi-definite inputs; 0.0 when either centred matrix is zero.

    Raises:
        ValueError: on matrices that are not square, of different sizes, hold NaN or inf, or cover fewer
            than 3 images.

    Example:

    ```python
    keras_sage.rsa.linear_cka_gram(teacher_gram, student_activations @ student_activations.T)
    ```
    """
    centred = [_double_centred(gram_a, "gram_a"), _double_centred(gram_b, "gram_b")]
    if len(centred[0]) != len(centred[1]):
        raise ValueError(
            f"cannot compare Gram matrices of different numbers of images: gram_a is {len(centred[0])}×"
            f"{len(centred[0])}, gram_b is {len(centred[1])}×{len(centred[1])}"
        )
    norm_a, norm_b = (float(np.linalg.norm(matrix)) for matrix in centred)
    if norm_a == 0 or norm_b == 0:
        zero = " and ".join(name for name, norm in (("gram_a", norm_a), ("gram_b", norm_b)) if norm == 0)
        warnings.warn(
            f"{zero} is zero once centred (the same representation for every image); its CKA is "
            "undefined and is set to 0",
            ConstantRepresentationWarning,
            stacklevel=2,
        )
        return 0.0
    return float(np.vdot(centred[0], centred[1]) / (norm_a * norm_b))


def _double_centred(matrix: Any, parameter: str) -> np.ndarray:
    square = np.asarray(matrix, dtype=np.float64)
    if square.ndim != 2 or square.shape[0] != square.shape[1]:
        raise ValueError(
            f"{parameter} must be a square (n_images, n_images) matrix, got shape {square.shape}"
        )
    if len(square) < 3:
        raise ValueError(f"{parameter}: CKA needs at least 3 images, got {len(square)}")
    if not np.isfinite(square).all():
        raise ValueError(f"{parameter} contains NaN or inf")
    square = square - square.mean(axis=0, keepdims=True)
    return np.asarray(square - square.mean(axis=1, keepdims=True))


def _upper_triangle(rdm: RDM | np.ndarray, parameter: str) -> tuple[np.ndarray, str]:
    """The upper triangle of an `RDM`, a 1-D upper triangle or a square RDM, and how to name it."""
    if isinstance(rdm, RDM):
        label = f"{parameter} (layer {rdm.name!r})" if rdm.name is not None else parameter
        return rdm.values, label
    values = np.asarray(rdm)
    if values.ndim == 2 and values.shape[0] == values.shape[1]:
        return _condensed(values, parameter), parameter
    if values.ndim != 1:
        raise ValueError(
            f"{parameter} must be an RDM, a 1-D upper triangle or a square (n, n) RDM; "
            f"got shape {values.shape}"
        )
    return values, parameter


def _condensed(square: np.ndarray, parameter: str) -> np.ndarray:
    """The upper triangle, row-major (scipy's `squareform` order), of a symmetric, zero-diagonal matrix.

    Symmetric and zero-diagonal to within `_SQUARE_TOLERANCE` times the largest |entry|; otherwise a
    `ValueError` says which, with the largest asymmetry or diagonal entry.
    """
    if not np.issubdtype(square.dtype, np.floating):
        square = square.astype(np.float64)
    if not np.isfinite(square).all():
        raise ValueError(f"{parameter} contains NaN or inf")
    tolerance = _SQUARE_TOLERANCE * float(np.max(np.abs(square), initial=0.0))
    asymmetry = float(np.max(np.abs(square - square.T), initial=0.0))
    if asymmetry > tolerance:
        raise ValueError(
            f"{parameter} is a square matrix but not symmetric: the largest |D[i, j] − D[j, i]| is "
            f"{asymmetry:.3g} (tolerance {tolerance:.3g})"
        )
    diagonal = float(np.max(np.abs(np.diagonal(square)), initial=0.0))
    if diagonal > tolerance:
        raise ValueError(
            f"{parameter} is a square matrix with a non-zero diagonal: the largest |D[i, i]| is "
            f"{diagonal:.3g} (tolerance {tolerance:.3g}); an RDM's diagonal is 0"
        )
    import scipy.spatial.distance  # imported here: it takes longer to import than the rest of keras_sage.rsa

    return np.asarray(scipy.spatial.distance.squareform(square, checks=False))


@dataclass(frozen=True)
class _Centred:
    """An upper triangle with its float64 mean and centred sum of squares, for Pearson's r."""

    values: np.ndarray
    mean: float
    sum_of_squares: float

    @classmethod
    def of(cls, values: np.ndarray, mean: float) -> _Centred:
        squares = sum(np.einsum("i,i->", centred, centred) for _, centred in _centred_chunks(values, mean))
        return cls(values, mean, float(squares))


@dataclass(frozen=True)
class _Reference:
    """A reference RDM as `ReferenceRDMs` keeps it: checked once, centred once for Pearson's r."""

    values: np.ndarray
    label: str
    n: int
    constant: bool
    centred: _Centred | None
    prepared: _Prepared | None


@dataclass(frozen=True)
class _Prepared:
    """An upper triangle prepared for a method other than Pearson's r.

    `vector`: the values (kendall), the centred average ranks (spearman, rho-a), or the entries of the
    matrix to double-centre (cosine_cov; corr_cov less its mean entry), float64. `row_sums` (the whitened
    methods) are that matrix's row sums, and `square_norm` is ‖vector‖² (ranks) or ‖H A H‖²_F (whitened).
    """

    vector: np.ndarray
    n: int
    row_sums: np.ndarray | None = None
    square_norm: float = 0.0


def _check_method(method: str) -> None:
    if method not in COMPARE_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, COMPARE_METHODS))}, got {method!r}")


def _check_same_size(n_a: int, label_a: str, values_b: np.ndarray, label_b: str) -> None:
    n_b = rows_of_condensed(len(values_b), label_b)
    if n_a != n_b:
        raise ValueError(
            f"cannot compare RDMs of different sizes: {label_a} has n={n_a}, {label_b} has n={n_b}"
        )


def _finite_mean(values: np.ndarray, label: str) -> float:
    """The float64 mean, which is finite exactly when every value is (a float64 sum of float32 values
    cannot overflow)."""
    mean = float(np.mean(values, dtype=np.float64))
    if not np.isfinite(mean):
        if not np.isfinite(values).all():
            raise ValueError(f"{label} contains NaN or inf")
        raise ValueError(f"{label} has values too large to sum in float64")
    return mean


def _degenerate(values: np.ndarray, method: str) -> bool:
    """Whether an RDM has no defined similarity under `method`: constant, or all zero for cosine_cov."""
    if method == "cosine_cov":
        return not np.any(values)
    return bool(np.ptp(values) == 0)


def _warn_if_degenerate(labels_and_degenerate: list[tuple[str, bool]], method: str) -> bool:
    """Warns, naming them, when some of the compared RDMs are degenerate; returns whether any is."""
    degenerate = [label for label, is_degenerate in labels_and_degenerate if is_degenerate]
    if degenerate:
        what = "all zero" if method == "cosine_cov" else "constant"
        warnings.warn(
            f"{' and '.join(degenerate)} is {what}; its {method} similarity is undefined and is set to 0",
            ConstantRepresentationWarning,
            stacklevel=3,
        )
    return bool(degenerate)


def _centred_chunks(values: np.ndarray, mean: float) -> Iterator[tuple[int, np.ndarray]]:
    """Yields `(start, values[start:start + _CHUNK] − mean)` in float64, through one reused buffer."""
    buffer = np.empty(min(_CHUNK, len(values)))
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        yield start, np.subtract(chunk, mean, out=buffer[: len(chunk)])


def _pearson_with_each(values: np.ndarray, mean: float, references: Sequence[_Centred]) -> list[float]:
    """Pearson's r of one upper triangle with each of several, all non-constant, with float64 accumulation.

    One pass over `values` for all the references, through small reused float64 buffers, so a large
    float32 RDM is never copied whole.
    """
    reference_buffer = np.empty(min(_CHUNK, len(values)))
    squares = 0.0
    cross = [0.0] * len(references)
    for start, centred in _centred_chunks(values, mean):
        squares += np.einsum("i,i->", centred, centred)
        for position, reference in enumerate(references):
            reference_chunk = reference.values[start : start + len(centred)]
            reference_centred = np.subtract(
                reference_chunk, reference.mean, out=reference_buffer[: len(centred)]
            )
            cross[position] += np.einsum("i,i->", reference_centred, centred)
    return [
        float(np.clip(product / np.sqrt(squares * reference.sum_of_squares), -1.0, 1.0))
        for product, reference in zip(cross, references, strict=True)
    ]


def _prepared(values: np.ndarray, method: str) -> _Prepared:
    """Prepares a non-degenerate upper triangle for `_similarity` (any method but "pearson")."""
    n = rows_of_condensed(len(values), "rdm")
    if method == "kendall":
        return _Prepared(values, n)
    if method in ("spearman", "rho-a"):
        import scipy.stats  # imported here: it takes longer to import than the rest of keras_sage.rsa

        # Average ranks always sum to N(N + 1)/2, so their mean is exactly (N + 1)/2.
        ranks = scipy.stats.rankdata(values) - (len(values) + 1) / 2
        return _Prepared(ranks, n, square_norm=float(np.dot(ranks, ranks)))
    entries = np.asarray(values, dtype=np.float64)
    if method == "corr_cov":
        entries = entries - np.mean(entries)
    prepared = _Prepared(entries, n, row_sums=_row_sums(entries, n))
    return dataclasses.replace(prepared, square_norm=_double_centred_inner(prepared, prepared))


def _similarity(a: _Prepared, b: _Prepared, method: str) -> float:
    """The similarity of two prepared, non-degenerate upper triangles (any method but "pearson")."""
    if method == "kendall":
        return _kendall_tau_a(a.vector, b.vector)
    if method == "rho-a":
        entries = float(len(a.vector))
        return float(12.0 * np.dot(a.vector, b.vector) / (entries**3 - entries))
    inner = np.dot(a.vector, b.vector) if method == "spearman" else _double_centred_inner(a, b)
    return float(np.clip(inner / np.sqrt(a.square_norm * b.square_norm), -1.0, 1.0))


def _row_sums(upper: np.ndarray, n: int) -> np.ndarray:
    """Row sums of the symmetric, zero-diagonal n×n matrix whose upper triangle is `upper`, float64."""
    sums = np.zeros(n)
    start = 0
    for row in range(n - 1):
        stop = start + n - 1 - row
        segment = upper[start:stop]  # the entries (row, row + 1), ..., (row, n − 1)
        sums[row] += np.sum(segment, dtype=np.float64)
        sums[row + 1 :] += segment
        start = stop
    return sums


def _double_centred_inner(a: _Prepared, b: _Prepared) -> float:
    """⟨H A H, H B H⟩_F for symmetric, zero-diagonal A and B given by their upper triangles.

    With row sums r and totals s = Σ r: ⟨HAH, HBH⟩ = ⟨HAH, B⟩ = 2 a·b − (2/n) r_a·r_b + s_a s_b / n².
    """
    assert a.row_sums is not None and b.row_sums is not None  # Prepared for a whitened method.
    n = a.n
    total_a, total_b = float(np.sum(a.row_sums)), float(np.sum(b.row_sums))
    return float(
        2.0 * np.dot(a.vector, b.vector) - 2.0 / n * np.dot(a.row_sums, b.row_sums) + total_a * total_b / n**2
    )


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
    return np.asarray(np.subtract(matrix, column_means, dtype=np.float32), dtype=np.float32)
