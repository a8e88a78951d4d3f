"""examples/neural_teacher.py scaled down: simulated recordings, their teacher file, both searches."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from keras_sage.teachers import TeacherStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "neural_teacher.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("neural_teacher", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_family_and_distance_of_the_hidden_network(example):
    hidden = dict(example.hidden_hyperparameters(4).values)
    assert example.distance_to_hidden(hidden) == 0 and example.in_hidden_family(hidden)
    # Two layers deeper with 7×7 kernels: 2 layers + one kernel step of 2.
    deeper = {**hidden, "num_layers": 5, **{f"kernel_height_{i}": 7 for i in range(1, 6)}}
    deeper.update({f"kernel_width_{i}": 7 for i in range(1, 6)})
    assert example.distance_to_hidden(deeper) == 3 and not example.in_hidden_family(deeper)
    # Same depth, kernels 3×5, 5×5, 7×7: mean side 5, in the family; one layer 1×1 instead: mean 3.7, out.
    mixed = {**hidden, "kernel_height_1": 3, "kernel_height_3": 7, "kernel_width_3": 7}
    assert example.in_hidden_family(mixed)
    assert example.distance_to_hidden(mixed) == pytest.approx((0.5 + 0 + 1) / 3)
    assert not example.in_hidden_family({**hidden, "kernel_height_1": 1, "kernel_width_1": 1})


@pytest.mark.slow
def test_scaled_down_experiment_guided_arm_is_at_least_as_close(example, tmp_path, capsys):
    rows = example.main(
        [
            "--output", str(tmp_path), "--seeds", "0", "--trials", "5", "--startup-trials", "2",
            "--max-layers", "3", "--sites", "60", "--premature-steps", "10", "--hidden-epochs", "1",
        ]
    )  # fmt: skip
    recordings = np.load(tmp_path / "seed-0" / "recordings.npz")
    assert sorted(recordings.files) == ["IT", "V1", "V4"]
    assert all(recordings[name].shape == (100, 60, 4) for name in recordings.files)
    assert all(np.array_equal(recordings[name], np.round(recordings[name])) for name in recordings.files)
    teacher = TeacherStore.open(tmp_path / "seed-0" / "monkey.h5")
    ceilings = teacher.noise_ceilings()
    assert set(ceilings) == {"V1", "V4", "IT"}
    assert all(0.2 < ceiling.ceiling < 1 for ceiling in ceilings.values())
    guided, unguided = rows
    assert (guided["arm"], unguided["arm"]) == ("guided", "alpha=0")
    assert guided["trials"] == unguided["trials"] == 5
    assert guided["distance"] <= unguided["distance"]
    assert "SIMULATION" in capsys.readouterr().out
