"""CellSearchSpace: every operation, random cells, the network layouts, the published presets, a search."""

import json
import math

import keras
import keras_tuner
import numpy as np
import pytest

from keras_sage.datasets import digits
from keras_sage.hypermodels import (
    CandidateBuildError,
    random_hyperparameters,
    representation_endpoints,
    resnet_cifar,
)
from keras_sage.hypermodels.cells import (
    NASNET_A_NORMAL,
    NASNET_A_REDUCTION,
    OPERATIONS,
    PNASNET_5,
    PREV_CELL,
    PREV_PREV_CELL,
    Block,
    CellSearchSpace,
    CellStructure,
    block_sources,
)
from keras_sage.model_size import count_flops
from keras_sage.teachers import register_teacher
from keras_sage.tuners import SageTuner, TPEOracle


def expected_sizes(size: int, reductions: list[bool]) -> list[int]:
    """Spatial size after each cell: every reduction maps s to ceil(s / 2)."""
    sizes = []
    for reduction in reductions:
        size = math.ceil(size / 2) if reduction else size
        sizes.append(size)
    return sizes


def assert_valid_network(space: CellSearchSpace, model: keras.Model, cell: CellStructure, size: int) -> None:
    plan = space.network_plan()
    endpoints = representation_endpoints(model)
    assert endpoints == [f"cell_{n}" for n in range(1, len(plan) + 1)]
    sizes = expected_sizes(size, [cell_plan.reduction for cell_plan in plan])
    for cell_plan, endpoint, cell_size in zip(plan, endpoints, sizes, strict=True):
        shape = model.get_layer(endpoint).output.shape
        assert tuple(shape[1:]) == (cell_size, cell_size, cell_plan.filters * len(cell.concatenated)), (
            endpoint
        )
    assert tuple(model.output.shape) == (None, space.num_classes)


def test_the_space_declares_the_papers_hyperparameters():
    space = CellSearchSpace(num_classes=10, input_shape=(8, 8, 3))
    hp = keras_tuner.HyperParameters()
    space.declare_hyperparameters(hp)
    by_name = {parameter.name: parameter for parameter in hp.space}
    assert len(by_name) == 5 * 4 + 2
    assert by_name["block_1_input_1"].values == [PREV_CELL, PREV_PREV_CELL]
    assert by_name["block_5_input_2"].values == [
        PREV_CELL,
        PREV_PREV_CELL,
        "block_1",
        "block_2",
        "block_3",
        "block_4",
    ]
    assert by_name["block_3_op_1"].values == list(OPERATIONS) and len(OPERATIONS) == 8
    assert {"concat_prev_cell", "concat_prev_prev_cell"} <= set(by_name)
    assert not any(parameter.conditions for parameter in hp.space)


@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_operation_keeps_shapes_at_strides_one_and_two(operation):
    # The operation reads both cell inputs (stride 2 in reduction cells) and a block output (stride 1),
    # and the forced prev_prev_cell is reduced to the blocks' size in reduction cells.
    cell = CellStructure(
        (
            Block((PREV_CELL, PREV_PREV_CELL), (operation, operation)),
            Block(("block_1", PREV_CELL), (operation, "identity")),
        ),
        (PREV_PREV_CELL, "block_2"),
    )
    space = CellSearchSpace(
        num_blocks=2, num_repeats=1, filters=6, num_classes=3, input_shape=(7, 7, 2), normal_cell=cell
    )
    model = space.build(keras_tuner.HyperParameters())
    assert_valid_network(space, model, cell, 7)  # 7 -> 4 -> 2: odd sizes round up
    assert [cell_plan.reduction for cell_plan in space.network_plan()] == [False, True, False, True, False]


