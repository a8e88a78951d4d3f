"""NAS-Bench-201 (Dong & Yang, ICLR 2020): its cell encoding, and its ground truth read safely.

**Cells.** A cell has 4 nodes: node 0 is the cell's input, node 3 its output, and each node j > 0 sums the
results of its edges i → j (i < j). Each of the 6 edges applies one of `OPERATIONS`, so the space has
5^6 = 15,625 cells. An arch string lists the edges into node 1, into node 2 and into node 3 as three
groups, each edge as `<operation>~<source>`:
`|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|`.
Its edges come in the order of `EDGES`: (0→1), (0→2), (1→2), (0→3), (1→3), (2→3). This module is the one
place that knows the encoding; the search space (`keras_sage.hypermodels.NASBench201SearchSpace`) reads
and writes arch strings through it.

**NASLib's encoding**, which the ground-truth table keys by, is a tuple of 6 operation ids (0
`skip_connect`, 1 `none`, 2 `nor_conv_3x3`, 3 `nor_conv_1x1`, 4 `avg_pool_3x3`: `NASLIB_OPERATIONS`) over
the edges in another order, `NASLIB_EDGES`: (0→1), (0→2), (0→3), (1→2), (1→3), (2→3).
`to_naslib_ids` and `from_naslib_ids` convert.

**Ground truth.** `mature_accuracy` and `arch_strings` read the table of the `analog-nasbench` package
(AnalogNAS-Bench, Benmeziane et al. 2025, arXiv:2506.18495), an optional extra:
`pip install "keras-sage[nasbench]"`. Its `baseline_accuracy` is the CIFAR-10 accuracy, in percent, of
each NAS-Bench-201 cell trained in full precision; this module returns it as a fraction in [0, 1]. It is
AnalogNAS-Bench's training of the space, not NAS-Bench-201's own table (its best cell reaches 94.07%,
and NAS-Bench-201's published best cell is third), so a result names it: `MATURE_ACCURACY_SOURCE`.

The table, `data.anb`, is a pickle of the package's two classes, `analognasbench.data.Architecture` and
`DriftMeasurement`. It is read with a restricted unpickler that maps exactly those two names to plain
records and refuses every other global (a pickle naming `os.system` is an error, and nothing runs); the
package's own module is never imported (it unpickles blindly, and imports `pkg_resources`). Its file is
found through the installed distribution's metadata, which runs none of its code.

Example:

```python
from keras_sage import nasbench201

best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
nasbench201.mature_accuracy(best)  # 0.93988
nasbench201.to_naslib_ids(best)  # (2, 2, 0, 2, 2, 2)
len(nasbench201.arch_strings())  # 15625
```
"""

from __future__ import annotations

import functools
import importlib.metadata
import numbers
import pickle
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from keras_sage._errors import first_line

__all__ = [
    "DISTRIBUTION",
    "EDGES",
    "MATURE_ACCURACY_SOURCE",
    "NASLIB_EDGES",
    "NASLIB_OPERATIONS",
    "NUM_ARCHITECTURES",
    "OPERATIONS",
    "arch_string_of_values",
    "arch_strings",
    "edge_hyperparameter",
    "format_arch_string",
    "from_naslib_ids",
    "mature_accuracy",
    "parse_arch_string",
    "read_table",
    "sample_arch_strings",
    "table_path",
    "to_naslib_ids",
]

# NAS-Bench-201's operations, in its own order.
OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# The edges (source, target) in the order an arch string lists them: node 1's, node 2's, node 3's inputs.
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_NODES = 4
NUM_ARCHITECTURES = len(OPERATIONS) ** len(EDGES)  # 15,625
# NASLib's operation ids (the position in this tuple) and its edge order.
NASLIB_OPERATIONS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))

DISTRIBUTION = "analog-nasbench"
TABLE_FILE = "analognasbench/data.anb"
MATURE_ACCURACY_SOURCE = (
    "AnalogNAS-Bench (analog-nasbench 0.1.3, data.anb): baseline_accuracy / 100, the full-precision "
    "CIFAR-10 accuracy of the NAS-Bench-201 cell"
)
INSTALL_HINT = 'install the optional extra with `pip install "keras-sage[nasbench]"`'
# The only globals data.anb names; each becomes a plain record of the attributes the file sets.
_PICKLED_MODULE = "analognasbench.data"
_ARCHITECTURE_CLASS = "Architecture"
_DRIFT_CLASS = "DriftMeasurement"
_PERCENT = 100.0


