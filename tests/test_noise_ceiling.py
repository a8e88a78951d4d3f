"""Noise ceilings of recorded regions: split-half reliability, rsatoolbox's lower/upper bounds, storage."""

import itertools
import warnings

import h5py
import numpy as np
import pytest
import scipy.stats

from keras_sage import rsa
from keras_sage.teachers import TeacherFileError, TeacherStore, register_recordings

N_IMAGES = 12


def simulated_region(seed=0, n_images=N_IMAGES, n_sites=20, n_repeats=4, noise=1.0):
    """(true patterns, responses (images, sites, repeats)): the truth plus independent noise per repeat."""
    rng = np.random.default_rng(seed)
    truth = rng.standard_normal((n_images, n_sites))
    return truth, truth[:, :, None] + noise * rng.standard_normal((n_images, n_sites, n_repeats))


def brute_force_split_half(responses, splits, stretch):
    """Pearson's r of the correlation RDMs of the two halves' means, Spearman–Brown corrected."""
    corrected = []
    for first, second in splits:
        rdms = [rsa.rdm(responses[:, :, list(half)].mean(axis=2)).values for half in (first, second)]
        r = scipy.stats.pearsonr(rdms[0], rdms[1]).statistic
        corrected.append(stretch * r / (1 + (stretch - 1) * r))
    return np.array(corrected)