def test_a_network_with_every_operation_runs():
    cell = CellStructure(
        (
            Block((PREV_CELL, PREV_PREV_CELL), ("identity", "avg_pool_3x3")),
            Block((PREV_CELL, PREV_PREV_CELL), ("max_pool_3x3", "dilated_conv_3x3")),
            Block(("block_1", PREV_CELL), ("conv_1x7_7x1", "sep_conv_3x3")),
            Block(("block_2", PREV_PREV_CELL), ("sep_conv_5x5", "sep_conv_7x7")),
        ),
        ("block_3", "block_4"),
    )
    space = CellSearchSpace(
        num_blocks=4, num_repeats=1, filters=4, num_classes=3, input_shape=(8, 8, 2), normal_cell=cell
    )
    model = space.build(keras_tuner.HyperParameters())
    images = np.random.default_rng(0).normal(size=(8, 8, 8, 2)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    assert np.all(np.isfinite(probabilities)) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_random_cells_build_valid_networks_with_3n_plus_2_endpoints():
    space = CellSearchSpace(num_repeats=1, filters=4, num_classes=3, input_shape=(8, 8, 1))
    seen_operations = set()
    for seed in range(8):
        hp = random_hyperparameters(space, seed)
        cell = space.cell_structure(hp)
        model = space.build(hp)
        assert_valid_network(space, model, cell, 8)
        assert len(representation_endpoints(model)) == 3 * 1 + 2
        seen_operations |= {operation for block in cell.blocks for operation in block.operations}
    assert len(seen_operations) >= 6


@pytest.mark.slow
def test_hundreds_of_random_cells_build_at_the_search_setting():
    space = CellSearchSpace(num_repeats=2, filters=4, num_classes=10, input_shape=(8, 8, 3))
    for seed in range(200):
        hp = random_hyperparameters(space, 1000 + seed)
        model = space.build(hp)
        assert_valid_network(space, model, space.cell_structure(hp), 8)
        assert len(representation_endpoints(model)) == 8  # the paper's 8 RDMs


def test_the_output_joins_unread_blocks_and_forced_inputs():
    blocks = (
        Block((PREV_CELL, PREV_PREV_CELL), ("sep_conv_3x3", "identity")),
        Block(("block_1", PREV_CELL), ("max_pool_3x3", "conv_1x7_7x1")),
        Block(("block_1", PREV_PREV_CELL), ("avg_pool_3x3", "dilated_conv_3x3")),
    )
    assert CellStructure.from_blocks(blocks).concatenated == ("block_2", "block_3")
    forced = CellStructure.from_blocks(blocks, concat_prev_cell=True, concat_prev_prev_cell=True)
    assert forced.concatenated == (PREV_CELL, PREV_PREV_CELL, "block_2", "block_3")
    # An input no block reads is an unused state too: it joins the output, so earlier cells stay connected.
    only_prev_prev = (Block((PREV_PREV_CELL, PREV_PREV_CELL), ("sep_conv_3x3", "identity")),)
    assert CellStructure.from_blocks(only_prev_prev).concatenated == (PREV_CELL, "block_1")
    # NASNet-A's normal cell is the rule with prev_prev_cell forced in: its authors' code concatenates it.
    assert CellStructure.from_blocks(NASNET_A_NORMAL.blocks, concat_prev_prev_cell=True) == NASNET_A_NORMAL
    # The published PNASNet-5 and NASNet-A reduction cells also join blocks that others read.
    assert CellStructure.from_blocks(PNASNET_5.blocks).concatenated == (
        "block_1",
        "block_2",
        "block_4",
        "block_5",
    )
    assert PNASNET_5.concatenated == ("block_1", "block_2", "block_3", "block_4", "block_5")
    assert NASNET_A_REDUCTION.concatenated == ("block_2", "block_3", "block_4", "block_5")
    assert (
        str(PNASNET_5).splitlines()[0]
        == "block_1 = sep_conv_5x5(prev_prev_cell) + max_pool_3x3(prev_prev_cell)"
    )


def test_a_cell_that_reads_only_prev_prev_cell_keeps_every_cell_connected():
    space = CellSearchSpace(num_blocks=2, num_repeats=1, filters=4, num_classes=3, input_shape=(8, 8, 1))
    hp = keras_tuner.HyperParameters()
    space.declare_hyperparameters(hp)
    hp.values.update({f"block_{b}_input_{k}": PREV_PREV_CELL for b in (1, 2) for k in (1, 2)})
    model = space.build(hp)
    assert_valid_network(space, model, space.cell_structure(hp), 8)


def test_block_sources_are_the_cell_inputs_and_earlier_blocks():
    assert block_sources(1) == [PREV_CELL, PREV_PREV_CELL]
    assert block_sources(3) == [PREV_CELL, PREV_PREV_CELL, "block_1", "block_2"]


def test_values_outside_the_space_are_a_build_error_naming_the_block():
    space = CellSearchSpace(num_blocks=2, num_classes=3, input_shape=(8, 8, 1))
    hp = keras_tuner.HyperParameters()
    space.declare_hyperparameters(hp)
    hp.values["block_2_op_1"] = "sep_conv_9x9"
    with pytest.raises(CandidateBuildError, match=r"Block 2: operation 1 is 'sep_conv_9x9'"):
        space.build(hp)
    hp.values["block_2_op_1"] = "identity"
    hp.values["block_1_input_2"] = "block_1"
    with pytest.raises(CandidateBuildError, match=r"Block 1: input 2 is 'block_1'"):
        space.build(hp)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"num_blocks": 0}, "num_blocks must be a positive integer"),
        ({"filters": 1}, "filters must be at least 2"),
        ({"num_classes": 1}, "num_classes must be at least 2"),
        ({"input_shape": (8, 8)}, "input_shape must be"),
        ({"layout": "mnist"}, "layout must be one of"),
        ({"drop_first_reductions": 3}, r"drop_first_reductions must be an integer in \[0, 2\]"),
        ({"reduction_placement": "middle"}, "reduction_placement must be one of"),
        ({"reduction_cell": PNASNET_5}, "reduction_cell needs a normal_cell"),
        ({"normal_cell": CellStructure((), ("block_1",))}, "normal_cell is not a valid cell"),
        ({"optimizer": keras.optimizers.SGD()}, "not an optimizer instance"),
    ],
)
def test_bad_arguments_are_refused_by_name(arguments, message):
    kwargs = {"num_classes": 10, "input_shape": (8, 8, 3), **arguments}
    with pytest.raises((ValueError, TypeError), match=message):
        CellSearchSpace(**kwargs)


