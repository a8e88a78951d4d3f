"""NASBench201SearchSpace: the published network (sizes, padding, pooling), its endpoints, arch strings
both ways, a cut-off cell that still trains, every oracle, and `[hypermodel] name = "nasbench201"`."""

import itertools
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest

import keras_sage
from keras_sage import contract
from keras_sage.contract import CandidateBuildError, representation_endpoints
from keras_sage.hypermodels import NASBench201SearchSpace, random_hyperparameters
from keras_sage.model_size import count_flops
from keras_sage.nasbench201 import OPERATIONS, format_arch_string, parse_arch_string
from keras_sage.rsa import rdm
from keras_sage.search_config import (
    ConfigError,
    SearchData,
    build_hypermodel,
    build_oracle,
    load_search_config,
)
from keras_sage.teachers import TeacherStore

ALL_3X3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_1X1 = "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"
# Node 3 reads only `none` edges: the cell's output is cut off from its input.
CUT_OFF = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|none~1|none~2|"
NO_CONVOLUTION = [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|avg_pool_3x3~2|",
]
STAGE_CHANNELS = (16, 32, 64)
STAGE_SIDES = (32, 16, 8)


def trainable_parameters(model: keras.Model) -> int:
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def published_parameters(convs_3x3: int, convs_1x1: int) -> int:
    """Trainable parameters of NAS-Bench-201's CIFAR-10 network, counted by hand (N = 5, C = 16)."""
    stem = 3 * 3 * 3 * 16 + 2 * 16
    cells = sum(5 * (convs_3x3 * (9 * c * c + 2 * c) + convs_1x1 * (c * c + 2 * c)) for c in STAGE_CHANNELS)
    # ReLU-conv3×3(stride 2)-BN, ReLU-conv3×3-BN, and the 1×1 conv of the shortcut.
    reductions = sum(9 * a * b + 2 * b + 9 * b * b + 2 * b + a * b for a, b in ((16, 32), (32, 64)))
    head = 2 * 64 + 64 * 10 + 10
    return stem + cells + reductions + head


def published_multiply_accumulates(convs_3x3: int, convs_1x1: int) -> int:
    """Multiply-accumulates of one 32×32 image, counted by hand (NAS-Bench-201 reports 220.1M at most)."""
    stem = 32 * 32 * 27 * 16
    cells = sum(
        5 * side * side * (convs_3x3 * 9 * c * c + convs_1x1 * c * c)
        for side, c in zip(STAGE_SIDES, STAGE_CHANNELS, strict=True)
    )
    reductions = sum(
        side * side * (9 * a * b + 9 * b * b + a * b) for side, a, b in ((16, 16, 32), (8, 32, 64))
    )
    return stem + cells + reductions + 64 * 10


@pytest.fixture(scope="module")
def published() -> NASBench201SearchSpace:
    return NASBench201SearchSpace(num_classes=10, input_shape=(32, 32, 3))


@pytest.mark.parametrize(
    ("arch_string", "convs_3x3", "convs_1x1"),
    [(ALL_3X3, 6, 0), (BEST, 5, 0), (ALL_1X1, 0, 6), *((cell, 0, 0) for cell in NO_CONVOLUTION)],
)
def test_parameters_and_flops_are_nasbench201s(published, arch_string, convs_3x3, convs_1x1):
    model = published.model_from_arch_string(arch_string)
    assert trainable_parameters(model) == published_parameters(convs_3x3, convs_1x1)
    assert count_flops(model) == 2 * published_multiply_accumulates(convs_3x3, convs_1x1)


def test_the_largest_and_smallest_networks_have_the_published_sizes(published):
    largest = trainable_parameters(published.model_from_arch_string(ALL_3X3))
    smallest = trainable_parameters(published.model_from_arch_string(NO_CONVOLUTION[0]))
    assert (largest, smallest) == (1_531_546, 73_306)
    assert largest == pytest.approx(1.53e6, rel=0.01)
    assert smallest == pytest.approx(0.07e6, rel=0.05)  # 0.0733 M, which NAS-Bench-201 rounds to 0.07 M


def test_endpoints_are_the_15_cell_outputs_in_depth_order(published):
    model = published.build(keras_tuner.HyperParameters())
    endpoints = representation_endpoints(model)
    assert endpoints == [f"cell_{n}" for n in range(1, 16)]
    shapes = [tuple(model.get_layer(name).output.shape[1:]) for name in endpoints]
    expected = [
        (side, side, c) for side, c in zip(STAGE_SIDES, STAGE_CHANNELS, strict=True) for _ in range(5)
    ]
    assert shapes == expected
    assert all(isinstance(model.get_layer(name), keras.layers.Add) for name in endpoints)


