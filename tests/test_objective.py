"""TeacherGuidedScorer: S_i, TG and P + α·TG on tiny models, checked against scipy."""

import importlib

import keras
import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr

from keras_sage.objective import (
    TeacherGuidedScore,
    TeacherGuidedScorer,
    plan_endpoint_groups,
    premature_accuracy,
    teacher_guidance,
)
from keras_sage.rsa import feature_subsample_indices, rdm
from keras_sage.rsa.dissimilarity import prepared_rdm_workspace_bytes, rdm_workspace_bytes
from keras_sage.teachers import TeacherStore, register_recordings

objective_module = importlib.import_module("keras_sage.objective")
N_PROBE = 12
ENDPOINTS = ["layer_1", "layer_2", "layer_3"]


def tiny_cnn(seed: int, metrics: tuple[str, ...] = ("accuracy",)) -> keras.Model:
    """Three named conv endpoints on 8×8×1 images; the same seed gives the same weights."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="layer_1")(image)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="layer_2")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="layer_3")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(image, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return model


def activations(model: keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
    outputs = [model.get_layer(name).output for name in ENDPOINTS]
    values = keras.Model(model.input, outputs)(images.astype(np.float32), training=False)
    return {
        name: np.asarray(value).reshape(len(images), -1)
        for name, value in zip(ENDPOINTS, values, strict=True)
    }


@pytest.fixture(scope="module")
def probe() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.random((N_PROBE, 8, 8, 1), dtype=np.float32)
    labels = np.repeat(np.arange(3), N_PROBE // 3)
    return images, labels


def make_teacher(
    path, model, probe, level="image", layers=("layer_1", "layer_3"), metric="correlation"
) -> TeacherStore:
    images, labels = probe
    store = TeacherStore.create(path, images, labels)
    features = activations(model, images)
    for name in layers:
        labels_or_none = labels if level == "category" else None
        store.add_rdm(
            f"T_{name}", rdm(features[name], metric=metric, labels=labels_or_none, level=level, name=name)
        )
    return TeacherStore.open(path)


def test_plan_endpoint_groups_fits_buffers_in_budget():
    n_images = 4
    # Beyond the widest endpoint's RDM workspace, room for 20 features of 4 images: endpoints of 10, 10, 10
    # features go as [0, 1], [2].
    budget = rdm_workspace_bytes(n_images, 10) + 4 * n_images * 20
    assert plan_endpoint_groups([10, 10, 10], n_images, budget) == [[0, 1], [2]]
    assert plan_endpoint_groups([10, 10, 10], n_images, 10**9) == [[0, 1, 2]]
    # An endpoint larger than the budget still gets its own group.
    budget = rdm_workspace_bytes(n_images, 100) + 4 * n_images * 20
    assert plan_endpoint_groups([100, 5, 5], n_images, budget) == [[0], [1, 2]]
    # The 50 endpoints × 5,000 probes of benchmarks/bench_objective.py (4,096 features kept of 32×32×32 and
    # 16×16×32 outputs, all 2,048 of 8×8×32) go in two forward passes.
    bench_endpoints = [4096] * 33 + [2048] * 17
    assert [len(group) for group in plan_endpoint_groups(bench_endpoints, 5000, 2 * 1024**3)] == [24, 26]
    # As float16 prepared rows, with the workspace of rdm_of_prepared_rows, they go in one.
    half_workspace = prepared_rdm_workspace_bytes(5000, 4096, item_bytes=2)
    assert plan_endpoint_groups(bench_endpoints, 5000, 2 * 1024**3, 2, half_workspace) == [list(range(50))]


def test_teacher_guidance_is_mean_of_similarities():
    assert teacher_guidance([0.2, 0.4, 0.9]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one"):
        teacher_guidance([])


def test_teacher_against_itself_scores_one(tmp_path, probe):
    model = tiny_cnn(seed=1)
    teacher = make_teacher(tmp_path / "teacher.h5", model, probe)
    objective = TeacherGuidedScorer(teacher, max_features=None, batch_size=5)
    similarities, best = objective.similarities(model, ENDPOINTS)
    assert similarities == pytest.approx({"T_layer_1": 1.0, "T_layer_3": 1.0}, abs=1e-5)
    assert best == {"T_layer_1": "layer_1", "T_layer_3": "layer_3"}


def test_other_network_scores_lower_and_matches_scipy(tmp_path, probe):
    images, _ = probe
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe)
    student = tiny_cnn(seed=2)
    max_features = 50
    objective = TeacherGuidedScorer(teacher, max_features=max_features, batch_size=5, seed=3)
    similarities, best = objective.similarities(student, ENDPOINTS)

    features = activations(student, images)
    for teacher_name, teacher_rdm in teacher.rdms().items():
        expected = {}
        for name, values in features.items():
            kept = feature_subsample_indices(values.shape[1], max_features, 3)
            values = values if kept is None else values[:, kept]
            expected[name] = pearsonr(teacher_rdm.values, pdist(values, "correlation")).statistic
        assert similarities[teacher_name] == pytest.approx(max(expected.values()), abs=1e-4)
        assert best[teacher_name] == max(expected, key=expected.get)
    assert np.mean(list(similarities.values())) < 0.999


def scipy_similarities(teacher: TeacherStore, student: keras.Model, images: np.ndarray) -> dict:
    """r(T_i, C_j) for every teacher layer i and student endpoint j, from scipy, all features kept."""
    features = activations(student, images)
    return {
        teacher_name: {
            name: pearsonr(teacher_rdm.values, pdist(values, "correlation")).statistic
            for name, values in features.items()
        }
        for teacher_name, teacher_rdm in teacher.rdms().items()
    }


def test_layer_match_mean_and_fixed_match_scipy(tmp_path, probe):
    images, _ = probe
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe)
    student = tiny_cnn(seed=2)
    expected = scipy_similarities(teacher, student, images)

    mean, _ = TeacherGuidedScorer(teacher, max_features=None, layer_match="mean").similarities(
        student, ENDPOINTS
    )
    for teacher_name, by_endpoint in expected.items():
        assert mean[teacher_name] == pytest.approx(np.mean(list(by_endpoint.values())), abs=1e-5)

    # The mapping that is not the max: S_i is r with the mapped endpoint, even where another is higher.
    mapping = {"T_layer_1": "layer_3", "T_layer_3": "layer_2"}
    fixed = TeacherGuidedScorer(teacher, max_features=None, layer_match="fixed", layer_mapping=mapping)
    similarities, chosen = fixed.similarities(student)
    assert chosen == mapping
    for teacher_name, endpoint in mapping.items():
        assert similarities[teacher_name] == pytest.approx(expected[teacher_name][endpoint], abs=1e-5)


def test_layer_match_refuses_bad_mappings(tmp_path, probe):
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe)
    with pytest.raises(ValueError, match="layer_match must be one of 'max', 'mean', 'fixed', got 'best'"):
        TeacherGuidedScorer(teacher, layer_match="best")
    with pytest.raises(ValueError, match='layer_match="fixed" needs layer_mapping'):
        TeacherGuidedScorer(teacher, layer_match="fixed")
    with pytest.raises(ValueError, match="does not map the teacher layer 'T_layer_3'"):
        TeacherGuidedScorer(teacher, layer_match="fixed", layer_mapping={"T_layer_1": "layer_1"})
    with pytest.raises(ValueError, match="maps 'V4', which is not a layer of the teacher"):
        TeacherGuidedScorer(
            teacher, layer_match="fixed", layer_mapping={"V4": "layer_1", "T_layer_3": "layer_2"}
        )
    with pytest.raises(ValueError, match='only with layer_match="fixed"'):
        TeacherGuidedScorer(teacher, layer_mapping={"T_layer_1": "layer_1"})
    fixed = TeacherGuidedScorer(
        teacher, layer_match="fixed", layer_mapping={"T_layer_1": "layer_1", "T_layer_3": "conv_9"}
    )
    with pytest.raises(
        ValueError, match="has no layer 'conv_9', which layer_mapping maps teacher layer 'T_layer_3'"
    ):
        fixed.similarities(tiny_cnn(seed=2))


@pytest.mark.parametrize("level", ["image", "category"])  # rows prepared in the extractor, or not
def test_grouped_forward_passes_give_the_same_similarities(tmp_path, probe, level, monkeypatch):
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe, level=level)
    student = tiny_cnn(seed=2)
    one_pass = TeacherGuidedScorer(teacher, max_features=40).similarities(student, ENDPOINTS)
    # A budget that holds only the RDM workspace forces one endpoint per forward pass.
    workspace = (
        prepared_rdm_workspace_bytes(N_PROBE, 40) if level == "image" else rdm_workspace_bytes(N_PROBE, 40)
    )
    tight_budget = workspace + 1
    assert plan_endpoint_groups([40, 40, 40], N_PROBE, tight_budget, 4, workspace) == [[0], [1], [2]]
    passes = spy(monkeypatch, "layer_features")
    grouped = TeacherGuidedScorer(teacher, max_features=40, memory_budget=tight_budget).similarities(
        student, ENDPOINTS
    )
    assert [call["dtype"] for call in passes] == ["float32"] * 3
    assert grouped[1] == one_pass[1]
    assert grouped[0] == pytest.approx(one_pass[0], abs=1e-6)


def spy(monkeypatch, name: str) -> list[dict]:
    """Replaces `keras_sage.objective.<name>` with a wrapper that records each call's keyword arguments."""
    calls: list[dict] = []
    function = getattr(objective_module, name)

    def recorded(*args, **kwargs):
        calls.append(kwargs)
        return function(*args, **kwargs)

    monkeypatch.setattr(objective_module, name, recorded)
    return calls