def test_imagenet_layout_and_dropping_the_first_reductions():
    full = CellSearchSpace(
        num_repeats=1, filters=8, num_classes=5, input_shape=(64, 64, 3), layout="imagenet"
    )
    assert [(plan.reduction, plan.filters) for plan in full.network_plan()] == [
        (True, 2), (True, 4), (False, 8), (True, 16), (False, 16), (True, 32), (False, 32)
    ]  # fmt: skip
    search = CellSearchSpace(
        num_repeats=2,
        filters=8,
        num_classes=5,
        input_shape=(64, 64, 3),
        layout="imagenet",
        drop_first_reductions=2,
    )
    hp = random_hyperparameters(search, 3)
    model = search.build(hp)
    assert len(representation_endpoints(model)) == 3 * 2 + 2
    assert model.get_layer("stem_conv").output.shape[1] == 31  # 3×3, stride 2, no padding: (64 - 3) // 2 + 1
    sizes = [model.get_layer(f"cell_{n}").output.shape[1] for n in range(1, 9)]
    assert sizes == [31, 31, 16, 16, 16, 8, 8, 8]


def test_unknown_preset_is_refused():
    with pytest.raises(
        ValueError, match=r"Unknown cell preset 'sagenet'; the presets are \['nasnet_a', 'pnasnet_5'\]"
    ):
        CellSearchSpace.preset("sagenet", num_classes=10, input_shape=(32, 32, 3))