def test_batch_norm_has_pytorchs_defaults(published):
    model = published.model_from_arch_string(ALL_3X3)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # Stem, 15 cells × 6 edges, 2 per reduction block, head.
    assert len(norms) == 1 + 90 + 4 + 1
    assert {(layer.momentum, layer.epsilon) for layer in norms} == {(0.9, 1e-5)}


def test_the_default_hyperparameters_are_the_all_3x3_cell(published):
    hp = keras_tuner.HyperParameters()
    published.declare_hyperparameters(hp)
    assert NASBench201SearchSpace.to_arch_string(hp) == ALL_3X3
    assert sorted(hp.values) == [
        "edge_0_1",
        "edge_0_2",
        "edge_0_3",
        "edge_1_2",
        "edge_1_3",
        "edge_2_3",
        "num_edges",
    ]
    assert hp.values["num_edges"] == 6


def test_every_cell_round_trips_through_hyperparameters():
    for operations in itertools.product(OPERATIONS, repeat=6):
        arch_string = format_arch_string(operations)
        assert NASBench201SearchSpace.to_arch_string(
            NASBench201SearchSpace.from_arch_string(arch_string)
        ) == (arch_string)


def test_random_candidates_round_trip_and_name_their_edges():
    space = NASBench201SearchSpace(num_classes=10, input_shape=(8, 8, 3))
    seen = set()
    for seed in range(40):
        hp = random_hyperparameters(space, seed)
        arch_string = NASBench201SearchSpace.to_arch_string(hp)
        seen.add(arch_string)
        assert NASBench201SearchSpace.from_arch_string(arch_string).values == hp.values
        # edge_<i>_<j> is edge i → j, which the arch string lists as `<op>~i` in node j's group.
        node_3 = arch_string.split("+")[2]
        assert f"|{hp.values['edge_1_3']}~1|" in node_3
    assert len(seen) == 40


def test_a_value_outside_the_space_names_the_edge():
    hp = NASBench201SearchSpace.from_arch_string(BEST)
    hp.values["edge_1_2"] = "sep_conv_3x3"
    with pytest.raises(CandidateBuildError, match="edge_1_2 is 'sep_conv_3x3'"):
        NASBench201SearchSpace(input_shape=(8, 8, 3)).build(hp)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"input_shape": (30, 30, 3)}, r"multiples of 4 .* got \(30, 30, 3\)"),
        ({"num_classes": 1}, "num_classes must be at least 2"),
        ({"num_repeats": 0}, "num_repeats must be a positive integer"),
        ({"filters": 2.5}, "filters must be a positive integer"),
    ],
)
def test_bad_arguments_are_one_line_naming_them(arguments, message):
    with pytest.raises(ValueError, match=message):
        NASBench201SearchSpace(**arguments)


def intermediate(model: keras.Model, names: list[str], images: np.ndarray) -> list[np.ndarray]:
    outputs = keras.Model(model.input, [model.get_layer(name).output for name in names])(
        images, training=False
    )
    return [np.asarray(output) for output in (outputs if isinstance(outputs, list) else [outputs])]


