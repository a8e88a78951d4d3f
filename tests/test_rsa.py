"""keras_sage.rsa against scipy: RDMs (pdist), RDM comparisons (pearsonr, spearmanr, kendalltau), CKA."""

import importlib
import itertools
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
from scipy.spatial.distance import pdist, squareform

import keras_sage
from keras_sage import rsa

rdm_module = importlib.import_module("keras_sage.rsa.dissimilarity")
BACKENDS = ["numpy", "tensorflow"]


def random_activations(seed=0, n=40, shape=(24,)):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


def clustered_activations(seed=1):
    """Five prototypes far from the origin plus small noise, with exact duplicate rows (n=40, d=30)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.standard_normal((5, 30))
    rows = 50.0 + prototypes[np.arange(40) % 5] + 0.01 * rng.standard_normal((40, 30))
    rows[7] = rows[2]
    return rows.astype(np.float32)


def relu_activations(seed=2):
    """Sparse, low-rank, conv-shaped activations (n=30, 4×4×3), as a ReLU layer produces."""
    rng = np.random.default_rng(seed)
    low_rank = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 48))
    return np.maximum(low_rank - 0.5, 0.0).reshape(30, 4, 4, 3).astype(np.float32)


INPUTS = {
    "random": random_activations,
    "clustered": clustered_activations,
    "relu": relu_activations,
}


def reference_rdm(activations, metric):
    return pdist(np.asarray(activations, dtype=np.float64).reshape(len(activations), -1), metric)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", rsa.METRICS)
@pytest.mark.parametrize("kind", INPUTS)
def test_rdm_equals_scipy_pdist(kind, metric, backend):
    activations = INPUTS[kind]()
    result = rsa.rdm(activations, metric=metric, backend=backend)
    assert result.values.dtype == np.float32
    assert result.n == len(activations)
    assert result.n_features == result.n_features_used == activations[0].size
    np.testing.assert_allclose(result.values, reference_rdm(activations, metric), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", rsa.METRICS)
def test_numpy_rdm_in_many_blocks_equals_scipy(monkeypatch, metric):
    # 7-row blocks over 40 rows: diagonal, off-diagonal and a short last block all occur.
    monkeypatch.setattr(rdm_module, "_MIN_BLOCK_BYTES", 7 * 30 * 8)
    monkeypatch.setattr(rdm_module, "_MIN_BLOCK_ROWS", 1)
    activations = clustered_activations()
    np.testing.assert_allclose(
        rsa.rdm(activations, metric=metric).values, reference_rdm(activations, metric), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("small_blocks", [False, True])
def test_rdm_workspace_bytes_bounds_the_numpy_backend_memory(monkeypatch, small_blocks):
    if small_blocks:  # 11 to 15 blocks (182 or 134 rows) instead of one
        monkeypatch.setattr(rdm_module, "_MIN_BLOCK_BYTES", 300 * 64 * 8)
        monkeypatch.setattr(rdm_module, "_MIN_BLOCK_ROWS", 1)
    activations = random_activations(n=2000, shape=(64,))
    peaks = {}
    for metric in rsa.METRICS:
        tracemalloc.start()
        rsa.rdm(activations, metric=metric, backend="numpy")
        peaks[metric] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    bound = rdm_module.rdm_workspace_bytes(2000, 64)
    assert max(peaks.values()) <= bound
    assert max(peaks.values()) > 0.8 * bound  # a bound, not a guess many times too large


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", rsa.ROW_METRICS)
@pytest.mark.parametrize("kind", INPUTS)
def test_rdm_of_prepared_rows_equals_scipy_pdist(kind, metric, backend):
    activations = INPUTS[kind]()
    rows = rsa.prepared_rows(activations.reshape(len(activations), -1), metric=metric).numpy()
    result = rsa.rdm_of_prepared_rows(
        rows, metric=metric, n_features=99, seed=4, name="conv1", backend=backend
    )
    assert (result.metric, result.level, result.n_features, result.n_features_used, result.seed) == (
        metric,
        "image",
        99,
        activations[0].size,
        4,
    )
    expected = reference_rdm(activations, metric)
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.values, rsa.rdm(activations, metric=metric).values, atol=2e-6)
    # float16 rows of unit norm: each dissimilarity within a few float16 roundings of the exact one.
    half = rsa.rdm_of_prepared_rows(rows.astype(np.float16), metric=metric, backend=backend)
    np.testing.assert_allclose(half.values, expected, atol=2e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rdm_of_prepared_rows_in_many_blocks_into_a_reused_triangle(monkeypatch, dtype):
    # 7-row blocks over 40 rows: diagonal, off-diagonal and a short last block all occur.
    monkeypatch.setattr(rdm_module, "_MIN_BLOCK_BYTES", 7 * 24 * 4)
    monkeypatch.setattr(rdm_module, "_MIN_BLOCK_ROWS", 1)
    activations = random_activations()
    rows = rsa.prepared_rows(activations).numpy().astype(dtype)
    out = np.full(rsa.condensed_length(40), np.nan, dtype=np.float32)
    result = rsa.rdm_of_prepared_rows(rows, out=out)
    assert result.values is out
    np.testing.assert_allclose(
        out, reference_rdm(activations, "correlation"), atol=2e-3 if dtype == np.float16 else 1e-5
    )
    with pytest.raises(ValueError, match="out must be a float32 array of length 780"):
        rsa.rdm_of_prepared_rows(rows, out=np.empty(779, dtype=np.float32))


def test_prepared_rdm_workspace_bytes_bounds_the_memory(monkeypatch):
    monkeypatch.setattr(rdm_module, "_MIN_BLOCK_BYTES", 300 * 64 * 4)  # 12 blocks of 167 rows
    monkeypatch.setattr(rdm_module, "_MIN_BLOCK_ROWS", 1)
    rows = rsa.prepared_rows(random_activations(n=2000, shape=(64,))).numpy()
    for dtype, item_bytes in ((np.float32, 4), (np.float16, 2)):
        typed_rows = rows.astype(dtype)
        tracemalloc.start()
        rsa.rdm_of_prepared_rows(typed_rows)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        bound = rdm_module.prepared_rdm_workspace_bytes(2000, 64, item_bytes)
        assert 0.8 * bound < peak <= bound


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", rsa.ROW_METRICS)
def test_prepared_degenerate_rows_have_dissimilarity_one_and_warn(metric, backend):
    activations = random_activations(n=6)
    activations[2] = 0.0
    rows = rsa.prepared_rows(activations, metric=metric).numpy()
    np.testing.assert_array_equal(rows[2], 0.0)
    kind = "zero-variance" if metric == "correlation" else "all-zero"
    with pytest.warns(rsa.ConstantRepresentationWarning, match=f"'pool1'.*1 of 6 rows are {kind}"):
        result = rsa.rdm_of_prepared_rows(
            rows.astype(np.float16), metric=metric, name="pool1", backend=backend
        )
    np.testing.assert_array_equal(np.delete(result.square()[2], 2), 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_prepared_rows_raise_naming_the_layer(bad, backend):
    activations = random_activations()
    activations[3, 5] = bad
    rows = rsa.prepared_rows(activations).numpy().astype(np.float16)
    with pytest.raises(ValueError, match=r"layer 'conv2'.*NaN or inf.*rows 3\)"):
        rsa.rdm_of_prepared_rows(rows, name="conv2", backend=backend)


def test_prepared_rows_refuse_other_metrics_and_shapes():
    with pytest.raises(ValueError, match="metric must be one of 'correlation', 'cosine'"):
        rsa.prepared_rows(random_activations(), metric="euclidean")
    with pytest.raises(ValueError, match="metric must be one of"):
        rsa.rdm_of_prepared_rows(random_activations(), metric="euclidean")
    with pytest.raises(ValueError, match=r"shape \(n_images, features\)"):
        rsa.rdm_of_prepared_rows(random_activations(shape=(4, 6)))
    with pytest.raises(ValueError, match="at least 3 images, got 2"):
        rsa.rdm_of_prepared_rows(random_activations(n=2))


def test_float64_and_integer_activations_are_accepted():
    activations = np.random.default_rng(3).integers(0, 9, size=(12, 10))
    expected = reference_rdm(activations, "correlation")
    np.testing.assert_allclose(rsa.rdm(activations).values, expected, atol=1e-5)
    np.testing.assert_allclose(rsa.rdm(activations.astype(np.float64)).values, expected, atol=1e-5)


def test_backend_auto_uses_tensorflow_for_a_tensor():
    activations = random_activations()
    assert rdm_module._automatic_backend(tf.constant(activations)) == "tensorflow"
    np.testing.assert_allclose(
        rsa.rdm(tf.constant(activations)).values, rsa.rdm(activations, backend="numpy").values, atol=1e-6
    )


def test_square_is_scipy_squareform():
    result = rsa.rdm(random_activations(), metric="euclidean")
    square = result.square()
    np.testing.assert_array_equal(square, squareform(result.values))
    np.testing.assert_array_equal(np.diag(square), 0)


def test_rdm_rejects_values_of_the_wrong_length():
    with pytest.raises(ValueError, match="n=5"):
        rsa.RDM(np.zeros(9), 5, "correlation", "image", n_features=3, n_features_used=3, seed=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_category_rdm_averages_rows_per_label(backend):
    activations = random_activations(n=30)
    labels = np.array(["cat", "dog", "car", "ship", "frog"] * 6)
    result = rsa.rdm(activations, labels=labels, level="category", backend=backend)
    categories = np.array(["car", "cat", "dog", "frog", "ship"])
    np.testing.assert_array_equal(result.categories, categories)
    means = np.stack([activations[labels == label].mean(axis=0) for label in categories])
    assert result.n == 5
    np.testing.assert_allclose(result.values, reference_rdm(means, "correlation"), atol=1e-5)


def test_category_rdm_needs_matching_labels():
    with pytest.raises(ValueError, match="needs labels"):
        rsa.rdm(random_activations(), level="category")
    with pytest.raises(ValueError, match="3 labels for 40 images"):
        rsa.rdm(random_activations(), labels=[0, 1, 2], level="category")


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_features_uses_the_fixed_subsample(backend):
    activations = random_activations(n=20, shape=(5, 6))
    result = rsa.rdm(activations, max_features=11, seed=4, backend=backend)
    features = rsa.feature_subsample_indices(30, 11, seed=4)
    assert (result.n_features, result.n_features_used, result.seed) == (30, 11, 4)
    expected = reference_rdm(activations.reshape(20, 30)[:, features], "correlation")
    np.testing.assert_allclose(result.values, expected, atol=1e-5)


def test_feature_subsample_indices_are_sorted_distinct_and_seeded():
    features = rsa.feature_subsample_indices(1000, 50, seed=7)
    assert len(np.unique(features)) == 50
    assert np.all(np.diff(features) > 0) and features[-1] < 1000
    np.testing.assert_array_equal(features, rsa.feature_subsample_indices(1000, 50, seed=7))
    assert not np.array_equal(features, rsa.feature_subsample_indices(1000, 50, seed=8))
    assert rsa.feature_subsample_indices(1000, None, seed=7) is None
    assert rsa.feature_subsample_indices(1000, 1000, seed=7) is None
    with pytest.raises(ValueError, match="max_features"):
        rsa.feature_subsample_indices(1000, 0, seed=7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_constant_row_has_dissimilarity_one_and_warns(backend):
    activations = random_activations(n=6)
    activations[2] = 0.3
    with pytest.warns(rsa.ConstantRepresentationWarning, match="'pool1'.*1 of 6 rows"):
        result = rsa.rdm(activations, name="pool1", backend=backend)
    square = result.square()
    assert np.isfinite(result.values).all()
    np.testing.assert_array_equal(np.delete(square[2], 2), 1.0)
    others = np.delete(np.arange(6), 2)
    np.testing.assert_allclose(
        squareform(square[np.ix_(others, others)], checks=False),
        reference_rdm(activations[others], "correlation"),
        atol=1e-5,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_row_has_cosine_dissimilarity_one_and_warns(backend):
    activations = random_activations(n=5)
    activations[0] = 0.0
    with pytest.warns(rsa.ConstantRepresentationWarning, match="all-zero"):
        result = rsa.rdm(activations, metric="cosine", backend=backend)
    np.testing.assert_array_equal(result.square()[0, 1:], 1.0)


def test_constant_representation_has_similarity_zero():
    constant = np.ones((10, 8), dtype=np.float32)
    with pytest.warns(rsa.ConstantRepresentationWarning):
        constant_rdm = rsa.rdm(constant, name="dead_layer")
    with pytest.warns(rsa.ConstantRepresentationWarning, match="'dead_layer'"):
        similarity = rsa.compare(constant_rdm, rsa.rdm(random_activations(n=10)))
    assert similarity == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_activations_raise_naming_the_layer(backend, bad):
    activations = random_activations()
    activations[3, 5] = bad
    with pytest.raises(ValueError, match=r"layer 'conv2'.*NaN or inf.*rows 3\)"):
        rsa.rdm(activations, name="conv2", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fewer_than_three_rows_raise(backend):
    with pytest.raises(ValueError, match="at least 3 images, got 2"):
        rsa.rdm(random_activations(n=2), backend=backend)
    with pytest.raises(ValueError, match="at least 3 categories, got 2"):
        rsa.rdm(random_activations(n=10), labels=[0, 1] * 5, level="category", backend=backend)


def test_unknown_choices_raise():
    with pytest.raises(ValueError, match="metric must be one of"):
        rsa.rdm(random_activations(), metric="manhattan")
    with pytest.raises(ValueError, match="backend must be one of"):
        rsa.rdm(random_activations(), backend="jax")
    with pytest.raises(ValueError, match="method must be one of"):
        rsa.compare(np.arange(3.0), np.arange(3.0), method="distance")


def test_compare_rejects_different_sizes_naming_both():
    teacher = rsa.rdm(random_activations(n=10), name="teacher_block2")
    student = rsa.rdm(random_activations(n=12), name="student_conv1")
    with pytest.raises(ValueError, match=r"'teacher_block2'\) has n=10.*'student_conv1'\) has n=12"):
        rsa.compare(teacher, student)


def test_compare_rejects_bad_upper_triangles():
    with pytest.raises(ValueError, match="not n·"):
        rsa.compare(np.arange(4.0), np.arange(4.0))
    with pytest.raises(ValueError, match="at least 3"):
        rsa.compare(np.arange(1.0), np.arange(1.0))
    with pytest.raises(ValueError, match="rdm_b contains NaN"):
        rsa.compare(np.arange(6.0), np.array([1, 2, np.nan, 4, 5, 6]))


def rdm_pairs():
    """(a, b) upper triangles: random, RDMs of related layers, and heavily tied values."""
    rng = np.random.default_rng(5)
    first = random_activations(seed=6, n=30)
    second = np.tanh(first @ rng.standard_normal((24, 16)).astype(np.float32))
    return {
        "random": (rng.random(190), rng.random(190)),
        "layers": (rsa.rdm(first).values, rsa.rdm(second).values),
        "ties": (rng.integers(0, 4, 190).astype(np.float64), rng.integers(0, 3, 190).astype(np.float64)),
    }


@pytest.mark.parametrize("kind", ["random", "layers", "ties"])
def test_compare_equals_scipy(kind):
    a, b = rdm_pairs()[kind]
    assert rsa.compare(a, b) == pytest.approx(scipy.stats.pearsonr(a, b).statistic, abs=1e-5)
    assert rsa.compare(a, b, "spearman") == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-5)


def test_kendall_is_scipy_tau_b_without_ties():
    a, b = rdm_pairs()["layers"]
    assert len(np.unique(a)) == len(a) and len(np.unique(b)) == len(b)
    assert rsa.compare(a, b, "kendall") == pytest.approx(scipy.stats.kendalltau(a, b).statistic, abs=1e-5)


def brute_force_tau_a(a, b):
    pairs = list(itertools.combinations(range(len(a)), 2))
    return sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i, j in pairs) / len(pairs)


def test_kendall_tau_a_with_ties_equals_brute_force():
    a, b = rdm_pairs()["ties"]
    tau_a = rsa.compare(a, b, "kendall")
    assert tau_a == pytest.approx(brute_force_tau_a(a, b), abs=1e-12)
    assert abs(tau_a) < abs(scipy.stats.kendalltau(a, b).statistic)  # ties shrink τ_a, not τ_b


def test_compare_of_an_rdm_with_itself_is_one():
    values = rsa.rdm(random_activations()).values
    for method in rsa.COMPARE_METHODS:
        assert rsa.compare(values, values, method) == pytest.approx(1.0, abs=1e-12)


def test_reference_rdms_equal_float64_scipy_on_large_random_layers():
    # 600 images: 179,700 pairs, so Pearson's r runs over two chunks. Teachers in float64 (pdist), as a
    # stored teacher file's float32 RDMs, and the student layer from the float32 path end to end.
    rng = np.random.default_rng(11)
    hidden = rng.standard_normal((600, 20))
    layers = [np.maximum(hidden @ rng.standard_normal((20, width)), 0.0) for width in (300, 500)]
    teachers = {f"T{position}": pdist(layer, "correlation") for position, layer in enumerate(layers)}
    student = np.maximum(hidden @ rng.standard_normal((20, 700)) + rng.standard_normal((600, 700)), 0.0)
    expected_student = pdist(student, "correlation")
    expected = {
        name: scipy.stats.pearsonr(values, expected_student).statistic for name, values in teachers.items()
    }
    assert 0.2 < min(expected.values()) < max(expected.values()) < 0.99

    student_rdm = rsa.rdm(student.astype(np.float32))
    for teacher_values in (teachers, {name: values.astype(np.float32) for name, values in teachers.items()}):
        similarities = rsa.ReferenceRDMs(teacher_values).compare(student_rdm)
        assert list(similarities) == ["T0", "T1"]
        for name, similarity in similarities.items():
            assert similarity == pytest.approx(expected[name], abs=1e-6)
            assert similarity == pytest.approx(rsa.compare(teacher_values[name], student_rdm), abs=1e-12)


@pytest.mark.parametrize("method", rsa.COMPARE_METHODS)
def test_reference_rdms_give_what_compare_gives(method):
    a, b = rdm_pairs()["layers"]
    ties = np.random.default_rng(8).integers(0, 4, len(b)).astype(np.float64)
    references = rsa.ReferenceRDMs({"a": a, "ties": ties}, method=method)
    assert references.names == ["a", "ties"]
    similarities = references.compare(b)
    assert similarities["a"] == pytest.approx(rsa.compare(a, b, method), abs=1e-12)
    assert similarities["ties"] == pytest.approx(rsa.compare(ties, b, method), abs=1e-12)
    assert similarities["a"] > 0.2


def test_reference_rdms_name_constant_and_mismatched_rdms():
    teacher = rsa.rdm(random_activations(n=10), name="teacher_block2")
    with pytest.warns(rsa.ConstantRepresentationWarning):
        constant = rsa.rdm(np.ones((10, 8), dtype=np.float32), name="dead_layer")
    references = rsa.ReferenceRDMs({"block2": teacher, "flat": constant})
    with pytest.warns(rsa.ConstantRepresentationWarning, match="reference 'flat'.*'dead_layer'.*is constant"):
        similarities = references.compare(rsa.rdm(random_activations(seed=4, n=10)))
    assert similarities["flat"] == 0.0 and similarities["block2"] != 0.0
    with pytest.raises(ValueError, match=r"'teacher_block2'\) has n=10.*'student_conv1'\) has n=12"):
        references.compare(rsa.rdm(random_activations(n=12), name="student_conv1"))
    with pytest.raises(ValueError, match="rdm contains NaN"):
        references.compare(np.where(np.arange(45) == 3, np.nan, 1.0))
    with pytest.raises(ValueError, match="at least one"):
        rsa.ReferenceRDMs({})
    with pytest.raises(ValueError, match="method must be one of"):
        rsa.ReferenceRDMs({"block2": teacher}, method="distance")


def reference_cka(x, y):
    x = x.reshape(len(x), -1).astype(np.float64)
    y = y.reshape(len(y), -1).astype(np.float64)
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


@pytest.mark.parametrize("n", [12, 200])  # fewer images than features (image space), and more
def test_linear_cka_equals_the_feature_space_formula(n):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((n, 3, 3, 2)).astype(np.float32)
    y = np.maximum(x.reshape(n, -1) @ rng.standard_normal((18, 10)), 0).astype(np.float32)
    assert rsa.linear_cka(x, y) == pytest.approx(reference_cka(x, y), abs=1e-5)


def test_linear_cka_is_invariant_to_rotation_scale_and_offset():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((50, 8))
    rotation = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    assert rsa.linear_cka(x, 3.0 * x @ rotation + 7.0) == pytest.approx(1.0, abs=1e-5)


def test_linear_cka_edge_cases():
    x = random_activations(n=10)
    with pytest.warns(rsa.ConstantRepresentationWarning, match="acts_b"):
        assert rsa.linear_cka(x, np.ones((10, 4))) == 0.0
    with pytest.raises(ValueError, match="acts_a has 10, acts_b has 9"):
        rsa.linear_cka(x, x[:9])
    with pytest.raises(ValueError, match="acts_b contains NaN"):
        rsa.linear_cka(x, np.where(x > 2, np.nan, x))
    with pytest.raises(ValueError, match="at least 3 images"):
        rsa.linear_cka(x[:2], x[:2])


def test_public_names():
    assert keras_sage.rdm is rsa.rdm and keras_sage.RDM is rsa.RDM
    assert keras_sage.compare is rsa.compare and keras_sage.linear_cka is rsa.linear_cka
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        teacher, student = rsa.rdm(random_activations(seed=1)), rsa.rdm(random_activations(seed=2))
        assert -1.0 <= keras_sage.compare(teacher, student) <= 1.0