@pytest.mark.parametrize(
    ("name", "layout", "published_params", "published_flops", "cells"),
    [
        ("nasnet_a", "cifar", 3.3e6, None, 20),  # Table 2: N = 6, F = 32
        ("pnasnet_5", "cifar", 3.2e6, None, 9),  # Table 2: N = 3, F = 48
        ("nasnet_a", "imagenet", 5.3e6, 1.16e9, 16),  # Table 3: N = 4, F = 44
        ("pnasnet_5", "imagenet", 5.4e6, 1.30e9, 11),  # Table 3: N = 3, F = 56
    ],
)
def test_presets_have_the_published_size(name, layout, published_params, published_flops, cells):
    num_classes, input_shape = (10, (32, 32, 3)) if layout == "cifar" else (1000, (224, 224, 3))
    space = CellSearchSpace.preset(name, num_classes=num_classes, input_shape=input_shape, layout=layout)
    model = space.build(keras_tuner.HyperParameters())
    assert abs(model.count_params() / published_params - 1) < 0.10
    if published_flops is not None:
        assert abs(count_flops(model) / published_flops - 1) < 0.10
    assert len(representation_endpoints(model)) == cells
    assert model.name == name


def test_a_preset_network_saves_and_loads_safely(tmp_path):
    space = CellSearchSpace.preset("nasnet_a", num_classes=3, input_shape=(8, 8, 3), num_repeats=1, filters=4)
    model = space.model_from_cells(space.normal_cell, space.reduction_cell)
    images = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    path = tmp_path / "nasnet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-6)
    assert representation_endpoints(loaded) == [f"cell_{n}" for n in range(1, 6)]


def test_a_searched_cell_rebuilds_at_another_n_and_f():
    search = CellSearchSpace(num_classes=10, input_shape=(16, 16, 3), filters=4)
    hp = random_hyperparameters(search, 7)
    full = CellSearchSpace(num_repeats=3, filters=8, num_classes=10, input_shape=(16, 16, 3))
    model = full.build(hp)
    assert full.cell_structure(hp) == search.cell_structure(hp)
    assert len(representation_endpoints(model)) == 3 * 3 + 2


def test_a_two_trial_tpe_search_scores_cells(tmp_path):
    splits = digits(image_size=8, probe_size=20)
    teacher = resnet_cifar(depth=8, num_classes=10, input_shape=(8, 8, 1))
    teacher_path = tmp_path / "teacher.h5"
    register_teacher(teacher, splits.x_probe, splits.y_probe, path=teacher_path, verbose=0)
    space = CellSearchSpace(num_blocks=1, num_repeats=1, filters=4, num_classes=10, input_shape=(8, 8, 1))
    tuner = SageTuner(
        space,
        teacher=teacher_path,
        premature_steps=1,
        oracle=TPEOracle(max_trials=2, seed=1),
        directory=tmp_path,
        project_name="cells",
    )
    tuner.search(
        splits.x_train[:64],
        splits.y_train[:64],
        validation_data=(splits.x_val[:32], splits.y_val[:32]),
        batch_size=16,
        verbose=0,
    )
    trials = [
        json.loads(path.read_text()) for path in sorted((tmp_path / "cells").glob("trial_*/trial.json"))
    ]
    assert len(trials) == 2
    for trial in trials:
        assert trial["status"] == "COMPLETED", trial.get("message")
        metrics = {name: m["observations"][-1]["value"][0] for name, m in trial["metrics"]["metrics"].items()}
        assert metrics["score"] == pytest.approx(metrics["premature_accuracy"] + metrics["teacher_guidance"])
        assert 0 <= metrics["premature_accuracy"] <= 1 and -1 <= metrics["teacher_guidance"] <= 1
        hp = keras_tuner.HyperParameters.from_config(trial["hyperparameters"])
        model = space.build(hp)
        assert metrics["params"] == model.count_params()
        assert metrics["flops"] == count_flops(model)
    side_file = json.loads(
        (tmp_path / "cells" / f"trial_{trials[0]['trial_id']}" / "teacher_guidance.json").read_text()
    )
    assert set(side_file["best_student_layers"].values()) <= {f"cell_{n}" for n in range(1, 6)}
