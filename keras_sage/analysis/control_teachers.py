"""Is it the *trained* teacher? TG against a pool's control teachers, out of sample, at one budget.

A TG that predicts mature accuracy beyond P may owe nothing to the teacher's training: an untrained copy of
the teacher (`TG_untrained`) or the RDM of the labels (`TG_labels`) can carry what a student's size or its
class separation already says. `teacher_against_control` sets P + α·TG against P + α′·control: on one
random half of the architectures the best α of each is chosen (the highest correlation with mature
accuracy), on the other half r(P + α·TG) − r(P + α′·control) is measured (`held_out_comparison`), over
many splits. Each score gets its own α, from the same grid in TG's units (α′ scaled by sd(TG) / sd(control)),
so neither is handicapped by a weight chosen for the other or by its spread.

Example:

```python
result = teacher_against_control(pool, budget=39, control="TG_untrained")
shown = result is not None and result.interval[0] > 0  # the trained teacher adds to its untrained copy
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_sage import contract
from keras_sage.analysis.pool import MATURE_ACCURACY, TG_LABELS, TG_UNTRAINED
from keras_sage.analysis.predictors import (
    DEFAULT_ALPHAS,
    DEFAULT_SPLITS,
    column,
    held_out_comparison,
    rows_at_budget,
)
from keras_sage.analysis.tables import table_section
from keras_sage.score import combined_score

__all__ = ["CONTROL_TEACHERS", "AgainstControl", "controls_section", "teacher_against_control"]

# The control teachers a pool may score its students against (`build_pool(..., controls=...)`).
CONTROL_TEACHERS = (TG_UNTRAINED, TG_LABELS)


@dataclass(frozen=True)
class AgainstControl:
    """The trained teacher's TG against one control teacher's at one budget (see the module docstring).

    Attributes:
        budget: The budget (SGD steps).
        control: The control's column, e.g. `TG_untrained`.
        delta: The median over the splits of r(P + α·TG) − r(P + α′·control) on the held-out half.
        interval: The central 95% of that difference over the splits.
        splits: The number of splits that gave a difference.
        n: The architectures with P, TG, the control and mature accuracy.
    """

    budget: int
    control: str
    delta: float
    interval: tuple[float, float]
    splits: int
    n: int

    def table_row(self) -> dict[str, Any]:
        """The result as one row of the report's table of the controls."""
        return {
            "budget": self.budget,
            "control": self.control,
            "Δ held out": self.delta,
            "Δ low": self.interval[0],
            "Δ high": self.interval[1],
            "splits": self.splits,
            "n": self.n,
        }


def teacher_against_control(
    pool: Sequence[Mapping[str, Any]],
    budget: int,
    control: str = TG_UNTRAINED,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    method: str = "spearman",
    n_splits: int = DEFAULT_SPLITS,
    seed: int = 0,
) -> AgainstControl | None:
    """P + α·TG against P + α′·control, each α chosen on one half of the architectures, compared on the
    other.

    Args:
        pool: The pool's rows.
        budget: The budget (SGD steps).
        control: The control teacher's column (one of `CONTROL_TEACHERS`).
        alphas: The α to choose from; α′ from the same grid times sd(TG) / sd(control).
        method: `"spearman"` or `"pearson"`.
        n_splits: Random splits in halves.
        seed: Seed of the splits.

    Returns:
        An `AgainstControl`, or None where fewer than 6 architectures have P, TG, the control and mature
        accuracy (a pool without that control among them), or no split gives a difference.

    Raises:
        ValueError: If `control` is not one of `CONTROL_TEACHERS`.
    """
    if control not in CONTROL_TEACHERS:
        raise ValueError(f"control must be one of {', '.join(CONTROL_TEACHERS)}; got {control!r}")
    rows = rows_at_budget(pool, budget)
    premature, guidance = column(rows, contract.PREMATURE_ACCURACY), column(rows, contract.TEACHER_GUIDANCE)
    control_guidance, target = column(rows, control), column(rows, MATURE_ACCURACY)
    kept = (
        np.isfinite(premature) & np.isfinite(guidance) & np.isfinite(control_guidance) & np.isfinite(target)
    )
    if kept.sum() < 6:
        return None
    premature, guidance, control_guidance = premature[kept], guidance[kept], control_guidance[kept]
    # α′ in TG's units: the control's grid is scaled by sd(TG) / sd(control), so a control of another
    # spread can reach the weight TG's grid gives TG.
    spread = np.std(control_guidance)
    scale = float(np.std(guidance) / spread) if spread > 0 else 1.0
    reference = np.stack([combined_score(premature, control_guidance, alpha * scale) for alpha in alphas])
    challenger = np.stack([combined_score(premature, guidance, alpha) for alpha in alphas])
    held_out = held_out_comparison(
        reference, challenger, target[kept], method=method, n_splits=n_splits, seed=seed
    )
    if not held_out.splits:
        return None
    return AgainstControl(
        budget=budget,
        control=control,
        delta=held_out.delta,
        interval=held_out.interval,
        splits=held_out.splits,
        n=int(kept.sum()),
    )


def controls_section(results: Sequence[AgainstControl]) -> list[str]:
    """The pool report's section of the trained teacher against its controls (no lines without results).

    Args:
        results: `teacher_against_control`'s results, e.g. for each budget and control.

    Returns:
        Markdown lines.
    """
    return table_section(
        "The trained teacher against its controls",
        "P + α·TG against P + α′·control, each α chosen on one half of the architectures and the two "
        "compared on the other (`teacher_against_control`; median and central 95% of the splits).",
        [result.table_row() for result in results],
    )
