"""Every trial of a search as a table: one row per trial, its metrics and its hyperparameters.

`keras-sage export PROJECT_DIR -o trials.csv` (or `.jsonl`) writes it. The project directory is read as
data (`project_records` and each `trial_<id>/trial.json`; nothing unpickled or executed). A row holds
`trial_id`, `status`, `score`, `premature_accuracy` (P), `teacher_guidance` (TG), each `S_<teacher layer>`,
`params`, `flops`, `examples_processed`, `teacher_version`, `mature_accuracy` (for a reranked trial),
`on_front` (on the Pareto front of P and TG, `front_trial_ids`), `message` (why a failed trial failed),
`arch_string` (a `NASBench201SearchSpace` trial's NAS-Bench-201 arch string, from its hyperparameters; only
in searches of that space), then each hyperparameter as `hp.<name>`. A missing value is an empty cell in
CSV and `null` in JSON Lines.

Example:

```python
from keras_sage.analysis.export import export_trials, trial_rows

rows = trial_rows("searches/tg_sage")  # [{"trial_id": "00", "status": "COMPLETED", ...}, ...]
export_trials("searches/tg_sage", "trials.csv")
```
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keras_sage import contract, project_files
from keras_sage._atomic import write_atomically
from keras_sage.analysis.pool import ARCH_STRING
from keras_sage.analysis.records import front_trial_ids, project_records
from keras_sage.nasbench201 import arch_string_of_values

__all__ = ["EXPORT_FORMATS", "HYPERPARAMETER_PREFIX", "ON_FRONT", "export_trials", "trial_rows"]

HYPERPARAMETER_PREFIX = "hp."
ON_FRONT = "on_front"  # whether the trial is on the Pareto front of P and TG
EXPORT_FORMATS = (".csv", ".jsonl")


def trial_rows(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One row per trial of a search's project directory, in the order the trials started.

    Args:
        directory: The project directory (`directory/project_name` of the tuner).

    Returns:
        Rows with the same columns (see the module's docstring); NaN for a metric a trial lacks, None for
        a hyperparameter it did not use.

    Raises:
        FileNotFoundError: The directory holds no search (no `oracle.json` and no trial).
    """
    project = project_records(directory)
    trial_files = project_files.trial_files(Path(directory))
    mature = {str(result["trial_id"]): result[contract.MATURE_ACCURACY] for result in project.reranked}
    layers = list(dict.fromkeys(layer for record in project.records for layer in record.similarities))
    hyperparameters = {
        record.trial_id: _hyperparameter_values(trial_files.get(record.trial_id))
        for record in project.records
    }
    names = list(dict.fromkeys(name for values in hyperparameters.values() for name in values))
    arch_strings = {trial_id: arch_string_of_values(values) for trial_id, values in hyperparameters.items()}
    cells = any(arch_string is not None for arch_string in arch_strings.values())
    front = set(front_trial_ids(project.records))
    rows = []
    for record in project.records:
        row: dict[str, Any] = {
            "trial_id": record.trial_id,
            "status": record.status,
            contract.SCORE: record.score,
            contract.PREMATURE_ACCURACY: record.premature_accuracy,
            contract.TEACHER_GUIDANCE: record.teacher_guidance,
        }
        for layer in layers:
            row[contract.similarity_metric_name(layer)] = record.similarities.get(layer, math.nan)
        row.update(
            {
                contract.PARAMS: record.params,
                contract.FLOPS: record.flops,
                contract.EXAMPLES_PROCESSED: record.examples_processed,
                contract.TEACHER_VERSION: record.teacher_version,
                contract.MATURE_ACCURACY: float(mature.get(record.trial_id, math.nan)),
                ON_FRONT: record.trial_id in front,
                "message": record.message,
            }
        )
        if cells:
            row[ARCH_STRING] = arch_strings[record.trial_id]
        values = hyperparameters[record.trial_id]
        for name in names:
            row[f"{HYPERPARAMETER_PREFIX}{name}"] = values.get(name)
        rows.append(row)
    return rows


def _hyperparameter_values(trial_file: Path | None) -> dict[str, Any]:
    """The hyperparameter values a `trial.json` records (KerasTuner's `hyperparameters.values`)."""
    if trial_file is None:
        return {}
    state = project_files.read_json(trial_file)
    values = state.get("hyperparameters", {}).get("values", {})
    return dict(values) if isinstance(values, Mapping) else {}


def export_trials(directory: str | os.PathLike[str], output: str | os.PathLike[str]) -> int:
    """Writes every trial of a search to a CSV or JSON Lines file (by its suffix), atomically.

    Args:
        directory: The project directory.
        output: A `.csv` or `.jsonl` path.

    Returns:
        The number of trials written.

    Raises:
        ValueError: `output` has another suffix.
        FileNotFoundError: The directory holds no search.
    """
    suffix = Path(output).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ValueError(
            f"cannot export to {output}: give a file ending in {' or '.join(EXPORT_FORMATS)}, not {suffix!r}"
        )
    rows = trial_rows(directory)
    text = _csv_text(rows) if suffix == ".csv" else _json_lines(rows)
    write_atomically(output, lambda file: file.write(text.encode()))
    return len(rows)


def _missing_as_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _missing_as_none(value) for key, value in row.items()})
    return buffer.getvalue()


def _json_lines(rows: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        json.dumps({key: _missing_as_none(value) for key, value in row.items()}) + "\n" for row in rows
    )
