"""Cross-validated RDMs (cross-validated Euclidean, crossnobis) and the rsatoolbox interop.

Brute force: the leave-one-repeat-out sum over folds and pairs, written out. rsatoolbox: its
`calc_rdm(method="crossnobis")` (slow, skipped without rsatoolbox).
"""

import builtins
import itertools

import numpy as np
import pytest

from keras_sage import rsa


def recordings(seed=0, n_images=9, n_sites=6, n_repeats=4, noise=1.0):
    """(images, sites, repeats): a true pattern per image plus independent noise per repeat."""
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((n_images, n_sites))
    return truth, truth[:, :, None] + noise * rng.standard_normal((n_images, n_sites, n_repeats))


def brute_force_crossvalidated(responses, precision=None):
    n_images, n_sites, n_repeats = responses.shape
    weights = np.eye(n_sites) if precision is None else np.asarray(precision, dtype=np.float64)
    if weights.ndim == 1:
        weights = np.diag(weights)
    distances = []
    for i, j in itertools.combinations(range(n_images), 2):
        total = 0.0
        for k in range(n_repeats):
            others = [r for r in range(n_repeats) if r != k]
            train = responses[i][:, others].mean(axis=1) - responses[j][:, others].mean(axis=1)
            test = responses[i][:, k] - responses[j][:, k]
            total += train @ weights @ test
        distances.append(total / (n_repeats * n_sites))
    return np.array(distances)


@pytest.mark.parametrize("n_repeats", [2, 3, 5])
def test_crossvalidated_euclidean_equals_brute_force(n_repeats):
    _, responses = recordings(n_repeats=n_repeats)
    result = rsa.crossvalidated_rdm(responses, name="IT")
    assert result.metric == "cv-euclidean" and result.n == 9 and result.n_features == 6
    np.testing.assert_allclose(result.values, brute_force_crossvalidated(responses), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("diagonal", [False, True])
def test_crossnobis_equals_brute_force(diagonal):
    _, responses = recordings(seed=1)
    rng = np.random.default_rng(2)
    if diagonal:
        precision = rng.random(6) + 0.5
    else:
        covariance = np.cov(rng.standard_normal((6, 30)))
        precision = np.linalg.inv(covariance)
    result = rsa.crossvalidated_rdm(responses, precision=precision)
    assert result.metric == "crossnobis"
    expected = brute_force_crossvalidated(responses, precision)
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-5)


def test_crossvalidated_distance_is_unbiased_where_the_plain_one_is_not():
    # Every image has the same true pattern: the true distances are all 0. Averaged over many
    # simulations, the cross-validated distance is 0 and the squared Euclidean one is 2σ²·(1/R) per site.
    rng = np.random.default_rng(3)
    n_repeats, sigma = 4, 1.0
    cross, plain = [], []
    for _ in range(300):
        responses = 2.0 + sigma * rng.standard_normal((5, 20, n_repeats))
        cross.append(rsa.crossvalidated_rdm(responses).values.mean())
        means = responses.mean(axis=2)
        plain.append(
            np.mean([np.mean((means[i] - means[j]) ** 2) for i, j in itertools.combinations(range(5), 2)])
        )
    assert abs(np.mean(cross)) < 0.01
    assert np.mean(plain) == pytest.approx(2 * sigma**2 / n_repeats, rel=0.05)
    assert min(np.min(rsa.crossvalidated_rdm(2.0 + rng.standard_normal((5, 20, 4))).values), 0.0) < 0.0


def test_crossvalidated_rdm_recovers_the_true_squared_distances():
    truth, responses = recordings(seed=4, n_images=6, n_sites=400, n_repeats=6, noise=0.5)
    expected = [np.mean((truth[i] - truth[j]) ** 2) for i, j in itertools.combinations(range(6), 2)]
    np.testing.assert_allclose(rsa.crossvalidated_rdm(responses).values, expected, rtol=0.1)


def test_category_level_averages_images_within_each_repeat():
    _, responses = recordings(seed=5, n_images=12)
    labels = np.arange(12) % 4
    result = rsa.crossvalidated_rdm(responses, labels=labels, level="category")
    category_means = np.stack([responses[labels == c].mean(axis=0) for c in range(4)])
    np.testing.assert_array_equal(result.categories, np.arange(4))
    np.testing.assert_allclose(
        result.values, brute_force_crossvalidated(category_means), rtol=1e-5, atol=1e-6
    )


def test_crossvalidated_rdm_rejects_bad_input_naming_the_region():
    _, responses = recordings()
    with pytest.raises(ValueError, match=r"'V4'.*at least 2 repeats; got 1"):
        rsa.crossvalidated_rdm(responses[:, :, :1], name="V4")
    with pytest.raises(ValueError, match=r"'V4'.*shape \(n_images, n_sites, n_repeats\)"):
        rsa.crossvalidated_rdm(responses[:, :, 0], name="V4")
    missing = responses.copy()
    missing[2, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"'V4'.*NaN or inf"):
        rsa.crossvalidated_rdm(missing, name="V4")
    with pytest.raises(ValueError, match=r"'V4'.*real numbers"):
        rsa.crossvalidated_rdm(responses.astype(np.complex128), name="V4")
    with pytest.raises(ValueError, match=r"'V4'.*precision must have shape \(6,\) or \(6, 6\)"):
        rsa.crossvalidated_rdm(responses, precision=np.eye(5), name="V4")
    with pytest.raises(ValueError, match="at least 3 images, got 2"):
        rsa.crossvalidated_rdm(responses[:2])
    with pytest.raises(ValueError, match="needs labels"):
        rsa.crossvalidated_rdm(responses, level="category")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["identity", "full"])