def parse_arch_string(arch_string: str) -> tuple[str, ...]:
    """The operations of a cell's edges, in the order of `EDGES`, from its NAS-Bench-201 arch string.

    Args:
        arch_string: `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, each `op` one of `OPERATIONS`.

    Returns:
        Six operation names: edges (0→1), (0→2), (1→2), (0→3), (1→3), (2→3).

    Raises:
        ValueError: If the string is not a NAS-Bench-201 cell, naming it and what is wrong.

    Example:

    ```python
    parse_arch_string("|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    # ("skip_connect", "none", "nor_conv_1x1", "avg_pool_3x3", "none", "nor_conv_3x3")
    ```
    """
    if not isinstance(arch_string, str):
        raise ValueError(f"An arch string must be a str, got {arch_string!r}.")
    groups = arch_string.split("+")
    if len(groups) != NUM_NODES - 1:
        raise ValueError(
            f"Arch string {arch_string!r} has {len(groups)} node group(s) joined by '+'; a NAS-Bench-201 "
            f"cell has {NUM_NODES - 1}."
        )
    operations: list[str] = []
    for target, group in enumerate(groups, start=1):
        entries = group.split("|")
        if len(entries) != target + 2 or entries[0] or entries[-1]:
            raise ValueError(
                f"Arch string {arch_string!r}: node {target}'s group {group!r} must be {target} edge(s), "
                "each between '|'."
            )
        for source, entry in enumerate(entries[1:-1]):
            operation, separator, written_source = entry.partition("~")
            if not separator or written_source != str(source):
                raise ValueError(
                    f"Arch string {arch_string!r}: edge {entry!r} into node {target} must read "
                    f"'<operation>~{source}'."
                )
            if operation not in OPERATIONS:
                raise ValueError(
                    f"Arch string {arch_string!r}: unknown operation {operation!r}; the operations are "
                    f"{', '.join(OPERATIONS)}."
                )
            operations.append(operation)
    return tuple(operations)


def format_arch_string(operations: Sequence[str]) -> str:
    """The NAS-Bench-201 arch string of a cell whose edges, in the order of `EDGES`, apply `operations`.

    Args:
        operations: Six names from `OPERATIONS`: edges (0→1), (0→2), (1→2), (0→3), (1→3), (2→3).

    Returns:
        The arch string, `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.

    Raises:
        ValueError: If there are not six operations, or one is unknown.

    Example:

    ```python
    format_arch_string(["nor_conv_3x3"] * 6)
    # "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    ```
    """
    operations = tuple(operations)
    if len(operations) != len(EDGES):
        raise ValueError(f"A NAS-Bench-201 cell has {len(EDGES)} edges, got {len(operations)} operations.")
    for operation in operations:
        if operation not in OPERATIONS:
            raise ValueError(f"Unknown operation {operation!r}; the operations are {', '.join(OPERATIONS)}.")
    groups = []
    for target in range(1, NUM_NODES):
        edges = [
            f"{operation}~{source}"
            for (source, edge_target), operation in zip(EDGES, operations, strict=True)
            if edge_target == target
        ]
        groups.append(f"|{'|'.join(edges)}|")
    return "+".join(groups)


def edge_hyperparameter(source: int, target: int) -> str:
    """The name of `NASBench201SearchSpace`'s `Choice` of the operation of edge `source` → `target`:
    `edge_<source>_<target>`."""
    return f"edge_{source}_{target}"


def arch_string_of_values(values: Mapping[str, Any]) -> str | None:
    """The arch string of a `NASBench201SearchSpace` trial from its hyperparameter values, as its
    `trial.json` records them (`hyperparameters.values`).

    Args:
        values: Hyperparameter names and values.

    Returns:
        The arch string, or None if the values do not name a NAS-Bench-201 operation for every edge (a
        trial of another search space).

    Example:

    ```python
    arch_string_of_values({f"edge_{s}_{t}": "nor_conv_3x3" for s, t in EDGES})
    ```
    """
    operations = [values.get(edge_hyperparameter(source, target)) for source, target in EDGES]
    if not all(isinstance(operation, str) and operation in OPERATIONS for operation in operations):
        return None
    return format_arch_string([str(operation) for operation in operations])


