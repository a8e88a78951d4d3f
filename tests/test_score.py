"""The one score formula (`combined_score`) and the one set of scoring settings (`ScoringConfig`)."""

import dataclasses
import math

import numpy as np
import pytest

from keras_sage.objective import TeacherGuidedScore, TeacherGuidedScorer
from keras_sage.rsa import rdm
from keras_sage.score import ScoringConfig, combined_score, proxy_term
from keras_sage.teachers import TeacherStore


def test_combined_score_of_numbers_is_p_plus_alpha_tg_plus_each_term():
    assert combined_score(0.41, 0.30, alpha=2.0) == pytest.approx(1.01)
    assert isinstance(combined_score(0.41, 0.30, alpha=2.0), float)
    assert combined_score(0.41, 0.30, 2.0, terms={"synflow": (0.01, 20.0), "params": (-1e-6, 5e5)}) == (
        pytest.approx(0.41 + 0.60 + 0.20 - 0.5)
    )
    assert combined_score(0.5) == pytest.approx(0.5)


def test_combined_score_of_arrays_matches_the_formula_element_by_element():
    rng = np.random.default_rng(0)
    premature, guidance, proxy = rng.random(50), rng.random(50), rng.normal(size=50)
    scores = combined_score(premature, guidance, 0.7, terms={"proxy": (0.3, proxy)})
    expected = [p + 0.7 * g + 0.3 * x for p, g, x in zip(premature, guidance, proxy, strict=True)]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-15)
    assert scores.dtype == np.float64


def test_a_nan_part_gives_a_nan_score_never_a_number():
    scores = combined_score(np.array([0.5, math.nan, 0.5]), np.array([0.1, 0.1, math.nan]), 1.0)
    assert scores[0] == pytest.approx(0.6)
    assert np.isnan(scores[1:]).all()


def test_the_score_of_a_result_is_the_combined_score():
    result = TeacherGuidedScore(premature_accuracy=0.25, teacher_guidance=0.5, alpha=3.0)
    assert result.score == combined_score(0.25, 0.5, 3.0) == pytest.approx(1.75)


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"alpha": -1.0}, ValueError, "alpha must be a finite number of at least 0"),
        ({"alpha": math.inf}, ValueError, "alpha must be a finite number"),
        ({"similarity": "cosine"}, ValueError, "similarity must be one of"),
        ({"layer_match": "best"}, ValueError, "layer_match must be one of"),
        ({"max_features": 0}, ValueError, "max_features must be a positive integer"),
        ({"probe_batch_size": 2.5}, ValueError, "probe_batch_size must be a positive integer"),
        ({"feature_dtype": "bfloat16"}, ValueError, "feature_dtype must be one of"),
    ],
)
def test_a_config_refuses_bad_settings_naming_them(settings, error, message):
    with pytest.raises(error, match=message):
        ScoringConfig(**settings)


def test_a_config_is_frozen_and_replaced_field_by_field():
    config = ScoringConfig(alpha=2, similarity="spearman")
    assert config.alpha == 2.0 and isinstance(config.alpha, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.alpha = 1.0  # type: ignore[misc]
    assert dataclasses.replace(config, alpha=0.0).similarity == "spearman"


@pytest.fixture
def teacher_files(tmp_path):
    rng = np.random.default_rng(3)
    images = rng.random((12, 4, 4, 1), dtype=np.float32)
    paths = []
    for version in range(2):
        store = TeacherStore.create(tmp_path / f"teacher{version}.h5", images, None)
        store.add_rdm("T", rdm(rng.normal(size=(12, 6)), name="T"))
        paths.append(store.path)
    return paths


def test_a_scorer_from_a_config_equals_one_from_keywords(teacher_files):
    from_config = TeacherGuidedScorer(teacher_files[0], ScoringConfig(alpha=0.5, similarity="spearman"))
    from_keywords = TeacherGuidedScorer(teacher_files[0], alpha=0.5, method="spearman")
    assert from_config.config == from_keywords.config
    assert from_keywords.method == "spearman" and from_keywords.alpha == 0.5
    assert TeacherGuidedScorer(teacher_files[0], 2.0).alpha == 2.0  # α, the second argument before 0.2


def test_with_teacher_keeps_every_setting_and_changes_only_the_teacher(teacher_files):
    scorer = TeacherGuidedScorer(teacher_files[0], ScoringConfig(alpha=2.0, max_features=3, seed=9))
    other = scorer.with_teacher(teacher_files[1])
    assert other.config == scorer.config
    assert str(other.teacher.path) == str(teacher_files[1])
    assert not np.array_equal(other.teacher_rdms["T"].values, scorer.teacher_rdms["T"].values)


def test_a_setting_given_by_its_former_name_is_named_so_in_errors(teacher_files):
    with pytest.raises(ValueError, match=r"^method must be one of"):
        TeacherGuidedScorer(teacher_files[0], method="CKA")
    with pytest.raises(TypeError, match="unknown setting"):
        TeacherGuidedScorer(teacher_files[0], alpah=1.0)


def test_a_proxy_term_is_the_log10_of_a_scale_free_proxy_and_naswot_itself():
    assert proxy_term("synflow", 1e40) == pytest.approx(40.0)
    np.testing.assert_allclose(proxy_term("params", np.array([10.0, 1000.0])), [1.0, 3.0])
    assert proxy_term("naswot", 1523.5) == 1523.5
    assert proxy_term("snip", 0.0) == -math.inf
    with pytest.raises(ValueError, match="proxy must be one of"):
        proxy_term("jacov", 1.0)


def test_proxy_weights_are_checked_by_name_and_value():
    assert ScoringConfig(proxy_weights={"synflow": 1}).proxy_weights == {"synflow": 1.0}
    with pytest.raises(ValueError, match="proxy_weights must be one of"):
        ScoringConfig(proxy_weights={"jacov": 1.0})
    with pytest.raises(ValueError, match=r"proxy_weights\['naswot'\] must be a finite number"):
        ScoringConfig(proxy_weights={"naswot": math.nan})


def test_a_score_with_proxy_terms_adds_beta_times_each_term():
    result = TeacherGuidedScore(
        premature_accuracy=0.4,
        teacher_guidance=0.2,
        alpha=1.0,
        proxies={"synflow": 1e30, "naswot": 100.0},
        proxy_weights={"synflow": 0.01, "naswot": 0.002},
    )
    assert result.score == pytest.approx(0.4 + 0.2 + 0.01 * 30 + 0.002 * 100)
    assert result.metrics()["synflow"] == 1e30
