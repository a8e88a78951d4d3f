"""The science of a search: its records, tables and plots (and, in later modules, pools of architectures,
predictivity with controls, α calibration, replay and the markdown report).

Example:

```python
from keras_sage.analysis import format_table, plot_search, search_summary, trial_records

records = trial_records(tuner)
print(format_table([search_summary("P+TG", tuner)]))
plot_search({"P+TG": records}, "search.png")
```
"""

from keras_sage.analysis.plots import plot_search
from keras_sage.analysis.records import (
    ProjectRecords,
    TrialRecord,
    best_so_far,
    project_records,
    record_from_trial_state,
    search_summary,
    trial_records,
)
from keras_sage.analysis.tables import format_table

__all__ = [
    "ProjectRecords",
    "TrialRecord",
    "best_so_far",
    "format_table",
    "plot_search",
    "project_records",
    "record_from_trial_state",
    "search_summary",
    "trial_records",
]