def to_naslib_ids(arch_string: str) -> tuple[int, ...]:
    """NASLib's encoding of a cell: its operation ids over the edges in NASLib's order.

    Args:
        arch_string: The cell's NAS-Bench-201 arch string.

    Returns:
        Six ids (0 `skip_connect`, 1 `none`, 2 `nor_conv_3x3`, 3 `nor_conv_1x1`, 4 `avg_pool_3x3`) of
        edges (0→1), (0→2), (0→3), (1→2), (1→3), (2→3).

    Raises:
        ValueError: If `arch_string` is not a NAS-Bench-201 cell.

    Example:

    ```python
    to_naslib_ids("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|")
    # (1, 0, 2, 3, 4, 1)
    ```
    """
    by_edge = dict(zip(EDGES, parse_arch_string(arch_string), strict=True))
    return tuple(NASLIB_OPERATIONS.index(by_edge[edge]) for edge in NASLIB_EDGES)


def from_naslib_ids(ids: Iterable[int]) -> str:
    """The NAS-Bench-201 arch string of a cell in NASLib's encoding (see `to_naslib_ids`).

    Args:
        ids: Six operation ids in [0, 4], over the edges in NASLib's order.

    Returns:
        The arch string.

    Raises:
        ValueError: If `ids` is not six integers in [0, 4].

    Example:

    ```python
    from_naslib_ids((1, 0, 2, 3, 4, 1))
    # "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    ```
    """
    try:
        values = tuple(ids)
    except TypeError:
        values = ()
    valid = len(values) == len(NASLIB_EDGES) and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) and 0 <= i < len(NASLIB_OPERATIONS)
        for i in values
    )
    if not valid:
        raise ValueError(
            f"NASLib's encoding of a cell is {len(NASLIB_EDGES)} integer ids in "
            f"[0, {len(NASLIB_OPERATIONS) - 1}], got {ids!r}."
        )
    by_edge = {edge: NASLIB_OPERATIONS[int(i)] for edge, i in zip(NASLIB_EDGES, values, strict=True)}
    return format_arch_string([by_edge[edge] for edge in EDGES])


class _PickledRecord:
    """An object of one of data.anb's classes, as plain data: the attributes the file sets, nothing run."""

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
            raise pickle.UnpicklingError(f"a {type(self).__name__} record's state is not named attributes")
        self.fields = state


class _Architecture(_PickledRecord):
    """`analognasbench.data.Architecture`: `architecture` (NASLib ids), `baseline_accuracy` (%), ..."""

    __slots__ = ()


class _DriftMeasurement(_PickledRecord):
    """`analognasbench.data.DriftMeasurement`: `value` and `uncertainty` (read, never used here)."""

    __slots__ = ()


class _TableUnpickler(pickle.Unpickler):
    """Resolves exactly data.anb's two class names, to plain records; refuses every other global.

    The file needs nothing else: its other contents are dicts, tuples, ints, floats and strings, which
    pickle builds without a global.
    """

    _RECORDS: ClassVar[dict[tuple[str, str], type[_PickledRecord]]] = {
        (_PICKLED_MODULE, _ARCHITECTURE_CLASS): _Architecture,
        (_PICKLED_MODULE, _DRIFT_CLASS): _DriftMeasurement,
    }

    def find_class(self, module: str, name: str) -> type[_PickledRecord]:
        record = self._RECORDS.get((module, name))
        if record is None:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name}: the table may name only {_PICKLED_MODULE}."
                f"{_ARCHITECTURE_CLASS} and {_DRIFT_CLASS}"
            )
        return record


def table_path() -> Path:
    """Where the installed `analog-nasbench` keeps its table, found without running any of its code.

    Returns:
        The path of `analognasbench/data.anb` in the installed distribution.

    Raises:
        ImportError: If `analog-nasbench` is not installed (the message says how to install it), or its
            table is missing.

    Example:

    ```python
    table_path()  # .../site-packages/analognasbench/data.anb
    ```
    """
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            f"The NAS-Bench-201 ground truth needs {DISTRIBUTION}, which is not installed; {INSTALL_HINT}."
        ) from None
    path = Path(str(distribution.locate_file(TABLE_FILE)))
    if not path.is_file():
        raise ImportError(
            f"{DISTRIBUTION} {distribution.version} is installed but has no {TABLE_FILE} ({path}); "
            f"reinstall it: {INSTALL_HINT}."
        )
    return path


