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

from keras_sage.analysis.plots import (
    plot_alpha_sweep,
    plot_predictivity,
    plot_predictor_scatter,
    plot_replay,
    plot_search,
)
from keras_sage.analysis.predictivity import AlphaCalibration, calibrate_alpha, predictivity, to_dataframe
from keras_sage.analysis.records import TrialRecord, best_so_far, search_summary, trial_records
from keras_sage.analysis.replay import EfficiencyRatio, ReplayResult, efficiency_ratio, replay, replay_curve
from keras_sage.analysis.tables import format_table

__all__ = [
    "AlphaCalibration",
    "EfficiencyRatio",
    "ReplayResult",
    "TrialRecord",
    "best_so_far",
    "calibrate_alpha",
    "efficiency_ratio",
    "format_table",
    "plot_alpha_sweep",
    "plot_predictivity",
    "plot_predictor_scatter",
    "plot_replay",
    "plot_search",
    "predictivity",
    "replay",
    "replay_curve",
    "search_summary",
    "to_dataframe",
    "trial_records",
]
