"""keras_sage.nasbench201: arch strings and NASLib ids both ways, and AnalogNAS-Bench's table read safely."""

import collections
import importlib.metadata
import itertools
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from keras_sage import nasbench201
from keras_sage.nasbench201 import (
    OPERATIONS,
    arch_strings,
    format_arch_string,
    from_naslib_ids,
    mature_accuracy,
    parse_arch_string,
    read_table,
    to_naslib_ids,
)

# NAS-Bench-201's published best CIFAR-10 cell.
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
EVERY_CELL = [format_arch_string(operations) for operations in itertools.product(OPERATIONS, repeat=6)]


def test_an_arch_string_lists_node_1_then_node_2_then_node_3s_edges():
    operations = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none")
    arch_string = "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert format_arch_string(operations) == arch_string
    assert parse_arch_string(arch_string) == operations


def test_naslib_ids_reorder_the_edges_and_renumber_the_operations():
    # Edges 0→1 none (1), 0→2 skip (0), 1→2 1×1 (3), 0→3 3×3 (2), 1→3 pool (4), 2→3 none (1), listed by
    # NASLib as 0→1, 0→2, 0→3, 1→2, 1→3, 2→3.
    arch_string = "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert to_naslib_ids(arch_string) == (1, 0, 2, 3, 4, 1)
    assert from_naslib_ids((1, 0, 2, 3, 4, 1)) == arch_string
    assert to_naslib_ids(BEST) == (2, 2, 0, 2, 2, 2)
    assert from_naslib_ids(np.array([0, 0, 0, 0, 0, 0])) == ALL_SKIP


def test_every_cell_round_trips_through_both_encodings():
    assert len(set(EVERY_CELL)) == 15_625
    naslib = set()
    for arch_string in EVERY_CELL:
        assert format_arch_string(parse_arch_string(arch_string)) == arch_string
        ids = to_naslib_ids(arch_string)
        naslib.add(ids)
        assert from_naslib_ids(ids) == arch_string
    assert naslib == set(itertools.product(range(5), repeat=6))


@pytest.mark.parametrize(
    ("arch_string", "message"),
    [
        ("|none~0|+|none~0|none~1|", "has 2 node group"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", "node 3's group"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1's group"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", r"must read '<operation>~0'"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", r"must read '<operation>~0'"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv_5x5'"),
        (7, "must be a str"),
    ],
)
def test_a_malformed_arch_string_is_one_line_naming_it(arch_string, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_arch_string(arch_string)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "ids", [(5, 0, 0, 0, 0, 0), (0, 0, 0, 0, 0), (True, 0, 0, 0, 0, 0), (-1, 0, 0, 0, 0, 0)]
)
def test_bad_naslib_ids_are_refused(ids):
    with pytest.raises(ValueError, match=r"6 integer ids in \[0, 4\]"):
        from_naslib_ids(ids)


def test_format_refuses_a_wrong_number_or_unknown_operation():
    with pytest.raises(ValueError, match="6 edges, got 5"):
        format_arch_string(["none"] * 5)
    with pytest.raises(ValueError, match="'sep_conv_3x3'"):
        format_arch_string(["none"] * 5 + ["sep_conv_3x3"])


# The installed table (the `nasbench` extra, which `make test` installs).


def test_the_table_covers_every_cell_with_fractions():
    cells = arch_strings()
    assert sorted(cells) == sorted(EVERY_CELL)
    accuracies = np.array([mature_accuracy(cell) for cell in cells])
    # data.anb stores percentages; the all-skip cell's is 60.7836.
    assert mature_accuracy(ALL_SKIP) == pytest.approx(0.607836)
    assert accuracies.min() == pytest.approx(0.10)
    assert accuracies.max() == pytest.approx(0.940664)


def test_the_published_best_cell_is_in_the_tables_top_5():
    cells = arch_strings()
    ranked = sorted(cells, key=mature_accuracy, reverse=True)
    assert ranked.index(BEST) < 5
    assert mature_accuracy(BEST) == pytest.approx(0.93988)


def test_the_conv_count_ranks_the_cells_as_the_table_does():
    # 9·#3×3 + #1×1, a cell's convolution weights in units of C²: Spearman ≈ 0.74 with the right mapping
    # of edges and operation ids (0.45 with NAS-Bench-201's ids read as NASLib's).
    cells = arch_strings()
    conv_count = [
        9 * parse_arch_string(cell).count("nor_conv_3x3") + parse_arch_string(cell).count("nor_conv_1x1")
        for cell in cells
    ]
    accuracies = [mature_accuracy(cell) for cell in cells]
    assert spearmanr(conv_count, accuracies).statistic == pytest.approx(0.74, abs=0.01)


def test_reading_the_table_never_imports_the_package():
    mature_accuracy(BEST)
    assert "analognasbench" not in sys.modules


def test_arch_strings_is_a_new_list_each_time():
    cells = arch_strings()
    cells.clear()
    assert len(arch_strings()) == 15_625


def test_mature_accuracy_refuses_a_string_that_is_no_cell():
    with pytest.raises(ValueError, match="unknown operation 'conv_7x7'"):
        mature_accuracy(BEST.replace("skip_connect", "conv_7x7"))


# Without the extra.


@pytest.fixture
def fresh_table_cache():
    nasbench201._installed_table.cache_clear()
    yield
    nasbench201._installed_table.cache_clear()


