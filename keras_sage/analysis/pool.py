"""Pools: architectures trained once to maturity, scored by P and TG at budgets on the way (paper §4.1).

A pool is the unit of the science: it answers "does TG at a short budget predict mature accuracy better
than P does?" without any further training. It is a list of plain dict rows, one per (architecture,
budget), saved as JSON Lines:

- `arch_id`, `budget` (SGD steps), `examples` (examples processed by SGD at that budget), `seed`;
- `premature_accuracy` (P) and `teacher_guidance` (TG) at that budget, and each `S_<teacher layer>`;
- one column per control teacher (`TG_untrained`, `TG_labels`, ...), scored like TG;
- `mature_accuracy` (the same in every row of an architecture), `depth` (the number of representation
  endpoints: the layers of a layer-wise space, the cells of a cell network), `params`, `flops`;
- `hyperparameters` (the architecture's values), and `failure` (why an architecture could not be
  trained or scored, else absent; its numbers are then NaN);
- optionally the field's proxies at initialisation (`synflow`, `snip`, `grad_norm`, `naswot`: the same in
  every row of an architecture, controls beside `params` and `flops`), and, when the mature accuracy is
  looked up instead of trained (a NAS-Bench-201 cell), `mature_accuracy_source` naming the table, and the
  cell's `arch_string`.

Every row of an architecture is appended in one write once the architecture is done, so a killed build
loses at most the architecture in progress and `build_pool` with the same arguments resumes after the
last complete one. A truncated last line (a kill mid-write) is ignored on reading.

`build_pool` (in `keras_sage.analysis.pool_builder`, which imports TensorFlow) makes one; this module
reads and writes them and imports no TensorFlow.

Example:

```python
pool = build_pool(
    CNNSearchSpace(max_layers=5, num_classes=10, input_shape=(16, 16, 1)),
    "teacher.h5",
    digits(image_size=16),
    n=20,
    budgets=(0, 10, 40),
    mature_epochs=10,
    controls={"TG_labels": "labels.h5"},
    path="pool.jsonl",
)
predictivity(pool)
```
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keras_sage import contract

# The pool's columns besides the trial metrics of `keras_sage.contract` (premature_accuracy,
# teacher_guidance, S_<layer>, params, flops, mature_accuracy).
ARCH_ID = "arch_id"
BUDGET = "budget"  # SGD steps
EXAMPLES = "examples"  # examples processed by SGD at the budget
MATURE_ACCURACY = contract.MATURE_ACCURACY
DEPTH = "depth"
SEED = "seed"
HYPERPARAMETERS = "hyperparameters"
FAILURE = "failure"
MATURE_ACCURACY_SOURCE = "mature_accuracy_source"  # where a looked-up mature accuracy comes from
ARCH_STRING = "arch_string"  # a NAS-Bench-201 cell's arch string
# Control scores, each scored like TG against a control teacher.
TG_UNTRAINED = "TG_untrained"  # TG to an untrained copy of the teacher
TG_LABELS = "TG_labels"  # similarity to the RDM of the one-hot probe labels
LOG_FLOPS = "log_flops"  # log of the `flops` column, derived on reading


def read_pool(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a pool file (JSON Lines), in file order.

    A last line without its newline (a build killed mid-write) is ignored with a warning; any other line
    that is not a JSON object is an error naming the file and line.

    Args:
        path: The pool file.

    Returns:
        The rows, as dicts (NaN where the file holds `NaN`).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete, tail = lines[:-1], lines[-1]
    if tail.strip():
        warnings.warn(f"{path}: ignoring an incomplete last line (a build stopped mid-write)", stacklevel=2)
    rows = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not a JSON object ({error.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {number}: not a JSON object")
        rows.append(row)
    return rows


def append_rows(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Appends rows to a pool file in one write, flushed to disk (a kill leaves at most a partial line).

    A partial last line left by an earlier kill is cut off first, so the new rows start on a line of
    their own.
    """
    path = Path(path)
    text = "".join(json.dumps(dict(row), sort_keys=False) + "\n" for row in rows)
    if path.exists():
        with open(path, "rb+") as file:
            content = file.read()
            file.truncate(content.rfind(b"\n") + 1)
    with open(path, "a", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def architecture_ids(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The architectures of a pool, in first-appearance order."""
    return list(dict.fromkeys(str(row[ARCH_ID]) for row in rows))


def examples_after(steps: int, n_examples: int, batch_size: int) -> int:
    """Examples SGD has processed after `steps` steps over `n_examples` arrays in batches of `batch_size`.

    Each epoch has ⌈n / b⌉ batches, the last one holding the remainder.
    """
    batches_per_epoch = math.ceil(n_examples / batch_size)
    epochs, batches = divmod(steps, batches_per_epoch)
    return epochs * n_examples + min(batches * batch_size, n_examples)