@pytest.mark.parametrize("metric", ["correlation", "cosine"])
@pytest.mark.parametrize("batch_size", [5, 64])  # a graph traced once; one eager call
def test_prepared_rows_give_the_brute_force_similarities(tmp_path, probe, metric, batch_size, monkeypatch):
    images, _ = probe
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe, metric=metric)
    student = tiny_cnn(seed=2)
    prepared = spy(monkeypatch, "rdm_of_prepared_rows")
    scorer = TeacherGuidedScorer(teacher, max_features=50, batch_size=batch_size, seed=3)
    similarities, best = scorer.similarities(student, ENDPOINTS)
    mean, _ = TeacherGuidedScorer(
        teacher, max_features=50, batch_size=batch_size, seed=3, layer_match="mean"
    ).similarities(student, ENDPOINTS)
    assert len(prepared) == 2 * len(ENDPOINTS)  # every student RDM came from prepared rows

    # Brute force: scipy's pdist of the float64 features at the same subsample, scipy's Pearson r.
    features = activations(student, images)
    for teacher_name, teacher_rdm in teacher.rdms().items():
        expected = {}
        for name, values in features.items():
            kept = feature_subsample_indices(values.shape[1], 50, 3)
            values = np.asarray(values if kept is None else values[:, kept], dtype=np.float64)
            expected[name] = pearsonr(teacher_rdm.values, pdist(values, metric)).statistic
        assert abs(similarities[teacher_name] - max(expected.values())) < 1e-6
        assert best[teacher_name] == max(expected, key=expected.get)
        assert abs(mean[teacher_name] - np.mean(list(expected.values()))) < 1e-6


