"""Pools: the JSON Lines format, resuming, and `build_pool` on digits (3 architectures, 2 budgets)."""

import json
import math

import keras
import numpy as np
import pytest

from keras_sage import contract
from keras_sage.analysis.pool import append_rows, architecture_ids, examples_after, read_pool
from keras_sage.datasets import digits
from keras_sage.hypermodels import CNNSearchSpace
from keras_sage.rsa import rdm
from keras_sage.teachers import TeacherStore

BATCH_SIZE = 32


def test_examples_after_counts_the_short_last_batch():
    # 70 examples in batches of 32: 32, 32, 6 per epoch.
    assert [examples_after(steps, 70, 32) for steps in (0, 1, 2, 3, 4, 6)] == [0, 32, 64, 70, 102, 140]


def test_rows_round_trip_and_a_truncated_last_line_is_ignored(tmp_path):
    path = tmp_path / "pool.jsonl"
    append_rows(path, [{"arch_id": "0000", "budget": 0, "mature_accuracy": math.nan}])
    append_rows(path, [{"arch_id": "0001", "budget": 0}, {"arch_id": "0001", "budget": 5}])
    with open(path, "a") as file:
        file.write('{"arch_id": "0002", "bud')  # a kill mid-write
    with pytest.warns(UserWarning, match="incomplete last line"):
        rows = read_pool(path)
    assert architecture_ids(rows) == ["0000", "0001"]
    assert math.isnan(rows[0]["mature_accuracy"]) and rows[2]["budget"] == 5
    # The next append starts on a line of its own; the partial line is gone.
    append_rows(path, [{"arch_id": "0002", "budget": 0}])
    assert architecture_ids(read_pool(path)) == ["0000", "0001", "0002"]


def test_a_line_that_is_not_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text('{"arch_id": "0000"}\nnot json\n')
    with pytest.raises(ValueError, match=r"pool\.jsonl, line 2"):
        read_pool(path)


@pytest.fixture(scope="module")
def data():
    return digits(image_size=8, probe_size=30, seed=0)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory, data):
    from keras_sage.analysis.pool_builder import labels_teacher

    folder = tmp_path_factory.mktemp("teachers")
    store = TeacherStore.create(folder / "teacher.h5", data.x_probe, data.y_probe)
    flat = data.x_probe.reshape(len(data.x_probe), -1)
    store.add_rdm("L1", rdm(np.maximum(flat @ np.random.default_rng(1).normal(size=(64, 16)), 0), name="L1"))
    store.add_rdm("L2", rdm(flat, name="L2"))
    labels_path = labels_teacher(folder / "labels.h5", data.x_probe, data.y_probe)
    return {"teacher": folder / "teacher.h5", "labels": labels_path}


def test_labels_teacher_is_zero_within_a_class_and_one_and_a_ninth_between(teachers, data):
    labels_rdm = TeacherStore.open(teachers["labels"]).rdms()["labels"].square()
    same = data.y_probe[:, None] == data.y_probe[None, :]
    off_diagonal = ~np.eye(len(data.y_probe), dtype=bool)
    np.testing.assert_allclose(labels_rdm[same & off_diagonal], 0, atol=1e-6)
    np.testing.assert_allclose(labels_rdm[~same], 1 + 1 / 9, atol=1e-5)