def test_split_half_reliability_over_every_split_equals_brute_force():
    _, responses = simulated_region(n_repeats=4, noise=0.8)
    ceiling = rsa.noise_ceiling(responses, n_splits=10)
    # Four repeats split into two pairs in exactly three ways.
    splits = [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    expected = brute_force_split_half(responses, splits, stretch=2)
    np.testing.assert_allclose(np.sort(ceiling.split_reliabilities), np.sort(expected), atol=1e-5)
    assert ceiling.reliability == pytest.approx(expected.mean(), abs=1e-5)
    assert ceiling.reliability_std == pytest.approx(expected.std(), abs=1e-5)
    assert ceiling.ceiling == pytest.approx(np.sqrt(expected.mean()), abs=1e-5)
    assert (ceiling.method, ceiling.n_repeats) == ("pearson", 4)


def test_odd_repeats_use_halves_of_floor_r_over_2_and_stretch_to_all_repeats():
    _, responses = simulated_region(n_repeats=3, noise=0.8)
    ceiling = rsa.noise_ceiling(responses)
    splits = [((a,), (b,)) for a, b in itertools.combinations(range(3), 2)]
    expected = brute_force_split_half(responses, splits, stretch=3)  # one repeat per half, R = 3
    np.testing.assert_allclose(np.sort(ceiling.split_reliabilities), np.sort(expected), atol=1e-5)


def test_random_splits_are_distinct_and_seeded():
    _, responses = simulated_region(n_repeats=8, noise=2.0)
    first = rsa.noise_ceiling(responses, n_splits=6, seed=1)
    again = rsa.noise_ceiling(responses, n_splits=6, seed=1)
    other = rsa.noise_ceiling(responses, n_splits=6, seed=2)
    assert len(first.split_reliabilities) == 6 and len(np.unique(first.split_reliabilities)) == 6
    np.testing.assert_array_equal(first.split_reliabilities, again.split_reliabilities)
    assert not np.array_equal(first.split_reliabilities, other.split_reliabilities)


def brute_force_lower_upper(responses):
    """rsatoolbox's bounds with each repeat a measurement, for Pearson's r (RDMs z-scored, then averaged)."""
    vectors = [rsa.rdm(responses[:, :, k]).values.astype(np.float64) for k in range(responses.shape[2])]
    z = [(v - v.mean()) / v.std() for v in vectors]
    lower = [
        scipy.stats.pearsonr(np.mean(z[:k] + z[k + 1 :], axis=0), v).statistic for k, v in enumerate(vectors)
    ]
    upper = [scipy.stats.pearsonr(np.mean(z, axis=0), v).statistic for v in vectors]
    return np.mean(lower), np.mean(upper)


def test_lower_and_upper_bounds_equal_brute_force():
    _, responses = simulated_region(n_repeats=5, noise=1.5)
    ceiling = rsa.noise_ceiling(responses)
    lower, upper = brute_force_lower_upper(responses)
    assert ceiling.lower == pytest.approx(lower, abs=1e-6)
    assert ceiling.upper == pytest.approx(upper, abs=1e-6)
    assert ceiling.lower < ceiling.upper


def test_a_perfect_model_normalises_to_about_one():
    # The true patterns' RDM against the recorded one, over 25 simulated recordings, divided by the ceiling.
    rng = np.random.default_rng(3)
    normalised = []
    for seed in range(25):
        truth = rng.standard_normal((30, 40))
        responses = truth[:, :, None] + 0.8 * rng.standard_normal((30, 40, 4))
        similarity = rsa.compare(rsa.rdm(truth), rsa.rdm(responses.mean(axis=2)))
        ceiling = rsa.noise_ceiling(responses, seed=seed)
        assert 0.5 < ceiling.ceiling < 0.99
        normalised.append(rsa.normalised_similarities({"IT": similarity}, {"IT": ceiling})["IT"])
    assert np.mean(normalised) == pytest.approx(1.0, abs=0.05)


def test_noisier_recordings_have_lower_ceilings():
    ceilings = [rsa.noise_ceiling(simulated_region(noise=noise)[1]).ceiling for noise in (0.3, 1.0, 3.0)]
    assert ceilings[0] > ceilings[1] > ceilings[2]


def test_missing_repeats_skip_splits_and_leave_the_bounds_undefined():
    _, responses = simulated_region(n_repeats=4)
    responses[2, 3, [0, 1]] = np.nan  # image 2, site 3: only repeats 2 and 3 recorded
    ceiling = rsa.noise_ceiling(responses)
    # The split {0, 1} / {2, 3} has a half without the cell; the other two are used.
    expected = brute_force_split_half_with_nan(responses, [((0, 2), (1, 3)), ((0, 3), (1, 2))])
    np.testing.assert_allclose(np.sort(ceiling.split_reliabilities), np.sort(expected), atol=1e-5)
    assert np.isnan(ceiling.lower) and np.isnan(ceiling.upper)


def brute_force_split_half_with_nan(responses, splits):
    corrected = []
    for first, second in splits:
        rdms = [rsa.rdm(np.nanmean(responses[:, :, list(half)], axis=2)).values for half in (first, second)]
        r = scipy.stats.pearsonr(rdms[0], rdms[1]).statistic
        corrected.append(2 * r / (1 + r))
    return np.array(corrected)


def test_noise_ceiling_errors():
    _, responses = simulated_region()
    with pytest.raises(rsa.NoiseCeilingError, match=r"region 'V4'.*at least 2 repeats; got 1"):
        rsa.noise_ceiling(responses[:, :, :1], name="V4")
    with pytest.raises(ValueError, match=r"shape \(n_images, n_sites, n_repeats\)"):
        rsa.noise_ceiling(responses[:, :, 0], name="V4")
    with pytest.raises(ValueError, match="method must be one of"):
        rsa.noise_ceiling(responses, method="distance")
    lonely = responses[:, :, :2].copy()
    lonely[0, 0, 0] = np.nan
    with pytest.raises(rsa.NoiseCeilingError, match=r"region 'V4'.*no split"):
        rsa.noise_ceiling(lonely, name="V4")


def test_normalised_similarities():
    ceilings = {
        "V4": rsa.NoiseCeiling(0.64, 0.02, np.array([0.62, 0.66]), 0.3, 0.5, "pearson", 4),
        "IT": rsa.NoiseCeiling(-0.1, 0.02, np.array([-0.1]), 0.0, 0.1, "pearson", 2),
    }
    normalised = rsa.normalised_similarities({"conv1": 0.5, "V4": 0.4, "IT": 0.2}, ceilings, method="pearson")
    assert normalised == {"V4": pytest.approx(0.4 / 0.8)}  # no ceiling for conv1, none above 0 for IT
    with pytest.raises(ValueError, match=r"'V4' was computed with method 'pearson'.*'spearman'"):
        rsa.normalised_similarities({"V4": 0.4}, ceilings, method="spearman")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pearson", "spearman", "rho-a", "corr_cov", "cosine_cov"])
def test_lower_and_upper_bounds_equal_rsatoolbox(method):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    names = {"pearson": "corr"}
    differences = []
    for seed, noise in itertools.product(range(3), (0.5, 2.0)):
        _, responses = simulated_region(seed=seed, n_repeats=3 + seed, noise=noise)
        ceiling = rsa.noise_ceiling(responses, method=method)
        per_repeat = np.stack([rsa.rdm(responses[:, :, k]).values for k in range(responses.shape[2])])
        rdms = rsatoolbox.rdm.RDMs(
            per_repeat.astype(np.float64), rdm_descriptors={"repeat": list(range(len(per_repeat)))}
        )
        lower, upper = rsatoolbox.inference.boot_noise_ceiling(
            rdms, method=names.get(method, method), rdm_descriptor="repeat"
        )
        differences += [abs(ceiling.lower - lower), abs(ceiling.upper - upper)]
    assert max(differences) < 1e-10


# Registration.


def probe_images(n_images=N_IMAGES):
    return np.random.default_rng(0).integers(0, 256, size=(n_images, 8, 8, 1), dtype=np.uint8)


def test_register_recordings_stores_the_ceilings_next_to_the_rdms(tmp_path):
    _, v4 = simulated_region(seed=1, noise=0.5)
    _, it = simulated_region(seed=2, noise=0.7, n_repeats=5)
    path = tmp_path / "monkey.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("error", rsa.NoiseCeilingWarning)
        store = register_recordings(
            {"V4": v4, "IT": it}, probe_images(), path=path, ceiling_method="spearman"
        )
    reopened = TeacherStore.open(path)
    for name, responses in (("V4", v4), ("IT", it)):
        expected = rsa.noise_ceiling(responses, method="spearman", name=name)
        for stored in (store.noise_ceiling(name), reopened.noise_ceiling(name)):
            assert stored is not None
            assert (stored.reliability, stored.reliability_std, stored.lower, stored.upper) == (
                expected.reliability,
                expected.reliability_std,
                expected.lower,
                expected.upper,
            )
            np.testing.assert_array_equal(stored.split_reliabilities, expected.split_reliabilities)
            assert (stored.method, stored.n_repeats) == ("spearman", responses.shape[2])
    assert list(reopened.noise_ceilings()) == ["V4", "IT"]
    with h5py.File(path, "r") as file:
        assert file["rdms/IT"].attrs["reliability"] == expected.reliability
        assert file["rdms/IT"].attrs["noise_ceiling_method"] == "spearman"


def test_ceilings_survive_adding_rdms_and_files_without_them_still_open(tmp_path):
    path = tmp_path / "monkey.h5"
    store = TeacherStore.create(path, probe_images())
    store.add_rdm("conv1", rsa.rdm(np.random.default_rng(3).standard_normal((N_IMAGES, 5))))
    assert TeacherStore.open(path).noise_ceilings() == {}  # what every older file looks like
    assert TeacherStore.open(path).noise_ceiling("conv1") is None
    _, v4 = simulated_region(seed=1, noise=0.5)
    register_recordings({"V4": v4}, probe_images(), path=path)
    store = TeacherStore.open(path, writable=True)
    store.add_rdm("conv2", rsa.rdm(np.random.default_rng(4).standard_normal((N_IMAGES, 5))))
    assert list(TeacherStore.open(path).noise_ceilings()) == ["V4"]


def test_a_partial_ceiling_is_a_teacher_file_error(tmp_path):
    path = tmp_path / "monkey.h5"
    register_recordings({"V4": simulated_region(noise=0.5)[1]}, probe_images(), path=path)
    with h5py.File(path, "a") as file:
        del file["rdms/V4"].attrs["noise_ceiling_upper"]
    with pytest.raises(
        TeacherFileError, match=r"/rdms/V4 has a noise ceiling without attribute.*noise_ceiling_upper"
    ):
        TeacherStore.open(path)


def test_low_ceiling_and_missing_repeats_are_warned_about_naming_the_region(tmp_path):
    # 40 images: with few images the split-half estimate of pure noise can reach a ceiling of 0.35.
    _, noisy = simulated_region(n_images=40, noise=20.0)
    _, clean = simulated_region(seed=5, n_images=40, noise=0.3)
    responses = {"pIT": noisy, "aIT": clean[:, :, :1], "V4": clean[:, :, 0], "IT": clean}
    with pytest.warns(rsa.NoiseCeilingWarning) as caught:
        store = register_recordings(responses, probe_images(40), path=tmp_path / "monkey.h5")
    messages = [str(warning.message) for warning in caught if warning.category is rsa.NoiseCeilingWarning]
    assert len(messages) == 3
    assert any(
        "region 'pIT': its noise ceiling is" in message and "below 0.3" in message for message in messages
    )
    assert any("region 'aIT'" in message and "a single repeat" in message for message in messages)
    assert any("region 'V4'" in message and "no repeats axis" in message for message in messages)
    assert list(store.noise_ceilings()) == ["pIT", "IT"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", rsa.NoiseCeilingWarning)
        register_recordings({"pIT": noisy}, probe_images(40), path=tmp_path / "other.h5", min_ceiling=None)