def test_float16_rows_when_they_save_a_forward_pass(tmp_path, probe, monkeypatch):
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe)
    student = tiny_cnn(seed=2)
    # Three endpoints of 40 features: as float32 rows they need two passes in this budget, as float16 one.
    budget = prepared_rdm_workspace_bytes(N_PROBE, 40, item_bytes=2) + 2 * N_PROBE * 3 * 40
    assert (
        len(plan_endpoint_groups([40] * 3, N_PROBE, budget, 4, prepared_rdm_workspace_bytes(N_PROBE, 40)))
        == 2
    )
    expected = TeacherGuidedScorer(teacher, max_features=40).similarities(student, ENDPOINTS)[0]
    runs = {}
    for feature_dtype in ("auto", "float32", "float16"):
        passes = spy(monkeypatch, "layer_features")
        runs[feature_dtype] = TeacherGuidedScorer(
            teacher, max_features=40, memory_budget=budget, feature_dtype=feature_dtype
        ).similarities(student, ENDPOINTS)[0]
        monkeypatch.undo()
        stored = {"auto": ["float16"], "float32": ["float32"] * 2, "float16": ["float16"]}[feature_dtype]
        assert [call["dtype"] for call in passes] == stored
    assert runs["float32"] == pytest.approx(expected, abs=1e-7)
    assert runs["auto"] == runs["float16"]
    for name, value in runs["float16"].items():
        assert abs(value - expected[name]) < 1e-4  # float16 rows: the tolerance feature_dtype states
    with pytest.raises(ValueError, match="feature_dtype must be one of 'auto', 'float32', 'float16'"):
        TeacherGuidedScorer(teacher, feature_dtype="bfloat16")


