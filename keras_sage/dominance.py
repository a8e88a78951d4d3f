"""Pareto dominance on arrays: the non-dominated rows, NSGA-II's crowding distance, the most spread rows.

A row dominates another if it is at least as large in every column and larger in one (every column is
maximised; negate a column to minimise it). Numpy only, so the analysis (which imports no TensorFlow) and
the tuners (`keras_sage.tuners.pareto`) share it.

Example:

```python
points = np.array([[0.9, 0.1], [0.5, 0.5], [0.4, 0.4], [0.1, 0.9]])
non_dominated(points)                  # [0, 1, 3]
crowding_distances(points[[0, 1, 3]])  # [inf, 2.0, inf]
most_spread(points[[0, 1, 3]], 2)      # [0, 2]
```
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["crowding_distances", "most_spread", "non_dominated"]


def non_dominated(points: npt.ArrayLike) -> list[int]:
    """The rows of `points` (one per trial, every column maximised) that no other row dominates.

    Args:
        points: An (n, m) array.

    Returns:
        Their indices, ascending; rows equal to each other are all kept.
    """
    values = np.asarray(points, dtype=np.float64)
    front = []
    for index, point in enumerate(values):
        dominated = np.any(np.all(values >= point, axis=1) & np.any(values > point, axis=1))
        if not dominated:
            front.append(index)
    return front


def crowding_distances(points: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """NSGA-II's crowding distance of each row of a front (Deb et al., 2002).

    For each objective the rows are sorted; the two extremes get infinity, every other row the gap between
    its two neighbours divided by the objective's range (0 where the range is 0); the distance is the sum.

    Args:
        points: An (n, m) array, one row per front member.

    Returns:
        The n distances.
    """
    values = np.asarray(points, dtype=np.float64)
    distances = np.zeros(len(values))
    if len(values) <= 2:
        return np.full(len(values), np.inf)
    for column in values.T:
        order = np.argsort(column, kind="stable")
        sorted_column = column[order]
        spread = sorted_column[-1] - sorted_column[0]
        distances[order[0]] = distances[order[-1]] = np.inf
        if spread > 0:
            distances[order[1:-1]] += (sorted_column[2:] - sorted_column[:-2]) / spread
    return distances


def most_spread(points: npt.ArrayLike, k: int) -> list[int]:
    """The k rows of a front with the largest crowding distances (ties: the earlier row), ascending."""
    distances = crowding_distances(points)
    order = sorted(range(len(distances)), key=lambda index: (-distances[index], index))
    return sorted(order[:k])