def test_without_the_extra_one_line_says_how_to_install_it(monkeypatch, fresh_table_cache):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ImportError) as caught:
        mature_accuracy(BEST)
    message = str(caught.value)
    assert 'pip install "keras-sage[nasbench]"' in message
    assert "analog-nasbench" in message
    assert "\n" not in message
    with pytest.raises(ImportError, match=r"keras-sage\[nasbench\]"):
        arch_strings()


def test_an_installation_without_its_table_is_reported(monkeypatch, tmp_path, fresh_table_cache):
    installed = types.SimpleNamespace(version="0.1.3", locate_file=lambda relative: tmp_path / relative)
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: installed)
    with pytest.raises(ImportError, match=r"0\.1\.3 is installed but has no analognasbench/data\.anb"):
        arch_strings()


# Planted and malformed files: data, never run.


class PlantedCommand:
    """Unpickled blindly, runs a shell command that creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_pickle_that_would_run_a_command_is_refused(tmp_path):
    marker = tmp_path / "ran"
    planted = tmp_path / "data.anb"
    planted.write_bytes(pickle.dumps({(0, 0, 0, 0, 0, 0): PlantedCommand(marker)}))
    with pytest.raises(ValueError) as caught:
        read_table(planted)
    message = str(caught.value)
    assert str(planted) in message
    assert f"refused global {os.system.__module__}.system" in message
    assert "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (pickle.dumps({"a": collections.OrderedDict()}), "refused global collections.OrderedDict"),
        (b"not a pickle", "not an AnalogNAS-Bench table"),
        (pickle.dumps([1, 2]), "holds a list, not a dict"),
        (pickle.dumps({(9, 0, 0, 0, 0, 0): 1.0}), r"key \(9, 0, 0, 0, 0, 0\) is not a cell"),
        (pickle.dumps({(0, 0, 0, 0, 0, 0): 60.0}), "is a float, not an Architecture"),
    ],
)
def test_a_file_that_is_not_the_table_is_refused_naming_it(tmp_path, content, message):
    path = tmp_path / "data.anb"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as caught:
        read_table(path)
    assert str(path) in str(caught.value)


@pytest.fixture
def table_classes(monkeypatch) -> types.ModuleType:
    """Stand-ins for `analognasbench.data`'s two classes, so that a test can write tables as it does."""
    package = types.ModuleType("analognasbench")
    module = types.ModuleType("analognasbench.data")
    for name in ("Architecture", "DriftMeasurement"):
        stand_in = type(name, (), {"__module__": module.__name__})
        setattr(module, name, stand_in)
    package.data = module
    monkeypatch.setitem(sys.modules, package.__name__, package)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def write_table(path: Path, module: types.ModuleType, accuracies: dict[tuple[int, ...], float]) -> None:
    """A table as data.anb holds it: NASLib ids → Architecture, whose drifts are DriftMeasurements."""
    table = {}
    for ids, accuracy in accuracies.items():
        record = module.Architecture()
        record.architecture = ids
        record.baseline_accuracy = accuracy
        record.analog_drift_60 = module.DriftMeasurement()
        record.analog_drift_60.value, record.analog_drift_60.uncertainty = 10.0, 0.0
        table[ids] = record
    path.write_bytes(pickle.dumps(table, protocol=4))


def every_cell_at(accuracy: float) -> dict[tuple[int, ...], float]:
    return dict.fromkeys(itertools.product(range(5), repeat=6), accuracy)


def test_a_table_reads_as_fractions_keyed_by_arch_string(tmp_path, table_classes):
    accuracies = every_cell_at(50.0)
    accuracies[(2, 2, 0, 2, 2, 2)] = 94.0
    path = tmp_path / "data.anb"
    write_table(path, table_classes, accuracies)
    table = read_table(path)
    assert len(table) == 15_625
    assert table[BEST] == pytest.approx(0.94)
    assert table[ALL_SKIP] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({(0, 0, 0, 0, 0, 0): 150.0}, r"baseline_accuracy 150\.0 is not a percentage"),
        ({(0, 0, 0, 0, 0, 0): float("nan")}, "baseline_accuracy nan is not a percentage"),
        ({(0, 0, 0, 0, 0, 0): None}, "holds 15624 cells, not the space's 15625"),
    ],
)
def test_a_table_with_a_bad_row_is_refused(tmp_path, table_classes, change, message):
    accuracies = every_cell_at(50.0)
    for ids, accuracy in change.items():
        if accuracy is None:
            del accuracies[ids]
        else:
            accuracies[ids] = accuracy
    path = tmp_path / "data.anb"
    write_table(path, table_classes, accuracies)
    with pytest.raises(ValueError, match=message):
        read_table(path)


def test_a_record_for_another_architecture_is_refused(tmp_path, table_classes):
    path = tmp_path / "data.anb"
    write_table(path, table_classes, every_cell_at(50.0))
    table = pickle.loads(path.read_bytes())
    table[(0, 0, 0, 0, 0, 0)].architecture = (1, 1, 1, 1, 1, 1)
    path.write_bytes(pickle.dumps(table, protocol=4))
    with pytest.raises(ValueError, match=r"cell \(0, 0, 0, 0, 0, 0\)'s record describes architecture"):
        read_table(path)
