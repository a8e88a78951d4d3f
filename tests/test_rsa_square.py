"""Square RDMs (scipy's `squareform`, rsatoolbox's matrices) in `compare` and `ReferenceRDMs`.

A symmetric, zero-diagonal square RDM is compared through its upper triangle; the references here are
scipy's (pdist, squareform, pearsonr, spearmanr, kendalltau) and the whitened methods written out on the
full matrices.
"""

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import pdist, squareform

from keras_sage import rsa

N_IMAGES = 9


def condensed_pair(seed=0):
    """Upper triangles of two related RDMs over the same images, as scipy's pdist returns them."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(N_IMAGES, 6))
    other = features + rng.normal(scale=0.8, size=features.shape)
    return pdist(features, "euclidean"), pdist(other, "correlation")


def whitened_by_hand(square_a, square_b, method):
    """cosine_cov / corr_cov on full matrices: the cosine of the double-centred (mean-removed) RDMs."""

    def centred(square):
        if method == "corr_cov":
            upper = squareform(square, checks=False)
            square = squareform(upper - upper.mean())
        centring = np.eye(len(square)) - 1 / len(square)
        return centring @ square @ centring

    a, b = centred(square_a), centred(square_b)
    return float(np.vdot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def scipy_reference(a, b, method):
    if method == "pearson":
        return scipy.stats.pearsonr(a, b).statistic
    if method in ("spearman", "rho-a"):  # rho-a is Spearman's rho when nothing is tied, as here
        return scipy.stats.spearmanr(a, b).statistic
    if method == "kendall":  # tau-a is tau-b when nothing is tied, as here
        return scipy.stats.kendalltau(a, b).statistic
    return whitened_by_hand(squareform(a), squareform(b), method)


@pytest.mark.parametrize("method", rsa.COMPARE_METHODS)
def test_square_rdms_compare_as_their_upper_triangles(method):
    a, b = condensed_pair()
    assert len(np.unique(a)) == len(a) and len(np.unique(b)) == len(b)  # no ties: the references hold
    square_a, square_b = squareform(a), squareform(b)
    from_triangles = rsa.compare(a, b, method)
    assert rsa.compare(square_a, square_b, method) == from_triangles
    assert rsa.compare(square_a, b, method) == from_triangles
    assert rsa.compare(a, square_b.astype(np.float32), method) == pytest.approx(from_triangles, abs=1e-6)
    assert from_triangles == pytest.approx(scipy_reference(a, b, method), abs=1e-12)


def test_an_asymmetric_square_is_refused_with_its_largest_asymmetry():
    a, b = condensed_pair()
    square = squareform(a)
    square[1, 4] += 0.5
    with pytest.raises(
        ValueError, match=r"^rdm_a is a square matrix but not symmetric: .* is 0\.5 "
    ) as error:
        rsa.compare(square, b)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"^rdm is a square matrix but not symmetric"):
        rsa.ReferenceRDMs({"IT": b}).compare(square)


def test_a_square_with_a_nonzero_diagonal_is_refused_with_its_largest_diagonal_entry():
    a, b = condensed_pair()
    square = squareform(b)
    square[3, 3] = -0.25
    with pytest.raises(ValueError, match=r"^rdm_b is a square matrix with a non-zero diagonal: .* is 0\.25 "):
        rsa.compare(a, square)
    with pytest.raises(ValueError, match=r"^reference 'V4' is a square matrix with a non-zero diagonal"):
        rsa.ReferenceRDMs({"V4": square})


def test_the_tolerance_is_relative_to_the_largest_entry():
    a, b = condensed_pair()
    scale = 1000.0
    square = squareform(a * scale)
    largest = np.max(square)
    square[0, 1] += 1e-6 * largest  # within 1e-5 of the largest entry
    square[2, 2] = 1e-6 * largest
    assert rsa.compare(square, b) == rsa.compare(square[np.triu_indices(N_IMAGES, k=1)], b)
    square[0, 1] += 1e-3 * largest
    with pytest.raises(ValueError, match="not symmetric"):
        rsa.compare(square, b)


def test_reference_rdms_accept_square_students_and_references():
    a, b = condensed_pair()
    c = condensed_pair(seed=1)[0]
    for method in ("pearson", "spearman", "cosine_cov"):
        references = rsa.ReferenceRDMs({"V4": a, "IT": squareform(c)}, method=method)
        by_triangle = references.compare(b)
        assert references.compare(squareform(b)) == by_triangle
        assert by_triangle == {"V4": rsa.compare(a, b, method), "IT": rsa.compare(c, b, method)}


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (
            np.zeros((4, 5)),
            r"must be an RDM, a 1-D upper triangle or a square \(n, n\) RDM; got shape \(4, 5\)",
        ),
        (np.zeros((2, 3, 3)), r"got shape \(2, 3, 3\)"),
        (np.zeros((2, 2)), "compares n=2 rows; an RDM needs at least 3"),
        (squareform(np.arange(1.0, 37.0)) * np.where(np.eye(9), np.nan, 1), "contains NaN or inf"),
    ],
)
def test_other_matrices_are_refused_naming_the_parameter(matrix, message):
    with pytest.raises(ValueError, match=message):
        rsa.compare(matrix, condensed_pair()[1])