def read_table(path: str | Path) -> dict[str, float]:
    """Reads an AnalogNAS-Bench table (`data.anb`) without running any of it: arch string → accuracy.

    Args:
        path: The pickled table: a dict from NASLib ids to `Architecture` objects.

    Returns:
        Each of the 15,625 cells' arch string → its `baseline_accuracy` as a fraction in [0, 1], in the
        file's order.

    Raises:
        ValueError: If the file is not such a table, naming the file and what is wrong: a global other
            than the table's two classes (refused before anything it names could run), a key that is not a
            cell, a record without an accuracy in [0, 100], or a table that lacks cells.
        OSError: If the file cannot be opened.

    Example:

    ```python
    accuracies = read_table(table_path())
    max(accuracies.values())  # 0.940664
    ```
    """
    with open(path, "rb") as file:
        try:
            loaded = _TableUnpickler(file).load()
        except Exception as error:  # a corrupt pickle can raise almost anything; the file is data
            raise ValueError(f"{path}: not an AnalogNAS-Bench table: {first_line(error)}") from None
    if not isinstance(loaded, dict):
        raise ValueError(
            f"{path}: not an AnalogNAS-Bench table: it holds a {type(loaded).__name__}, not a dict."
        )
    table: dict[str, float] = {}
    for key, record in loaded.items():
        try:
            arch_string = from_naslib_ids(key)
        except ValueError as error:
            raise ValueError(f"{path}: key {key!r} is not a cell: {error}") from None
        table[arch_string] = _accuracy(path, key, record)
    if len(table) != NUM_ARCHITECTURES:
        raise ValueError(f"{path}: holds {len(table)} cells, not the space's {NUM_ARCHITECTURES}.")
    return table


def _accuracy(path: str | Path, key: tuple[int, ...], record: Any) -> float:
    """The `baseline_accuracy` of one table row, checked and converted from percent to a fraction."""
    if not isinstance(record, _Architecture):
        raise ValueError(
            f"{path}: the value of cell {key} is a {type(record).__name__}, not an Architecture."
        )
    if record.fields.get("architecture") != key:
        raise ValueError(
            f"{path}: cell {key}'s record describes architecture {record.fields.get('architecture')!r}."
        )
    accuracy = record.fields.get("baseline_accuracy")
    if (
        isinstance(accuracy, bool)
        or not isinstance(accuracy, numbers.Real)
        or not 0 <= float(accuracy) <= 100
    ):
        raise ValueError(f"{path}: cell {key}'s baseline_accuracy {accuracy!r} is not a percentage.")
    return float(accuracy) / _PERCENT


@functools.lru_cache(maxsize=1)
def _installed_table() -> dict[str, float]:
    """The installed table, read once per process."""
    return read_table(table_path())


def sample_arch_strings(count: int, seed: int) -> list[str]:
    """`count` cells drawn uniformly without replacement from the table (seeded), as arch strings.

    The draw is a permutation of the sorted arch strings (`numpy.random.default_rng(seed)`), so the first
    k of a larger draw are the draw of k: a run that grows resumes with the same cells.
    """
    import numpy as np

    strings = sorted(arch_strings())
    return [strings[position] for position in np.random.default_rng(seed).permutation(len(strings))[:count]]


def mature_accuracy(arch_string: str) -> float:
    """The mature CIFAR-10 accuracy of a NAS-Bench-201 cell, from AnalogNAS-Bench (`MATURE_ACCURACY_SOURCE`).

    Args:
        arch_string: The cell's NAS-Bench-201 arch string.

    Returns:
        Its `baseline_accuracy`, as a fraction in [0, 1].

    Raises:
        ValueError: If `arch_string` is not a NAS-Bench-201 cell.
        ImportError: If the `nasbench` extra is not installed (the message says how to install it).

    Example:

    ```python
    mature_accuracy("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
                    "nor_conv_3x3~2|")  # 0.93988
    ```
    """
    parse_arch_string(arch_string)  # A string it accepts is written as the table's keys are.
    return _installed_table()[arch_string]


def arch_strings() -> list[str]:
    """The arch strings of the 15,625 cells of the table, in its order.

    Returns:
        A new list of arch strings.

    Raises:
        ImportError: If the `nasbench` extra is not installed (the message says how to install it).

    Example:

    ```python
    cells = arch_strings()
    best = max(cells, key=mature_accuracy)
    ```
    """
    return list(_installed_table())