def test_build_pool_scores_each_budget_of_one_training_and_resumes(tmp_path, teachers, data):
    from keras_sage.analysis.pool_builder import build_pool

    space = CNNSearchSpace(max_layers=3, num_classes=10, input_shape=(8, 8, 1))
    path = tmp_path / "pool.jsonl"
    arguments = dict(
        n=3,
        budgets=(0, 4),
        mature_epochs=1,
        controls={"TG_labels": teachers["labels"]},
        path=path,
        batch_size=BATCH_SIZE,
        seed=7,
        verbose=False,
    )
    rows = build_pool(space, teachers["teacher"], data, **arguments)
    assert len(rows) == 6 and architecture_ids(rows) == ["0000", "0001", "0002"]
    assert read_pool(path) == json.loads(json.dumps(rows))  # what is returned is what is on disk
    for arch_id in architecture_ids(rows):
        at_init, at_four = (row for row in rows if row["arch_id"] == arch_id)
        assert (at_init["budget"], at_four["budget"]) == (0, 4)
        assert (at_init["examples"], at_four["examples"]) == (0, 4 * BATCH_SIZE)
        assert at_init["mature_accuracy"] == at_four["mature_accuracy"]
        assert at_init["hyperparameters"] == at_four["hyperparameters"]
        for row in (at_init, at_four):
            assert row["teacher_guidance"] == pytest.approx((row["S_L1"] + row["S_L2"]) / 2)
            assert -1 <= row["TG_labels"] <= 1 and 0 <= row["premature_accuracy"] <= 1
            assert row["depth"] == row["hyperparameters"]["num_layers"]
            assert row[contract.PARAMS] > 0 and row[contract.FLOPS] > 0
        # Four SGD steps change the weights: P or TG moves.
        moved = (at_four["premature_accuracy"], at_four["S_L1"])
        assert (at_init["premature_accuracy"], at_init["S_L1"]) != moved

    # Resuming trains nothing more: the file is unchanged and the same rows come back.
    before = path.read_bytes()
    assert build_pool(space, teachers["teacher"], data, **arguments) == rows
    assert path.read_bytes() == before

    # The same seed gives the same pool.
    again = build_pool(space, teachers["teacher"], data, **{**arguments, "path": tmp_path / "again.jsonl"})
    assert again == rows


def test_build_pool_refuses_budgets_past_maturity(teachers, data):
    from keras_sage.analysis.pool_builder import build_pool

    space = CNNSearchSpace(max_layers=2, num_classes=10, input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="budgets must lie in"):
        build_pool(space, teachers["teacher"], data, n=1, budgets=(0, 10_000), mature_epochs=1, verbose=False)


def test_a_looked_up_pool_trains_only_to_its_largest_budget_and_records_proxies(tmp_path, teachers, data):
    from keras_sage.analysis.pool_builder import build_pool
    from keras_sage.hypermodels import NASBench201SearchSpace
    from keras_sage.proxies import synflow

    space = NASBench201SearchSpace(num_classes=10, input_shape=(8, 8, 1), num_repeats=1, filters=4)
    cells = [
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
        "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    ]
    looked_up = {cell: 0.5 + position / 10 for position, cell in enumerate(cells)}
    rows = build_pool(
        space,
        teachers["teacher"],
        data,
        hyperparameters=[space.from_arch_string(cell) for cell in cells],
        budgets=(0, 3),
        mature_accuracy=lambda hp: looked_up[space.to_arch_string(hp)],
        mature_accuracy_source="a table",
        proxies=("synflow", "naswot"),
        path=tmp_path / "pool.jsonl",
        batch_size=BATCH_SIZE,
        seed=2,
        verbose=False,
    )
    assert [row["arch_string"] for row in rows] == [cells[0], cells[0], cells[1], cells[1]]
    assert [row["mature_accuracy"] for row in rows] == [0.5, 0.5, 0.6, 0.6]
    assert {row["mature_accuracy_source"] for row in rows} == {"a table"}
    assert [row["examples"] for row in rows] == [0, 3 * BATCH_SIZE] * 2
    # The proxies are those of the network at initialisation, rebuilt with the same seed.
    keras.utils.set_random_seed(2)
    assert rows[0]["synflow"] == pytest.approx(synflow(space.build(space.from_arch_string(cells[0]))))
    assert rows[0]["synflow"] == rows[1]["synflow"] and np.isfinite(rows[0]["naswot"])
    # Plain dicts of values are architectures too (as the pool's own `hyperparameters` column holds them).
    again = build_pool(
        space,
        teachers["teacher"],
        data,
        hyperparameters=[row["hyperparameters"] for row in rows[::2]],
        budgets=(0,),
        mature_accuracy=lambda hp: looked_up[space.to_arch_string(hp)],
        seed=2,
        verbose=False,
    )
    assert [row["arch_string"] for row in again] == cells
    assert [row["hyperparameters"] for row in again] == [row["hyperparameters"] for row in rows[::2]]
    with pytest.raises(ValueError, match="either mature_epochs"):
        build_pool(space, teachers["teacher"], data, n=1, budgets=(0,), verbose=False)
    with pytest.raises(ValueError, match="unknown proxies jacov"):
        build_pool(space, teachers["teacher"], data, n=1, budgets=(0,), mature_epochs=1, proxies=("jacov",))
