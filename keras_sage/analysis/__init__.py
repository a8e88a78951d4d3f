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

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keras_sage.analysis.beyond_proxies import BeyondProxy, teacher_beyond_proxy
    from keras_sage.analysis.control_teachers import AgainstControl, teacher_against_control
    from keras_sage.analysis.plots import (
        plot_alpha_sweep,
        plot_predictivity,
        plot_predictor_scatter,
        plot_replay,
        plot_search,
    )
    from keras_sage.analysis.pool import append_rows, architecture_ids, read_pool
    from keras_sage.analysis.pool_builder import build_pool, labels_teacher
    from keras_sage.analysis.predictors import AlphaCalibration, calibrate_alpha, predictivity, to_dataframe
    from keras_sage.analysis.records import (
        ProjectRecords,
        TrialRecord,
        best_so_far,
        front_trial_ids,
        project_records,
        record_from_trial_state,
        search_summary,
        trial_records,
    )
    from keras_sage.analysis.report import pool_report, project_report, searches_report
    from keras_sage.analysis.search_comparison import SearchComparison, compare_searches, describe_comparisons
    from keras_sage.analysis.search_replay import (
        EfficiencyRatio,
        ReplayResult,
        efficiency_ratio,
        replay,
        replay_curve,
    )
    from keras_sage.analysis.tables import format_table

# Public name -> module that defines it; imported on first use, so that a module that needs one name (the
# command line's tables, say) does not import matplotlib, scipy or TensorFlow with the rest.
_EXPORTS: dict[str, str] = {
    "AgainstControl": "keras_sage.analysis.control_teachers",
    "AlphaCalibration": "keras_sage.analysis.predictors",
    "BeyondProxy": "keras_sage.analysis.beyond_proxies",
    "EfficiencyRatio": "keras_sage.analysis.search_replay",
    "ProjectRecords": "keras_sage.analysis.records",
    "ReplayResult": "keras_sage.analysis.search_replay",
    "SearchComparison": "keras_sage.analysis.search_comparison",
    "TrialRecord": "keras_sage.analysis.records",
    "append_rows": "keras_sage.analysis.pool",
    "architecture_ids": "keras_sage.analysis.pool",
    "best_so_far": "keras_sage.analysis.records",
    "build_pool": "keras_sage.analysis.pool_builder",
    "calibrate_alpha": "keras_sage.analysis.predictors",
    "compare_searches": "keras_sage.analysis.search_comparison",
    "describe_comparisons": "keras_sage.analysis.search_comparison",
    "efficiency_ratio": "keras_sage.analysis.search_replay",
    "format_table": "keras_sage.analysis.tables",
    "front_trial_ids": "keras_sage.analysis.records",
    "labels_teacher": "keras_sage.analysis.pool_builder",
    "plot_alpha_sweep": "keras_sage.analysis.plots",
    "plot_predictivity": "keras_sage.analysis.plots",
    "plot_predictor_scatter": "keras_sage.analysis.plots",
    "plot_replay": "keras_sage.analysis.plots",
    "plot_search": "keras_sage.analysis.plots",
    "pool_report": "keras_sage.analysis.report",
    "predictivity": "keras_sage.analysis.predictors",
    "project_records": "keras_sage.analysis.records",
    "project_report": "keras_sage.analysis.report",
    "read_pool": "keras_sage.analysis.pool",
    "record_from_trial_state": "keras_sage.analysis.records",
    "replay": "keras_sage.analysis.search_replay",
    "replay_curve": "keras_sage.analysis.search_replay",
    "search_summary": "keras_sage.analysis.records",
    "searches_report": "keras_sage.analysis.report",
    "teacher_against_control": "keras_sage.analysis.control_teachers",
    "teacher_beyond_proxy": "keras_sage.analysis.beyond_proxies",
    "to_dataframe": "keras_sage.analysis.predictors",
    "trial_records": "keras_sage.analysis.records",
}

__all__ = [
    "AgainstControl",
    "AlphaCalibration",
    "BeyondProxy",
    "EfficiencyRatio",
    "ProjectRecords",
    "ReplayResult",
    "SearchComparison",
    "TrialRecord",
    "append_rows",
    "architecture_ids",
    "best_so_far",
    "build_pool",
    "calibrate_alpha",
    "compare_searches",
    "describe_comparisons",
    "efficiency_ratio",
    "format_table",
    "front_trial_ids",
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
    "searches_report",
    "teacher_against_control",
    "teacher_beyond_proxy",
    "to_dataframe",
    "trial_records",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