def test_avg_pool_averages_only_the_pixels_inside_the_image():
    space = NASBench201SearchSpace(num_classes=3, input_shape=(8, 8, 1), num_repeats=1, filters=2)
    model = space.model_from_arch_string("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    images = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    node_0, node_1 = intermediate(model, ["stem_bn", "cell_1_node_1"], images)
    padded = np.pad(node_0, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=np.nan)
    windows = np.stack([padded[:, i : i + 8, j : j + 8] for i in range(3) for j in range(3)])
    np.testing.assert_allclose(node_1, np.nanmean(windows, axis=0), rtol=1e-5, atol=1e-6)
    # A corner averages its 4 pixels inside the image, not 9 with zeros.
    np.testing.assert_allclose(node_1[:, 0, 0], node_0[:, :2, :2].mean(axis=(1, 2)), rtol=1e-5)


def test_the_strided_convolution_pads_one_pixel_on_each_side_as_pytorch():
    space = NASBench201SearchSpace(num_classes=3, input_shape=(8, 8, 1), num_repeats=1, filters=2)
    model = space.model_from_arch_string(ALL_3X3)
    images = np.random.default_rng(1).random((1, 8, 8, 1), dtype=np.float32)
    block_input, rectified, output = intermediate(
        model, ["cell_1", "reduction_1_a_relu", "reduction_1_a_conv"], images
    )
    np.testing.assert_allclose(rectified, np.maximum(block_input, 0))
    kernel = np.asarray(model.get_layer("reduction_1_a_conv").kernel)  # (3, 3, 2, 4)
    padded = np.pad(rectified[0], ((1, 1), (1, 1), (0, 0)))
    expected = np.array(
        [
            [np.einsum("yxc,yxcf->f", padded[2 * i : 2 * i + 3, 2 * j : 2 * j + 3], kernel) for j in range(4)]
            for i in range(4)
        ]
    )
    np.testing.assert_allclose(output[0], expected, rtol=1e-4, atol=1e-5)


def test_a_cut_off_cell_builds_and_trains():
    space = NASBench201SearchSpace(num_classes=3, input_shape=(8, 8, 1), num_repeats=1, filters=4)
    model = space.build(NASBench201SearchSpace.from_arch_string(CUT_OFF))
    # Edges whose result reaches no output are still built, as NAS-Bench-201 builds them.
    assert model.get_layer("cell_1_edge_0_1_nor_conv_3x3_conv") is not None
    rng = np.random.default_rng(2)
    images = rng.random((8, 8, 8, 1), dtype=np.float32)
    labels = rng.integers(0, 3, 8)
    loss = model.train_on_batch(images, labels)[0]
    assert np.isfinite(loss)
    (cell_output,) = intermediate(model, ["cell_1"], images)
    assert not cell_output.any()
    # Nothing of the image reaches the classifier: every image gets the same prediction.
    predictions = np.asarray(model(images, training=False))
    np.testing.assert_allclose(predictions, np.broadcast_to(predictions[0], predictions.shape), atol=1e-6)


def test_reinforce_draws_one_operation_per_edge():
    space = NASBench201SearchSpace(num_classes=3, input_shape=(8, 8, 1))
    oracle = keras_sage.ReinforceOracle(space, objective=keras_tuner.Objective(contract.SCORE, "max"), seed=3)
    space.declare_hyperparameters(oracle.hyperparameters)
    drawn = []
    for trial in range(5):
        hp = keras_tuner.HyperParameters()
        hp.values.update(oracle.populate_space(str(trial))["values"])
        assert hp.values["num_edges"] == 6
        drawn.append(NASBench201SearchSpace.to_arch_string(hp))
    assert len(set(drawn)) > 1


# Searches on tiny data (8×8, one cell per stage, C = 4).


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    rng = np.random.default_rng(0)
    x = rng.random((60, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, len(x))
    probe_images = rng.random((9, 8, 8, 1), dtype=np.float32)
    teacher = tmp_path_factory.mktemp("teacher") / "teacher.h5"
    store = TeacherStore.create(teacher, probe_images, np.repeat(np.arange(3), 3))
    flat = probe_images.reshape(len(probe_images), -1)
    store.add_rdm("L1", rdm(np.maximum(flat @ rng.normal(size=(64, 16)), 0), name="L1"))
    return {"x": x[:40], "y": y[:40], "validation": (x[40:], y[40:]), "teacher": teacher}


ALPHA = 0.5


def tiny_tuner(oracle_name: str, space: NASBench201SearchSpace, teacher: Path, directory: Path):
    """A `SageTuner` (or `SageHyperband`) of 2 trials at one epoch each, with the named oracle."""
    objective = keras_tuner.Objective(contract.SCORE, "max")
    common = {
        "teacher": teacher,
        "alpha": ALPHA,
        "seed": 1,
        "directory": directory,
        "project_name": oracle_name,
    }
    if oracle_name == "hyperband":
        return keras_sage.SageHyperband(space, max_epochs=2, factor=2, **common)
    oracles = {
        "tpe": lambda: keras_sage.TPEOracle(objective=objective, max_trials=2, seed=1),
        "reinforce": lambda: keras_sage.ReinforceOracle(
            space, objective=objective, max_trials=2, batch_size=2, seed=1
        ),
        "random": lambda: keras_tuner.oracles.RandomSearchOracle(objective=objective, max_trials=2, seed=1),
    }
    return keras_sage.SageTuner(space, oracle=oracles[oracle_name](), premature_epochs=1, **common)


@pytest.mark.slow
@pytest.mark.parametrize("oracle_name", ["tpe", "reinforce", "random", "hyperband"])
def test_a_search_with_each_oracle_scores_every_candidate(tmp_path, tiny, oracle_name):
    space = NASBench201SearchSpace(num_classes=3, input_shape=(8, 8, 1), num_repeats=1, filters=4)
    tuner = tiny_tuner(oracle_name, space, tiny["teacher"], tmp_path)
    tuner.search(tiny["x"], tiny["y"], validation_data=tiny["validation"], batch_size=16, verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) >= 2
    for trial in trials:
        assert trial.status == "COMPLETED"
        accuracy = trial.metrics.get_last_value(contract.PREMATURE_ACCURACY)
        guidance = trial.metrics.get_last_value(contract.TEACHER_GUIDANCE)
        assert guidance == trial.metrics.get_last_value(contract.similarity_metric_name("L1"))
        assert trial.score == pytest.approx(accuracy + ALPHA * guidance)
        assert parse_arch_string(NASBench201SearchSpace.to_arch_string(trial.hyperparameters))


# `[hypermodel] name = "nasbench201"` in a search config.

CONFIG = """\
[search]
max_trials = 2
premature_steps = 1
[data]
name = "digits"
image_size = 8
[hypermodel]
name = "nasbench201"
{hypermodel}
[teacher]
path = "teacher.h5"
[oracle]
name = "{oracle}"
"""


def config_data() -> SearchData:
    images = np.zeros((4, 8, 8, 1), dtype=np.float32)
    return SearchData((images, np.zeros(4)), {}, (8, 8, 1), 10, images, None)


def test_the_config_builds_the_space_from_its_keys_and_the_data(tmp_path):
    path = tmp_path / "nb201.toml"
    path.write_text(CONFIG.format(hypermodel="num_repeats = 1\nfilters = 8", oracle="reinforce"))
    config = load_search_config(path)
    space = build_hypermodel(config, config_data())
    assert isinstance(space, NASBench201SearchSpace)
    assert (space.num_classes, space.input_shape, space.num_repeats, space.filters) == (10, (8, 8, 1), 1, 8)
    oracle = build_oracle(config, space)
    assert isinstance(oracle, keras_sage.ReinforceOracle)
    assert oracle.spec.max_layers == 6


def test_the_config_refuses_an_unknown_key_listing_the_spaces_keys(tmp_path):
    path = tmp_path / "nb201.toml"
    path.write_text(CONFIG.format(hypermodel="max_layers = 3", oracle="tpe"))
    with pytest.raises(
        ConfigError, match=r"unknown key\(s\) max_layers for 'nasbench201'; valid keys: name, "
    ):
        build_hypermodel(load_search_config(path), config_data())


def test_every_exported_trial_names_its_arch_string(tmp_path):
    """`keras-sage export` (a subprocess) of a project whose trial.json files hold NASBench201SearchSpace
    values gives each trial's arch string; a trial without every edge (another space) gets none."""
    import csv
    import json
    import subprocess
    import sys

    from keras_sage.nasbench201 import arch_string_of_values

    cells = [BEST, CUT_OFF]
    for index, values in enumerate(
        [*(NASBench201SearchSpace.from_arch_string(cell).values for cell in cells), {"filters": 8}]
    ):
        trial = tmp_path / "project" / f"trial_{index:02d}"
        trial.mkdir(parents=True)
        state = {"trial_id": f"{index:02d}", "status": "COMPLETED", "hyperparameters": {"values": values}}
        (trial / "trial.json").write_text(json.dumps(state))
    output = tmp_path / "trials.csv"
    result = subprocess.run(
        [sys.executable, "-m", "keras_sage.cli", "export", str(tmp_path / "project"), "-o", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with output.open() as file:
        rows = list(csv.DictReader(file))
    assert [row["arch_string"] for row in rows] == [*cells, ""]
    rng = np.random.default_rng(0)
    for _ in range(20):
        cell = format_arch_string(list(rng.choice(OPERATIONS, 6)))
        assert arch_string_of_values(NASBench201SearchSpace.from_arch_string(cell).values) == cell
    edges = dict(NASBench201SearchSpace.from_arch_string(BEST).values)
    edges["edge_1_3"] = "conv_5x5"
    assert arch_string_of_values(edges) is None
