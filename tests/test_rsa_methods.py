"""The comparisons rsatoolbox recommends (rho-a, corr_cov, cosine_cov) and CKA from Gram matrices.

Fast tests check each against a brute-force formula written out here; the slow ones check each against
rsatoolbox itself on random data (skipped when rsatoolbox, the `neuro` extra, is not installed).
"""

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist, squareform

from keras_sage import rsa

NEW_METHODS = ("rho-a", "corr_cov", "cosine_cov")
# keras-sage's method name → rsatoolbox's.
RSATOOLBOX_NAMES = {
    "pearson": "corr",
    "spearman": "spearman",
    "kendall": "tau-a",
    "rho-a": "rho-a",
    "corr_cov": "corr_cov",
    "cosine_cov": "cosine_cov",
}


def triangles(seed=0, n=20):
    """(a, b) upper triangles of related n×n RDMs: continuous values, and heavily tied ones."""
    rng = np.random.default_rng(seed)
    a = rng.random(n * (n - 1) // 2)
    b = a + rng.random(len(a))
    return {
        "continuous": (a, b),
        "ties": (np.floor(4 * a), b),  # a categorical model: four levels
        "both_tied": (np.floor(3 * a), np.floor(2.5 * b)),
    }


def brute_force_average_ranks(values):
    """Rank 1 for the smallest value; tied values share the mean of the ranks they span."""
    return np.array(
        [np.sum(values < value) + (np.sum(values == value) + 1) / 2 for value in values], dtype=np.float64
    )


def brute_force_rho_a(a, b):
    ranks_a, ranks_b = brute_force_average_ranks(a), brute_force_average_ranks(b)
    entries = len(a)
    return 12 * np.sum((ranks_a - ranks_a.mean()) * (ranks_b - ranks_b.mean())) / (entries**3 - entries)


def brute_force_whitened(a, b, subtract_mean):
    """Cosine of −½ H D H (H = I − 11ᵀ/n) with the Frobenius inner product over the whole n×n matrix."""

    def double_centred(values):
        square = squareform(values - values.mean() if subtract_mean else values)  # zero diagonal
        n = len(square)
        h = np.eye(n) - np.ones((n, n)) / n
        return h @ (-0.5 * square) @ h

    g_a, g_b = double_centred(a), double_centred(b)
    return np.sum(g_a * g_b) / np.sqrt(np.sum(g_a * g_a) * np.sum(g_b * g_b))


@pytest.mark.parametrize("kind", ["continuous", "ties", "both_tied"])
def test_rho_a_equals_brute_force(kind):
    a, b = triangles()[kind]
    assert rsa.compare(a, b, "rho-a") == pytest.approx(brute_force_rho_a(a, b), abs=1e-12)


def test_rho_a_is_spearman_without_ties_and_smaller_with_them():
    a, b = triangles()["continuous"]
    assert rsa.compare(a, b, "rho-a") == pytest.approx(scipy.stats.spearmanr(a, b).statistic, abs=1e-12)
    categorical, _ = triangles()["ties"]
    # A tied (categorical) model cannot reach 1 through its ties, even against itself.
    assert rsa.compare(categorical, categorical, "rho-a") < 0.95
    assert rsa.compare(categorical, categorical, "spearman") == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["corr_cov", "cosine_cov"])
@pytest.mark.parametrize("kind", ["continuous", "ties", "both_tied"])
def test_whitened_comparisons_equal_brute_force(method, kind):
    a, b = triangles()[kind]
    expected = brute_force_whitened(a, b, subtract_mean=method == "corr_cov")
    assert rsa.compare(a, b, method) == pytest.approx(expected, abs=1e-12)
    assert abs(expected) > 0.05


def test_whitened_comparisons_over_many_rows_equal_brute_force():
    a, b = triangles(seed=3, n=150)["continuous"]
    for method in ("corr_cov", "cosine_cov"):
        expected = brute_force_whitened(a, b, subtract_mean=method == "corr_cov")
        assert rsa.compare(a, b, method) == pytest.approx(expected, abs=1e-12)


def test_corr_cov_is_invariant_to_affine_maps_and_cosine_cov_to_scale_only():
    a, b = triangles()["continuous"]
    assert rsa.compare(a, 3 * b + 2, "corr_cov") == pytest.approx(rsa.compare(a, b, "corr_cov"), abs=1e-12)
    assert rsa.compare(a, 3 * b, "cosine_cov") == pytest.approx(rsa.compare(a, b, "cosine_cov"), abs=1e-12)
    assert abs(rsa.compare(a, b + 2, "cosine_cov") - rsa.compare(a, b, "cosine_cov")) > 1e-3


def test_cosine_cov_of_squared_euclidean_rdms_is_linear_cka():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((25, 12))
    y = np.tanh(x @ rng.standard_normal((12, 7))) + 0.3 * rng.standard_normal((25, 7))
    cosine_cov = rsa.compare(pdist(x, "sqeuclidean"), pdist(y, "sqeuclidean"), "cosine_cov")
    assert cosine_cov == pytest.approx(rsa.linear_cka(x, y), abs=1e-6)