def test_crossvalidated_rdm_equals_rsatoolbox(precision):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    differences = []
    for seed in range(4):
        _, responses = recordings(seed=seed, n_images=10, n_sites=8, n_repeats=3 + seed)
        n_images, _, n_repeats = responses.shape
        noise = None
        if precision == "full":
            noise = np.linalg.inv(np.cov(np.random.default_rng(seed).standard_normal((8, 40))))
        dataset = rsatoolbox.data.Dataset(
            np.concatenate([responses[:, :, k] for k in range(n_repeats)]),
            obs_descriptors={
                "image": np.tile(np.arange(n_images), n_repeats),
                "repeat": np.repeat(np.arange(n_repeats), n_images),
            },
        )
        with np.errstate(invalid="ignore"):  # rsatoolbox casts a NaN fill value internally
            theirs = rsatoolbox.rdm.calc_rdm(
                dataset, method="crossnobis", descriptor="image", cv_descriptor="repeat", noise=noise
            )
        ours = rsa.crossvalidated_rdm(responses, precision=noise)
        differences.append(np.max(np.abs(theirs.get_vectors()[0] - ours.values)))
    assert max(differences) < 1e-6  # keras-sage RDMs are float32


def teacher_like_rdms():
    rng = np.random.default_rng(6)
    activations = rng.standard_normal((10, 16)).astype(np.float32)
    return {
        "V4": rsa.rdm(activations, name="V4"),
        "IT": rsa.rdm(activations[:, :8], max_features=5, seed=3, name="IT"),
    }


def test_to_and_from_rsatoolbox_keep_the_values():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rdms = teacher_like_rdms()
    converted = rsa.to_rsatoolbox(rdms)
    assert isinstance(converted, rsatoolbox.rdm.RDMs) and converted.n_rdm == 2 and converted.n_cond == 10
    assert converted.dissimilarity_measure == "correlation"
    for position, rdm in enumerate(rdms.values()):
        np.testing.assert_array_equal(converted.get_vectors()[position], rdm.values)
        np.testing.assert_array_equal(converted.get_matrices()[position], rdm.square())
    back = rsa.from_rsatoolbox(converted)
    assert list(back) == ["V4", "IT"]
    for name, rdm in rdms.items():
        np.testing.assert_array_equal(back[name].values, rdm.values)
        assert (back[name].n_features, back[name].n_features_used, back[name].seed) == (
            rdm.n_features,
            rdm.n_features_used,
            rdm.seed,
        )
        assert back[name].metric == "correlation" and back[name].level == "image"


def test_category_rdms_round_trip_through_rsatoolbox():
    pytest.importorskip("rsatoolbox")
    activations = np.random.default_rng(7).standard_normal((12, 5))
    category_rdm = rsa.rdm(activations, labels=np.arange(12) % 4 + 10, level="category", name="pIT")
    back = rsa.from_rsatoolbox(rsa.to_rsatoolbox(category_rdm))["pIT"]
    assert back.level == "category"
    np.testing.assert_array_equal(back.categories, [10, 11, 12, 13])
    np.testing.assert_array_equal(back.values, category_rdm.values)


def test_rsatoolbox_computed_rdms_convert_with_their_values():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    data = np.random.default_rng(8).standard_normal((7, 4))
    theirs = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(data), method="correlation")
    ours = rsa.from_rsatoolbox(theirs)
    assert list(ours) == ["0"]
    np.testing.assert_allclose(ours["0"].values, rsa.rdm(data).values, atol=1e-6)
    assert ours["0"].n_features == 0  # rsatoolbox does not record it


def test_interop_rejects_what_it_cannot_convert():
    pytest.importorskip("rsatoolbox")
    rdms = teacher_like_rdms()
    smaller = rsa.rdm(np.random.default_rng(9).standard_normal((8, 3)), name="small")
    with pytest.raises(ValueError, match=r"different numbers of rows in one .*'V4' has 10, 'small' has 8"):
        rsa.to_rsatoolbox({"V4": rdms["V4"], "small": smaller})
    with pytest.raises(ValueError, match="at least one"):
        rsa.to_rsatoolbox({})
    with pytest.raises(TypeError, match=r"expects an rsatoolbox\.rdm\.RDMs, got dict"):
        rsa.from_rsatoolbox(rdms)


def test_interop_without_rsatoolbox_says_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_rsatoolbox(name, *args, **kwargs):
        if name == "rsatoolbox" or name.startswith("rsatoolbox."):
            raise ImportError("No module named 'rsatoolbox'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rsatoolbox)
    with pytest.raises(ImportError, match=r"keras-sage\[neuro\]"):
        rsa.to_rsatoolbox(teacher_like_rdms()["V4"])