def test_category_level_teacher(tmp_path, probe):
    images, labels = probe
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe, level="category")
    student = tiny_cnn(seed=2)
    similarities, _ = TeacherGuidedScorer(teacher, max_features=None).similarities(student, ENDPOINTS)
    features = activations(student, images)
    for teacher_name, teacher_rdm in teacher.rdms().items():
        assert teacher_rdm.level == "category"
        expected = max(
            pearsonr(
                teacher_rdm.values,
                pdist(np.stack([values[labels == c].mean(axis=0) for c in range(3)]), "correlation"),
            ).statistic
            for values in features.values()
        )
        assert similarities[teacher_name] == pytest.approx(expected, abs=1e-4)


def test_score_is_accuracy_plus_alpha_times_guidance(tmp_path, probe):
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe)
    student = tiny_cnn(seed=2)
    rng = np.random.default_rng(1)
    x_val = rng.random((10, 8, 8, 1), dtype=np.float32)
    y_val = rng.integers(0, 3, 10)
    result = TeacherGuidedScorer(teacher, alpha=0.5).evaluate(student, (x_val, y_val), ENDPOINTS)
    predicted = np.argmax(student.predict(x_val, verbose=0), axis=1)
    assert result.premature_accuracy == pytest.approx(np.mean(predicted == y_val))
    assert result.teacher_guidance == pytest.approx(np.mean(list(result.similarities.values())))
    assert result.score == result.premature_accuracy + 0.5 * result.teacher_guidance
    metrics = result.metrics()
    assert set(metrics) == {"score", "premature_accuracy", "teacher_guidance", "S_T_layer_1", "S_T_layer_3"}
    assert metrics["S_T_layer_3"] == result.similarities["T_layer_3"]


def test_alpha_zero_score_is_accuracy():
    result = TeacherGuidedScore(premature_accuracy=0.25, teacher_guidance=0.8, alpha=0.0)
    assert result.score == 0.25


def test_mismatched_probe_fingerprint_is_refused(tmp_path, probe):
    images, labels = probe
    teacher = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe)
    TeacherGuidedScorer(teacher, expected_probe=(images, labels))
    with pytest.raises(ValueError, match=r"teacher\.h5.*different probe set"):
        TeacherGuidedScorer(teacher, expected_probe=(images[::-1], labels))


def test_probe_preprocessing_is_applied(tmp_path, probe):
    model = tiny_cnn(seed=1)
    teacher = make_teacher(tmp_path / "teacher.h5", model, probe)
    # The teacher is the model itself: fed the probe images unchanged it scores 1, fed shifted images less.
    plain = TeacherGuidedScorer(teacher, max_features=None).similarities(model, ENDPOINTS)[0]
    identity = TeacherGuidedScorer(
        teacher, max_features=None, probe_preprocessing=lambda batch: batch.astype(np.float32)
    ).similarities(model, ENDPOINTS)[0]
    shifted = TeacherGuidedScorer(
        teacher, max_features=None, probe_preprocessing=lambda batch: batch.astype(np.float32) - 5.0
    ).similarities(model, ENDPOINTS)[0]
    assert identity == plain
    assert shifted["T_layer_3"] < plain["T_layer_3"] - 1e-3


def test_missing_endpoint_and_missing_accuracy_name_the_problem(tmp_path, probe):
    model = tiny_cnn(seed=1)
    teacher = make_teacher(tmp_path / "teacher.h5", model, probe)
    with pytest.raises(ValueError, match="has no layer 'layer_9'"):
        TeacherGuidedScorer(teacher).similarities(model, ["layer_9"])
    with pytest.raises(ValueError, match="no accuracy metric"):
        premature_accuracy(tiny_cnn(seed=1, metrics=()), (probe[0], probe[1]))


