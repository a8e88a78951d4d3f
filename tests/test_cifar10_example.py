"""examples/cifar10_science.py: the teacher's training clock, over a training resumed in pieces."""

import importlib
import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cifar10_science.py"


@pytest.fixture(scope="module")
def example():
    sys.path.insert(0, str(EXAMPLE.parent))
    return importlib.import_module("cifar10_science")


def tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def test_a_resumed_training_counts_the_seconds_of_every_piece(example, tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 4)).astype("float32"), rng.integers(0, 2, 32)
    backup, seconds_file = tmp_path / "backup", tmp_path / "backup-seconds.json"

    def piece(epochs: int, *clocks):
        callbacks = [keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False), *clocks]
        return tiny_model().fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks)

    first = example.TrainingClock(seconds_file)
    assert len(piece(2, first).epoch) == 2
    assert (
        json.loads(seconds_file.read_text()) == {"epochs": 2, "seconds": first.seconds} and first.seconds > 0
    )

    # The next piece resumes at the third epoch; its clock adds that epoch's seconds to the first piece's.
    resumed, this_piece_only = example.TrainingClock(seconds_file), example.TrainingClock(None)
    assert piece(3, resumed, this_piece_only).epoch == [2]
    assert this_piece_only.seconds > 0
    assert resumed.seconds == pytest.approx(first.seconds + this_piece_only.seconds, abs=0.05)
    assert json.loads(seconds_file.read_text()) == {"epochs": 3, "seconds": resumed.seconds}

    # A count left by an earlier training is not added to one that starts from scratch.
    shutil.rmtree(backup)
    fresh = example.TrainingClock(seconds_file)
    assert len(piece(1, fresh).epoch) == 1
    assert json.loads(seconds_file.read_text()) == {"epochs": 1, "seconds": fresh.seconds}
    assert fresh.seconds < resumed.seconds


def test_a_count_that_is_not_a_clocks_names_its_file(example, tmp_path):
    path = tmp_path / "seconds.json"
    path.write_text('{"seconds": 3.0}')
    with pytest.raises(ValueError, match=f"{path} is not a training clock's count"):
        example.TrainingClock(path).on_train_begin()