def test_cosine_cov_of_a_constant_rdm_is_defined_and_of_an_all_zero_rdm_is_zero():
    a, _ = triangles()["continuous"]
    constant = np.full_like(a, 0.7)
    expected = brute_force_whitened(a, constant, subtract_mean=False)
    assert rsa.compare(a, constant, "cosine_cov") == pytest.approx(expected, abs=1e-12)
    with pytest.warns(rsa.ConstantRepresentationWarning, match="rdm_b is all zero"):
        assert rsa.compare(a, np.zeros_like(a), "cosine_cov") == 0.0
    with pytest.warns(rsa.ConstantRepresentationWarning, match="rdm_b is constant"):
        assert rsa.compare(a, constant, "corr_cov") == 0.0
    with pytest.warns(rsa.ConstantRepresentationWarning, match="rdm_b is constant"):
        assert rsa.compare(a, constant, "rho-a") == 0.0


def brute_force_centred_gram(x):
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    return h @ x @ x.T @ h


def test_centred_gram_and_linear_cka_gram():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((15, 2, 3)).astype(np.float32)
    y = np.maximum(x.reshape(15, -1) @ rng.standard_normal((6, 9)), 0).astype(np.float32)
    x_flat = x.reshape(15, -1).astype(np.float64)
    gram = rsa.centred_gram(x)
    np.testing.assert_allclose(gram, brute_force_centred_gram(x_flat), atol=1e-5)
    # −½ H D H of the squared-Euclidean RDM is the centred Gram matrix.
    np.testing.assert_allclose(gram, brute_force_whitened_matrix(pdist(x_flat, "sqeuclidean")), atol=1e-5)
    cka = rsa.linear_cka(x, y)
    assert 0.3 < cka < 0.99
    assert rsa.linear_cka_gram(gram, rsa.centred_gram(y)) == pytest.approx(cka, abs=1e-6)
    y64 = y.astype(np.float64)
    assert rsa.linear_cka_gram(x_flat @ x_flat.T, y64 @ y64.T) == pytest.approx(cka, abs=1e-6)


def brute_force_whitened_matrix(values):
    square = squareform(values)
    n = len(square)
    h = np.eye(n) - np.ones((n, n)) / n
    return h @ (-0.5 * square) @ h


def test_linear_cka_gram_rejects_bad_matrices():
    gram = rsa.centred_gram(np.random.default_rng(6).standard_normal((8, 4)))
    with pytest.raises(ValueError, match="gram_b must be a square"):
        rsa.linear_cka_gram(gram, gram[:, :5])
    with pytest.raises(ValueError, match="gram_a is 8×8, gram_b is 7×7"):
        rsa.linear_cka_gram(gram, gram[:7, :7])
    with pytest.raises(ValueError, match="gram_a contains NaN"):
        rsa.linear_cka_gram(np.where(gram > 1, np.nan, gram), gram)
    with pytest.warns(rsa.ConstantRepresentationWarning, match="gram_b is zero"):
        assert rsa.linear_cka_gram(gram, np.ones((8, 8))) == 0.0


def rsatoolbox_compare(rsatoolbox, a, b, method):
    first, second = rsatoolbox.rdm.RDMs(a[None, :]), rsatoolbox.rdm.RDMs(b[None, :])
    return rsatoolbox.rdm.compare(first, second, method=RSATOOLBOX_NAMES[method])[0, 0]


@pytest.mark.slow
@pytest.mark.parametrize("method", rsa.COMPARE_METHODS)
def test_every_method_equals_rsatoolbox_on_random_rdms(method):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    differences = []
    for seed in range(5):
        for n in (10, 40):
            for a, b in triangles(seed, n).values():
                ours = rsa.compare(a, b, method)
                differences.append(abs(ours - rsatoolbox_compare(rsatoolbox, a, b, method)))
                references = rsa.ReferenceRDMs({"teacher": a}, method=method).compare(b)
                differences.append(abs(references["teacher"] - ours))
    assert max(differences) < 1e-10


@pytest.mark.slow
def test_linear_cka_equals_rsatoolbox_cosine_cov_of_squared_euclidean_rdms():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(7)
    for _ in range(5):
        x = rng.standard_normal((30, 20))
        y = x @ rng.standard_normal((20, 10)) + rng.standard_normal((30, 10))
        rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(data), method="euclidean") for data in (x, y)]
        theirs = rsatoolbox.rdm.compare(rdms[0], rdms[1], method="cosine_cov")[0, 0]
        assert rsa.linear_cka(x, y) == pytest.approx(theirs, abs=1e-6)


def test_gram_from_euclidean_rdm_is_the_centred_gram_matrix():
    x = np.random.default_rng(7).standard_normal((9, 5)) + 3.0
    gram = rsa.gram_from_euclidean_rdm(rsa.rdm(x, metric="euclidean", name="IT"))
    np.testing.assert_allclose(gram, brute_force_centred_gram(x), atol=1e-4)
    with pytest.raises(ValueError, match="RDM 'IT' has metric 'correlation' and level 'image'"):
        rsa.gram_from_euclidean_rdm(rsa.rdm(x, name="IT"))