def recorded_teacher(path, model, probe, noise=(0.5, 2.0), n_repeats=4, ceiling_method="pearson"):
    """A teacher file of two 'regions', layer_1 and layer_3 of `model` plus Gaussian noise
    per repeat (the second region noisier), registered with their noise ceilings."""
    images, labels = probe
    features = activations(model, images)
    rng = np.random.default_rng(5)
    responses = {}
    for (name, level), layer in zip({"V1": 0, "IT": 1}.items(), ("layer_1", "layer_3"), strict=True):
        clean = features[layer]
        scale = noise[level] * clean.std()
        responses[name] = clean[:, :, None] + scale * rng.standard_normal((*clean.shape, n_repeats))
    return register_recordings(
        responses, images, labels, path=path, ceiling_method=ceiling_method, min_ceiling=None
    )


def test_normalised_similarities_are_reported_beside_the_raw_ones(tmp_path, probe):
    teacher = recorded_teacher(tmp_path / "monkey.h5", tiny_cnn(seed=1), probe)
    ceilings = {name: ceiling.ceiling for name, ceiling in teacher.noise_ceilings().items()}
    assert set(ceilings) == {"V1", "IT"} and all(0 < value < 1 for value in ceilings.values())
    student = tiny_cnn(seed=2)
    rng = np.random.default_rng(1)
    validation = (rng.random((10, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 10))

    raw = TeacherGuidedScorer(teacher, alpha=0.5, max_features=None).evaluate(student, validation, ENDPOINTS)
    expected = {
        name: max(values.values()) for name, values in scipy_similarities(teacher, student, probe[0]).items()
    }
    assert raw.similarities == pytest.approx(expected, abs=1e-4)
    assert raw.normalised_similarities == pytest.approx(
        {name: expected[name] / np.sqrt(teacher.noise_ceiling(name).reliability) for name in expected},
        abs=1e-4,
    )
    assert raw.teacher_guidance == pytest.approx(np.mean(list(expected.values())), abs=1e-4)
    assert raw.teacher_guidance_normalised == pytest.approx(
        np.mean([expected[name] / ceilings[name] for name in expected]), abs=1e-4
    )
    assert raw.score == raw.premature_accuracy + 0.5 * raw.teacher_guidance
    metrics = raw.metrics()
    assert metrics["S_IT/ceiling"] == raw.normalised_similarities["IT"]
    assert metrics["teacher_guidance_normalised"] == raw.teacher_guidance_normalised
    assert metrics["S_IT"] == raw.similarities["IT"]

    opted_in = TeacherGuidedScorer(teacher, alpha=0.5, max_features=None, normalise_by_ceiling=True)
    normalised = opted_in.evaluate(student, validation, ENDPOINTS)
    assert normalised.teacher_guidance == pytest.approx(raw.teacher_guidance_normalised)
    assert normalised.score == pytest.approx(raw.premature_accuracy + 0.5 * raw.teacher_guidance_normalised)
    assert normalised.similarities == raw.similarities


def test_normalisation_needs_a_ceiling_of_the_same_method_for_every_layer(tmp_path, probe):
    model = tiny_cnn(seed=1)
    teacher = recorded_teacher(tmp_path / "monkey.h5", model, probe)
    # Another comparison than the ceilings': nothing normalised is reported, and opting in is refused.
    spearman = TeacherGuidedScorer(teacher, method="spearman", max_features=None)
    result = spearman.evaluate(model, (probe[0][:6], probe[1][:6]), ENDPOINTS)
    assert result.normalised_similarities == {} and result.teacher_guidance_normalised is None
    assert not any("/" in name for name in result.metrics())
    with pytest.raises(ValueError, match=r"'V1' .*monkey\.h5 has a noise ceiling computed with 'pearson'"):
        TeacherGuidedScorer(teacher, method="spearman", normalise_by_ceiling=True)
    # A model layer beside the regions: S_i / ceiling_i only for the regions, and no normalised TG.
    store = TeacherStore.open(teacher.path, writable=True)
    store.add_rdm("T_layer_2", rdm(activations(model, probe[0])["layer_2"]))
    mixed = TeacherGuidedScorer(TeacherStore.open(teacher.path), max_features=None)
    result = mixed.evaluate(model, (probe[0][:6], probe[1][:6]), ENDPOINTS)
    assert set(result.normalised_similarities) == {"V1", "IT"}
    assert result.teacher_guidance_normalised is None
    with pytest.raises(ValueError, match=r"'T_layer_2' .* has no noise ceiling"):
        TeacherGuidedScorer(teacher.path, normalise_by_ceiling=True)


def test_normalised_metric_names_are_kept_apart_and_survive_a_keras_tuner_trial():
    from keras_tuner import HyperParameters
    from keras_tuner.engine.trial import Trial

    from keras_sage import contract

    name = contract.normalised_similarity_metric_name("IT")
    assert name == "S_IT/ceiling"
    assert contract.teacher_layer_of_metric(name) is None
    assert contract.teacher_layer_of_normalised_metric(name) == "IT"
    assert contract.teacher_layer_of_normalised_metric("S_IT") is None
    assert contract.teacher_layer_of_metric("S_IT") == "IT"
    trial = Trial(hyperparameters=HyperParameters(), trial_id="0")
    trial.metrics.register(name, direction="max")
    trial.metrics.update(name, 0.75)
    assert Trial.from_state(trial.get_state()).metrics.get_last_value(name) == 0.75


def brute_force_cka(x, y):
    """Linear CKA with explicit centring matrices: tr(K H L H) / √(tr(K H K H) tr(L H L H))."""
    n = len(x)
    h = np.eye(n) - np.ones((n, n)) / n
    gram_x, gram_y = (
        x.astype(np.float64) @ x.T.astype(np.float64),
        y.astype(np.float64) @ y.T.astype(np.float64),
    )
    cross = np.trace(gram_x @ h @ gram_y @ h)
    return cross / np.sqrt(np.trace(gram_x @ h @ gram_x @ h) * np.trace(gram_y @ h @ gram_y @ h))


def test_cka_scores_the_features_against_a_brute_force_cka(tmp_path, probe):
    images, labels = probe
    teacher_features = activations(tiny_cnn(seed=1), images)
    store = TeacherStore.create(tmp_path / "teacher.h5", images, labels)
    for name in ("layer_1", "layer_3"):
        store.add_rdm(f"T_{name}", rdm(teacher_features[name], metric="euclidean", name=name))
    student = tiny_cnn(seed=2)
    max_features = 40
    scorer = TeacherGuidedScorer(
        TeacherStore.open(store.path), method="cka", max_features=max_features, seed=3
    )
    similarities, best = scorer.similarities(student, ENDPOINTS)
    student_features = activations(student, images)
    for teacher_name in similarities:
        expected = {}
        for name, values in student_features.items():
            kept = feature_subsample_indices(values.shape[1], max_features, 3)
            values = values if kept is None else values[:, kept]
            expected[name] = brute_force_cka(teacher_features[teacher_name[2:]], values)
        assert similarities[teacher_name] == pytest.approx(max(expected.values()), abs=1e-5)
        assert best[teacher_name] == max(expected, key=expected.get)
    assert 0.2 < min(similarities.values()) < max(similarities.values()) < 0.999
    # The teacher against itself: CKA 1 at the matching endpoints.
    same, _ = TeacherGuidedScorer(store.path, method="cka", max_features=None).similarities(
        tiny_cnn(seed=1), ENDPOINTS
    )
    assert same == pytest.approx({"T_layer_1": 1.0, "T_layer_3": 1.0}, abs=1e-5)


def test_cka_refuses_teachers_without_euclidean_image_rdms(tmp_path, probe):
    correlation = make_teacher(tmp_path / "teacher.h5", tiny_cnn(seed=1), probe)
    with pytest.raises(
        ValueError,
        match=r"teacher\.h5: RDM 'T_layer_1' has metric 'correlation' and level 'image'.*"
        "register the teacher with metric='euclidean'",
    ):
        TeacherGuidedScorer(correlation, method="cka")
    images, labels = probe
    store = TeacherStore.create(tmp_path / "category.h5", images, labels)
    store.add_rdm(
        "IT",
        rdm(
            activations(tiny_cnn(seed=1), images)["layer_3"],
            metric="euclidean",
            labels=labels,
            level="category",
        ),
    )
    with pytest.raises(ValueError, match="'IT' has metric 'euclidean' and level 'category'"):
        TeacherGuidedScorer(store.path, method="cka")
    with pytest.raises(ValueError, match="method"):
        TeacherGuidedScorer(correlation, method="CKA")
