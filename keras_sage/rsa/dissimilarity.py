"""Representational dissimilarity matrices (RDMs), the paper's §3.1.

For an activation matrix F (n_i inputs × n_a activations) the RDM is M^F with
M^F_ij = 1 − corr(F_i, F_j) (Eq. 1). A category-level RDM replaces F with F^c, whose row c is the mean
activation pattern over the inputs of category c. Only the upper triangle (k = 1, row-major order) is
kept: it is what the paper compares, and what a teacher file stores.

All three metrics are one matrix product of prepared rows P Pᵀ, never a loop over pairs (the numpy
backend forms it from row blocks on and above the diagonal, to bound memory):

- correlation: rows centred on their own mean and scaled to unit norm, so corr(F_i, F_j) = p_i · p_j;
  float32 products, with row means and norms accumulated in float64 (TensorFlow: centred twice in float32);
- cosine: rows scaled to unit norm, likewise;
- euclidean: ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b on rows centred on the column mean (the distance does not
  change under a common translation, and centring keeps the identity from cancelling digits), in float64.

A row with zero variance (correlation) or zero norm (cosine) has no defined similarity with anything: its
dissimilarity to every other row is defined as 1 (similarity 0), and a `ConstantRepresentationWarning`
names the layer.

For correlation and cosine each prepared row depends on its own image only (`ROW_METRICS`), so a feature
extractor can prepare every batch as it leaves the model (`prepared_rows`, TensorFlow) and store the rows
compactly (float16 rows of unit norm lose nothing to overflow); `rdm_of_prepared_rows` then forms the
image-level RDM from them with the numpy kernel's float32 matrix products alone.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

METRICS = ("correlation", "euclidean", "cosine")
# The metrics whose rows are prepared one image at a time (`prepared_rows`): 1 − p_i·p_j with unit rows p.
ROW_METRICS = ("correlation", "cosine")
LEVELS = ("image", "category")
BACKENDS = ("auto", "numpy", "tensorflow")
# Features kept per layer when a layer's activations are subsampled for its RDM (the paper's "random
# subsample of features"), for teacher and candidate alike.
DEFAULT_MAX_FEATURES = 4096

# The numpy backend prepares rows in blocks of at most max(32 MiB, 1024 rows, input size / 4): a small input
# is one block (one matrix product), a large one needs two blocks (half its size) beyond itself plus the
# output, and no block is so thin that its matrix products run slowly.
_MIN_BLOCK_BYTES = 32 * 2**20
_MIN_BLOCK_ROWS = 1024
# Beyond its blocks and output the numpy backend holds a few float64 vectors of one value per row (means,
# norms) and numpy's buffers for casting to float64 in reductions (about 150 KB).
_VECTORS_PER_ROW = 8
_CAST_BUFFER_BYTES = 2**20


class ConstantRepresentationWarning(UserWarning):
    """A representation (or some of its rows) is constant, so its similarity is defined as 0."""


@dataclass(frozen=True, eq=False)
class RDM:
    """The upper triangle of a representational dissimilarity matrix, with how it was computed.

    Args:
        values: float32, the upper triangle (k = 1) in row-major order, length n·(n − 1)/2.
        n: rows compared: images, or categories when `level="category"`.
        metric: "correlation", "euclidean" or "cosine".
        level: "image" or "category".
        n_features: features in the flattened activations.
        n_features_used: features left after `max_features` subsampling.
        seed: the seed of the feature subsample.
        categories: the label of each row when `level="category"` (sorted unique labels).
        name: layer or region name, used in error messages.

    Example:

    ```python
    teacher_rdm = keras_sage.rdm(activations, name="block3")
    teacher_rdm.square().shape  # (n, n)
    ```
    """

    values: np.ndarray
    n: int
    metric: str
    level: str
    n_features: int
    n_features_used: int
    seed: int
    categories: np.ndarray | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float32)
        if values.shape != (condensed_length(self.n),):
            raise ValueError(
                f"RDM {self.name!r}: values must be the upper triangle of an n={self.n} matrix "
                f"(length {condensed_length(self.n)}), got shape {values.shape}"
            )
        object.__setattr__(self, "values", values)

    def square(self) -> np.ndarray:
        """Returns the full symmetric n×n matrix with a zero diagonal (float32)."""
        matrix = np.zeros((self.n, self.n), dtype=np.float32)
        matrix[_upper_mask(self.n)] = self.values
        return matrix + matrix.T


def condensed_length(n: int) -> int:
    """Returns the number of upper-triangle entries of an n×n matrix, n·(n − 1)/2."""
    return n * (n - 1) // 2


def rows_of_condensed(length: int, what: str) -> int:
    """Returns n such that an upper triangle of `length` values comes from an n×n matrix (n ≥ 3).

    Args:
        length: number of upper-triangle values.
        what: how to name the values in an error message.

    Returns:
        n.
    """
    n = (1 + math.isqrt(1 + 8 * length)) // 2
    if condensed_length(n) != length:
        raise ValueError(f"{what} has {length} values, which is not n·(n − 1)/2 for any n")
    if n < 3:
        raise ValueError(f"{what} compares n={n} rows; an RDM needs at least 3")
    return n


def feature_subsample_indices(n_features: int, max_features: int | None, seed: int) -> np.ndarray | None:
    """Returns the paper's fixed random subsample of features, as sorted indices.

    Teacher and student activations are subsampled with this one function, so the same seed always
    selects the same features.

    Args:
        n_features: features in the flattened activations.
        max_features: keep at most this many features; None keeps all.
        seed: seed of the random choice.

    Returns:
        Sorted int64 indices of length `max_features`, or None when every feature is kept.
    """
    if max_features is None or max_features >= n_features:
        return None
    if max_features < 1:
        raise ValueError(f"max_features must be at least 1, got {max_features}")
    chosen = np.random.default_rng(seed).choice(n_features, size=max_features, replace=False)
    return np.sort(chosen).astype(np.int64)


def rdm_workspace_bytes(n: int, n_features: int) -> int:
    """Returns the most memory `rdm` takes beyond its float32 input, for any metric, on the numpy backend.

    That is the float32 upper triangle it returns, its blocks of prepared rows and their products, sized
    as `_blocked_dissimilarities` chooses them (float32 for correlation and cosine, float64 for
    euclidean), a few float64 vectors of one value per row, and numpy's casting buffers.

    Args:
        n: rows compared.
        n_features: features of each row.

    Returns:
        Bytes.

    Example:

    ```python
    rdm_workspace_bytes(5000, 4096)  # 125 MB: 50 MB of upper triangle, 73 MB of blocks
    ```
    """
    blocks = 0
    for item_bytes in (4, 8):
        rows_per_block = _rows_per_block(n, n_features, item_bytes, input_bytes=4 * n * n_features)
        row_blocks = 1 if rows_per_block == n else 2
        blocks = max(blocks, item_bytes * rows_per_block * (row_blocks * n_features + rows_per_block))
    return 4 * condensed_length(n) + blocks + 8 * _VECTORS_PER_ROW * n + _CAST_BUFFER_BYTES


def rdm(
    activations: Any,
    metric: str = "correlation",
    labels: Any = None,
    level: str = "image",
    max_features: int | None = None,
    seed: int = 0,
    backend: str = "auto",
    name: str | None = None,
) -> RDM:
    """Computes the RDM of a layer's activations (the paper's Eq. 1 for `metric="correlation"`).

    Args:
        activations: np.ndarray or tf.Tensor of shape (n_images, ...); all axes after the first are
            flattened into features.
        metric: "correlation" (1 − Pearson r, the paper), "euclidean" or "cosine" (1 − cosine similarity).
        labels: one label per image; required, and only used, when `level="category"`.
        level: "image" compares images; "category" first averages the rows of each label (the paper's
            F^c) and compares categories.
        max_features: keep a fixed random subsample of at most this many features (the paper's "random
            subsample of features"); None keeps all.
        seed: seed of the feature subsample, see `feature_subsample_indices`.
        backend: "numpy", "tensorflow" (`tf.linalg.matmul`, runs on a GPU unchanged) or "auto":
            TensorFlow when given a tf.Tensor or when TensorFlow is already imported and sees a GPU,
            numpy otherwise. "auto" never imports TensorFlow itself.
        name: the layer or region name, used in error messages and stored on the RDM.

    Returns:
        An `RDM` whose `values` are the float32 upper triangle.

    Raises:
        ValueError: on NaN or inf in `activations`, fewer than 3 rows to compare, missing or mismatched
            `labels`, or an unknown `metric`, `level` or `backend`.

    Example:

    ```python
    images_rdm = keras_sage.rdm(activations, name="conv3")
    categories_rdm = keras_sage.rdm(activations, labels=labels, level="category", max_features=5000)
    ```
    """
    where = f"layer {name!r}" if name is not None else "activations"
    _check_choice("metric", metric, METRICS)
    _check_choice("level", level, LEVELS)
    _check_choice("backend", backend, BACKENDS)
    if backend == "auto":
        backend = _automatic_backend(activations)
    operations = _NumpyOperations() if backend == "numpy" else _TensorFlowOperations()
    matrix, n_features, categories = _rows_to_compare(
        operations, activations, labels, level, max_features, seed, where
    )
    n, n_features_used = (int(size) for size in matrix.shape)
    values, degenerate_rows = operations.dissimilarities(matrix, metric)
    _warn_degenerate(degenerate_rows, n, metric, where)
    return RDM(
        values=values,
        n=n,
        metric=metric,
        level=level,
        n_features=n_features,
        n_features_used=n_features_used,
        seed=seed,
        categories=categories,
        name=name,
    )


def prepared_rows(features: Any, metric: str = "correlation") -> Any:
    """Prepares rows of activations, each on its own, so that their dissimilarity is 1 − p_i·p_j.

    For "correlation" each row is centred on its own mean (twice, in float32, which makes the mean as
    accurate as float64 accumulation would) and scaled to unit norm; for "cosine" it is scaled to unit
    norm. A row with zero variance (correlation) or all zero (cosine) becomes all zero, so its
    dissimilarity to every other row is 1, as `rdm` defines it. A row holding NaN or inf becomes NaN, which
    `rdm_of_prepared_rows` refuses. TensorFlow operations, so a feature extractor can run them inside its
    graph on every batch of images.

    Args:
        features: tf.Tensor or array `(rows, features)`.
        metric: One of `ROW_METRICS`.

    Returns:
        The float32 tf.Tensor of prepared rows, of the same shape.

    Example:

    ```python
    rows = prepared_rows(batch_features)  # inside a tf.function, batch by batch
    rdm_of_prepared_rows(all_rows)  # == rdm(all_features) to float32 rounding
    ```
    """
    import tensorflow as tf

    _check_choice("metric", metric, ROW_METRICS)
    matrix = tf.convert_to_tensor(features)
    if matrix.dtype not in (tf.float32, tf.float64):
        matrix = tf.cast(matrix, tf.float32)
    prepared, _ = _unit_rows(matrix, metric, tf.float32)
    return prepared


def rdm_of_prepared_rows(
    prepared: np.ndarray,
    metric: str = "correlation",
    n_features: int | None = None,
    seed: int = 0,
    name: str | None = None,
    out: np.ndarray | None = None,
    backend: str = "auto",
) -> RDM:
    """The image-level RDM of rows prepared by `prepared_rows`: the upper triangle of 1 − P Pᵀ.

    Only the float32 matrix products remain to be done (float16 rows are cast to float32 first): the numpy
    kernel's products of row blocks, or one `tf.linalg.matmul` (on a GPU when there is one). A row of NaN
    raises; an all-zero row (a constant image) has dissimilarity 1 to every other row and a
    `ConstantRepresentationWarning` names the layer.

    Args:
        prepared: float32 or float16 array `(n_images, features used)` of prepared rows.
        metric: The metric the rows were prepared for, one of `ROW_METRICS`.
        n_features: Features of the activations before subsampling, stored on the RDM; by default the
            features used.
        seed: The seed of the feature subsample, stored on the RDM.
        name: The layer name, used in messages and stored on the RDM.
        out: Optional float32 array of length n·(n − 1)/2 to write the upper triangle into (a caller
            computing many RDMs one after another can reuse it once it has dropped the previous RDM).
        backend: "numpy", "tensorflow" or "auto", as for `rdm` (TensorFlow when it is imported and sees
            a GPU).

    Returns:
        An image-level `RDM`.

    Raises:
        ValueError: On NaN or inf rows, fewer than 3 rows, an unknown `metric` or `backend`, or an `out`
            of another length or dtype.

    Example:

    ```python
    student_rdm = rdm_of_prepared_rows(rows, name="layer_3")
    ```
    """
    where = f"layer {name!r}" if name is not None else "prepared rows"
    _check_choice("metric", metric, ROW_METRICS)
    _check_choice("backend", backend, BACKENDS)
    matrix = np.asarray(prepared)
    if matrix.ndim != 2:
        raise ValueError(f"{where}: prepared rows must have shape (n_images, features), got {matrix.shape}")
    if matrix.dtype not in (np.float16, np.float32):
        matrix = matrix.astype(np.float32)
    n, n_used = (int(size) for size in matrix.shape)
    _check_rows(n, "image", where)
    values = np.empty(condensed_length(n), dtype=np.float32) if out is None else out
    if values.dtype != np.float32 or values.shape != (condensed_length(n),):
        raise ValueError(
            f"{where}: out must be a float32 array of length {condensed_length(n)}, got {values.dtype} "
            f"{values.shape}"
        )
    if (_automatic_backend(matrix) if backend == "auto" else backend) == "tensorflow":
        squared_norms = _prepared_products_tensorflow(matrix, values)
    else:
        squared_norms = _prepared_products_numpy(matrix, values)
    not_finite = ~np.isfinite(squared_norms)
    if not_finite.any():
        _raise_not_finite(np.flatnonzero(not_finite), where)
    _warn_degenerate(int(np.count_nonzero(squared_norms == 0)), n, metric, where)
    return RDM(
        values=values,
        n=n,
        metric=metric,
        level="image",
        n_features=n_used if n_features is None else int(n_features),
        n_features_used=n_used,
        seed=seed,
        name=name,
    )


def _prepared_products_numpy(matrix: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Writes the upper triangle of clip(1 − P Pᵀ, 0, 2) into `values` from row blocks; returns ‖p_i‖²."""
    n, n_used = matrix.shape
    rows_per_block = _rows_per_block(n, n_used, 4, 4 * n * n_used)
    # Float16 rows are cast once (casting each block as often as it is multiplied costs more).
    rows = matrix.astype(np.float32, copy=False)
    squared_norms = np.empty(n, dtype=np.float32)

    def prepare(start: int, outer: bool) -> np.ndarray:
        return rows[start : start + rows_per_block]

    def finish(products: np.ndarray, outer_start: int, inner_start: int) -> None:
        if outer_start == inner_start:
            squared_norms[outer_start : outer_start + len(products)] = np.diagonal(products)
        np.subtract(1.0, products, out=products)
        np.clip(products, 0.0, 2.0, out=products)

    _upper_triangle_of_products(values, n, rows_per_block, np.float32, prepare, finish)
    return squared_norms


def _prepared_products_tensorflow(matrix: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The same as one `tf.linalg.matmul` of all the rows (on a GPU when there is one)."""
    import tensorflow as tf

    rows = tf.cast(tf.convert_to_tensor(matrix), tf.float32)
    products = tf.linalg.matmul(rows, rows, transpose_b=True)
    n = int(matrix.shape[0])
    upper = tf.range(n)[:, None] < tf.range(n)[None, :]
    np.copyto(values, tf.boolean_mask(tf.clip_by_value(1.0 - products, 0.0, 2.0), upper).numpy())
    return np.asarray(tf.linalg.diag_part(products).numpy())


def prepared_rdm_workspace_bytes(n: int, n_features: int, item_bytes: int = 4) -> int:
    """Returns the most memory `rdm_of_prepared_rows` takes beyond its input, `out` included, on the numpy
    backend.

    That is the float32 upper triangle, one block of float32 products, a float32 copy of the rows when
    they are float16 (`item_bytes=2`), and vectors of one value per row (the squared norms, masks).

    Args:
        n: Rows compared.
        n_features: Features of each row.
        item_bytes: Bytes per value of the prepared rows: 4 (float32) or 2 (float16).

    Returns:
        Bytes.

    Example:

    ```python
    prepared_rdm_workspace_bytes(5000, 4096, item_bytes=2)  # 143 MB: 50 MB of upper triangle, 82 MB of rows
    ```
    """
    rows_per_block = _rows_per_block(n, n_features, 4, 4 * n * n_features)
    cast = 0 if item_bytes == 4 else 4 * n * n_features
    return 4 * condensed_length(n) + 4 * rows_per_block**2 + cast + 8 * n


def _warn_degenerate(degenerate_rows: int, n: int, metric: str, where: str) -> None:
    if degenerate_rows:
        kind = "zero-variance" if metric == "correlation" else "all-zero"
        warnings.warn(
            f"{where}: {degenerate_rows} of {n} rows are {kind}; their {metric} with any row is undefined "
            "and is set to 0 (dissimilarity 1)",
            ConstantRepresentationWarning,
            stacklevel=3,
        )


def _check_choice(parameter: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{parameter} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _automatic_backend(activations: Any) -> str:
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return "numpy"
    if isinstance(activations, (tf.Tensor, tf.Variable)) or tf.config.list_physical_devices("GPU"):
        return "tensorflow"
    return "numpy"


def _upper_mask(n: int) -> np.ndarray:
    rows = np.arange(n)
    return rows[:, None] < rows[None, :]


def _check_rows(n: int, level: str, where: str) -> None:
    if n < 3:
        rows = "categories" if level == "category" else "images"
        raise ValueError(f"{where}: an RDM needs at least 3 {rows}, got {n}")


def _raise_not_finite(bad_rows: np.ndarray, where: str) -> None:
    shown = ", ".join(str(row) for row in bad_rows[:5]) + (", ..." if len(bad_rows) > 5 else "")
    raise ValueError(f"{where}: NaN or inf in {len(bad_rows)} image(s) (rows {shown})")


def _category_index(
    labels: Any, n: int, level: str, where: str
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Returns (sorted unique labels, the category of each row) for level "category", else (None, None)."""
    if level != "category":
        return None, None
    if labels is None:
        raise ValueError(f"{where}: level='category' needs labels, one per image")
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n:
        raise ValueError(f"{where}: got {len(labels)} labels for {n} images")
    categories, category_of_row = np.unique(labels, return_inverse=True)
    return categories, category_of_row


def _rows_to_compare(
    operations: _NumpyOperations | _TensorFlowOperations,
    activations: Any,
    labels: Any,
    level: str,
    max_features: int | None,
    seed: int,
    where: str,
) -> tuple[Any, int, np.ndarray | None]:
    """The argument prologue both backends share: checks, flattening, feature subsample, category means.

    Returns:
        `(matrix, n_features, categories)`: the rows to compare (rows × features used, in the backend's
        array type), the features before subsampling, and the sorted labels for level "category" (else
        None).
    """
    matrix = operations.as_array(activations)
    if len(matrix.shape) < 2:
        raise ValueError(f"{where}: activations must have shape (n_images, ...), got {matrix.shape}")
    matrix = operations.flattened(matrix)
    n_images, n_features = (int(size) for size in matrix.shape)
    non_finite_rows = operations.non_finite_rows(matrix)
    if len(non_finite_rows):
        _raise_not_finite(non_finite_rows, where)
    categories, category_of_row = _category_index(labels, n_images, level, where)
    features = feature_subsample_indices(n_features, max_features, seed)
    if features is not None:
        matrix = operations.columns(matrix, features)
    if categories is not None and category_of_row is not None:
        # F^c: row c is the mean activation pattern over the images of category c.
        matrix = operations.category_means(matrix, category_of_row, len(categories))
    _check_rows(int(matrix.shape[0]), level, where)
    return matrix, n_features, categories


class _NumpyOperations:
    """The numpy backend: the array operations of the shared prologue, and the blocked kernel."""

    def as_array(self, activations: Any) -> np.ndarray:
        return np.asarray(activations)

    def flattened(self, matrix: np.ndarray) -> np.ndarray:
        matrix = matrix.reshape(len(matrix), -1)
        if matrix.dtype in (np.float32, np.float64):
            return matrix
        return matrix.astype(np.float32)

    def non_finite_rows(self, matrix: np.ndarray) -> np.ndarray:
        # A row sum is finite exactly when the row is, and float64 accumulation cannot overflow float32 data.
        if np.isfinite(np.sum(matrix, axis=1, dtype=np.float64)).all():
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(~np.isfinite(matrix).all(axis=1))

    def columns(self, matrix: np.ndarray, features: np.ndarray) -> np.ndarray:
        return matrix[:, features]

    def category_means(
        self, matrix: np.ndarray, category_of_row: np.ndarray, n_categories: int
    ) -> np.ndarray:
        return np.stack(
            [matrix[category_of_row == c].mean(axis=0, dtype=np.float64) for c in range(n_categories)]
        ).astype(np.float32)

    def dissimilarities(self, matrix: np.ndarray, metric: str) -> tuple[np.ndarray, int]:
        return _blocked_dissimilarities(matrix, metric)


def _rows_per_block(n: int, n_features: int, item_bytes: int, input_bytes: int) -> int:
    """Rows in each block of the numpy kernel: blocks of equal size whose rows and products each fit in
    max(`_MIN_BLOCK_BYTES`, `_MIN_BLOCK_ROWS` rows, a quarter of the input)."""
    block_bytes = max(_MIN_BLOCK_BYTES, _MIN_BLOCK_ROWS * n_features * item_bytes, input_bytes // 4)
    most_rows = min(
        n, max(1, block_bytes // (n_features * item_bytes)), math.isqrt(block_bytes // item_bytes)
    )
    return math.ceil(n / math.ceil(n / most_rows))


def _blocked_dissimilarities(matrix: np.ndarray, metric: str) -> tuple[np.ndarray, int]:
    """The numpy kernel: prepares rows block by block and multiplies block pairs on or above the diagonal."""
    n, n_features = matrix.shape
    compute_dtype = np.float64 if metric == "euclidean" else np.float32
    if metric == "correlation":
        row_sums = np.asarray(np.sum(matrix, axis=1, dtype=np.float64))
        # Each row's mean, accumulated in float64 and rounded to the compute dtype: a centred row sums to
        # zero, so the remaining shift of half an ulp changes its correlations only at second order.
        offset = (row_sums / n_features).astype(compute_dtype)[:, None]
        degenerate = np.ptp(matrix, axis=1) == 0
    elif metric == "euclidean":
        offset = np.asarray(np.mean(matrix, axis=0, dtype=np.float64))[None, :]  # the column mean
        degenerate = np.zeros(n, dtype=bool)
    else:
        offset = None
        degenerate = ~np.any(matrix, axis=1)
    rows_per_block = _rows_per_block(n, n_features, np.dtype(compute_dtype).itemsize, matrix.nbytes)
    squared_norms = np.zeros(n, dtype=np.float64)
    blocks_with_norms = set()
    buffers = _block_buffers(n, rows_per_block, n_features, compute_dtype)

    def prepare(start: int, outer: bool) -> np.ndarray:
        stop = min(start + rows_per_block, n)
        block = buffers[0 if outer else 1][: stop - start]
        if offset is None:
            np.copyto(block, matrix[start:stop], casting="same_kind")
        else:
            row_offset = offset[start:stop] if metric == "correlation" else offset
            np.subtract(matrix[start:stop], row_offset, out=block, casting="same_kind")
        if start not in blocks_with_norms:
            squared_norms[start:stop] = np.einsum("ij,ij->i", block, block, dtype=np.float64)
            blocks_with_norms.add(start)
        if metric != "euclidean":
            norms = np.sqrt(squared_norms[start:stop])
            scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=~degenerate[start:stop])
            block *= scale.astype(compute_dtype)[:, None]
        return block

    def finish(products: np.ndarray, outer_start: int, inner_start: int) -> None:
        if metric == "euclidean":
            # ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b, clamped at 0 against rounding.
            products *= -2.0
            products += squared_norms[outer_start : outer_start + len(products), None]
            products += squared_norms[None, inner_start : inner_start + products.shape[1]]
            np.sqrt(np.maximum(products, 0.0, out=products), out=products)
        else:
            np.subtract(1.0, products, out=products)
            np.clip(products, 0.0, 2.0, out=products)

    values = np.empty(condensed_length(n), dtype=np.float32)
    _upper_triangle_of_products(values, n, rows_per_block, compute_dtype, prepare, finish)
    return values, int(degenerate.sum())


def _block_buffers(
    n: int, rows_per_block: int, n_features: int, dtype: npt.DTypeLike
) -> tuple[np.ndarray, np.ndarray]:
    """The outer and inner blocks' buffers of prepared rows (one buffer when the rows are one block)."""
    outer = np.empty((rows_per_block, n_features), dtype=dtype)
    return outer, (np.empty_like(outer) if rows_per_block < n else outer)


def _upper_triangle_of_products(
    values: np.ndarray,
    n: int,
    rows_per_block: int,
    compute_dtype: npt.DTypeLike,
    prepare: Callable[[int, bool], np.ndarray],
    finish: Callable[[np.ndarray, int, int], None],
) -> None:
    """The numpy kernels' loop: the product of every pair of row blocks on or above the diagonal.

    Args:
        values: Where the upper triangle (float32, row-major) is written.
        n: Rows.
        rows_per_block: Rows per block (the last may be shorter).
        compute_dtype: Of the products.
        prepare: `(first row, whether outer)` → that block of prepared rows; an outer block is kept while
            the inner blocks after it are prepared.
        finish: Turns a block of products `(outer rows, inner rows)` into dissimilarities in place, given
            the first row of the outer and the inner block.
    """
    starts = range(0, n, rows_per_block)
    products_buffer: npt.NDArray[np.floating[Any]] = np.empty(
        rows_per_block * rows_per_block, dtype=compute_dtype
    )
    for outer_start in starts:
        outer = prepare(outer_start, True)
        for inner_start in starts[starts.index(outer_start) :]:
            inner = outer if inner_start == outer_start else prepare(inner_start, False)
            products = products_buffer[: len(outer) * len(inner)].reshape(len(outer), len(inner))
            np.matmul(outer, inner.T, out=products)  # `a @ a.T` on the diagonal is a symmetric rank-k update
            finish(products, outer_start, inner_start)
            _write_upper_triangle(values, products, outer_start, inner_start, n)


def _write_upper_triangle(
    values: np.ndarray, block: np.ndarray, row_start: int, column_start: int, n: int
) -> None:
    """Copies the part of a block of an n×n matrix above the diagonal into its row-major upper triangle.

    One slice per row of the block, never a loop over pairs.
    """
    column_stop = column_start + block.shape[1]
    for row, i in enumerate(range(row_start, row_start + block.shape[0])):
        first_column = max(column_start, i + 1)
        if first_column < column_stop:
            offset = i * (2 * n - i - 1) // 2 - i - 1  # (i, j) is at offset + j
            values[offset + first_column : offset + column_stop] = block[row, first_column - column_start :]


class _TensorFlowOperations:
    """The TensorFlow backend: the array operations of the shared prologue, and the whole-matrix kernel."""

    def __init__(self) -> None:
        import tensorflow as tf

        self.tf = tf

    def as_array(self, activations: Any) -> Any:
        return self.tf.convert_to_tensor(activations)

    def flattened(self, matrix: Any) -> Any:
        matrix = self.tf.reshape(matrix, (self.tf.shape(matrix)[0], -1))
        if matrix.dtype in (self.tf.float32, self.tf.float64):
            return matrix
        return self.tf.cast(matrix, self.tf.float32)

    def non_finite_rows(self, matrix: Any) -> np.ndarray:
        finite_rows = self.tf.reduce_all(self.tf.math.is_finite(matrix), axis=1).numpy()
        return np.flatnonzero(~finite_rows)

    def columns(self, matrix: Any, features: np.ndarray) -> Any:
        return self.tf.gather(matrix, features, axis=1)

    def category_means(self, matrix: Any, category_of_row: np.ndarray, n_categories: int) -> Any:
        return self.tf.math.unsorted_segment_mean(matrix, category_of_row, num_segments=n_categories)

    def dissimilarities(self, matrix: Any, metric: str) -> tuple[np.ndarray, int]:
        return _whole_matrix_dissimilarities(matrix, metric)


def _whole_matrix_dissimilarities(matrix: Any, metric: str) -> tuple[np.ndarray, int]:
    """The TensorFlow kernel: one n×n matrix product (`tf.linalg.matmul`, on a GPU when there is one)."""
    import tensorflow as tf

    n = int(matrix.shape[0])
    if metric == "euclidean":
        degenerate = tf.zeros(n, dtype=tf.bool)
        prepared = tf.cast(matrix, tf.float64)
        prepared -= tf.reduce_mean(prepared, axis=0, keepdims=True)
        squared_norms = tf.reduce_sum(tf.square(prepared), axis=1)
        products = tf.linalg.matmul(prepared, prepared, transpose_b=True)
        squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * products
        dissimilarities = tf.sqrt(tf.maximum(squared, 0.0))
    else:
        prepared, degenerate = _unit_rows(matrix, metric, tf.float32)
        products = tf.linalg.matmul(prepared, prepared, transpose_b=True)
        dissimilarities = tf.clip_by_value(1.0 - products, 0.0, 2.0)
    upper = tf.range(n)[:, None] < tf.range(n)[None, :]
    values = tf.boolean_mask(tf.cast(dissimilarities, tf.float32), upper).numpy()
    degenerate_rows = int(tf.reduce_sum(tf.cast(degenerate, tf.int32)))
    return values, degenerate_rows


def _unit_rows(matrix: Any, metric: str, compute_dtype: Any) -> tuple[Any, Any]:
    """TensorFlow: rows centred on their own mean ("correlation") and scaled to unit norm, all-zero where
    degenerate (zero variance, or all zero for "cosine"); returns `(rows, whether each is degenerate)`."""
    import tensorflow as tf

    if metric == "correlation":
        degenerate = tf.reduce_max(matrix, axis=1) == tf.reduce_min(matrix, axis=1)
    else:
        degenerate = tf.reduce_all(matrix == 0, axis=1)
    prepared = tf.cast(matrix, compute_dtype)
    if metric == "correlation":
        # Centring twice makes the float32 row means as accurate as float64 accumulation would.
        prepared -= tf.reduce_mean(prepared, axis=1, keepdims=True)
        prepared -= tf.reduce_mean(prepared, axis=1, keepdims=True)
    norms = tf.norm(prepared, axis=1)
    scale = tf.where(degenerate, tf.zeros_like(norms), 1.0 / tf.where(degenerate, 1.0, norms))
    return prepared * scale[:, None], degenerate
