"""The science of a search: its records, tables and plots; for a pool of architectures trained at several
budgets, the predictivity of mature accuracy with controls, α calibration and replayed searches.

Example:

```python
from keras_sage.analysis import format_table, plot_search, search_summary, trial_records

records = trial_records(tuner)
print(format_table([search_summary("P+TG", tuner)]))
plot_search({"P+TG": records}, "search.png")
```

For a pool (a list of dict rows, one per architecture and budget):

```python
from keras_sage.analysis import calibrate_alpha, efficiency_ratio, plot_predictivity, predictivity

rows = predictivity(pool)
plot_predictivity(rows, "figures/predictivity")
print(calibrate_alpha(pool, budget=200).alpha)
print(efficiency_ratio(pool, [100, 200, 400], alpha=1.0, trials_grid=range(1, 41)).ratio)
```
"""

from typing import Any

from keras_sage.analysis.plots import (
    plot_alpha_sweep,
    plot_predictivity,
    plot_predictor_scatter,
    plot_replay,
    plot_search,
)
from keras_sage.analysis.pool import append_rows, architecture_ids, read_pool
from keras_sage.analysis.predictivity import AlphaCalibration, calibrate_alpha, predictivity, to_dataframe
from keras_sage.analysis.records import (
    ProjectRecords,
    TrialRecord,
    best_so_far,
    project_records,
    record_from_trial_state,
    search_summary,
    trial_records,
)
from keras_sage.analysis.replay import EfficiencyRatio, ReplayResult, efficiency_ratio, replay, replay_curve
from keras_sage.analysis.report import pool_report, project_report
from keras_sage.analysis.tables import format_table

# Names that train models, imported (with TensorFlow) on first use.
_TRAINING = {
    "build_pool": "keras_sage.analysis.pool_builder",
    "labels_teacher": "keras_sage.analysis.pool_builder",
}

__all__ = [
    "AlphaCalibration",
    "EfficiencyRatio",
    "ProjectRecords",
    "ReplayResult",
    "TrialRecord",
    "append_rows",
    "architecture_ids",
    "best_so_far",
    "build_pool",
    "calibrate_alpha",
    "efficiency_ratio",
    "format_table",
    "labels_teacher",
    "plot_alpha_sweep",
    "plot_predictivity",
    "plot_predictor_scatter",
    "plot_replay",
    "plot_search",
    "pool_report",
    "predictivity",
    "project_records",
    "project_report",
    "read_pool",
    "record_from_trial_state",
    "replay",
    "replay_curve",
    "search_summary",
    "to_dataframe",
    "trial_records",
]


def __getattr__(name: str) -> Any:
    if name in _TRAINING:
        import importlib

        return getattr(importlib.import_module(_TRAINING[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
