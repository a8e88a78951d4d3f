"""Does the teacher add to the field's best proxy? `teacher_beyond_proxy`, at one budget of a pool.

A pool whose rows carry the field's proxies at initialisation (`build_pool(..., proxies=...)`) can ask
more than "does TG add to P": the field already has training-free scores (synflow, naswot, a size count)
that rank architectures well, and a proxy costs one batch. So, at each budget:

- the best proxy: the one whose Spearman ρ with mature accuracy is highest on the pool (the strongest
  competitor TG can be measured against; chosen on the whole pool, which favours the proxy);
- P + β·x itself: its ρ at the β best on the whole pool (in sample, labelled so), and whether the proxy
  adds to P out of sample (P + β·x against P, β chosen on the other half);
- whether TG adds to it, out of sample: on one random half of the architectures the best P + β·x (x the
  proxy's `keras_sage.score.proxy_term`, β on a grid) and the best P + α·TG + β·x are chosen, and on the
  other half r(P + α·TG + β·x) − r(P + β·x) is measured (`held_out_comparison`), over many splits;
- partial ρ of TG given the size controls (params and log FLOPs) and given the best proxy, with 95%
  percentile intervals from resampling the architectures.

β is searched on a grid of multiples of sd(P) / sd(x) (the pool's spread ratio, a scale only), so that the
same grid fits a proxy of any unit; the score a search would use is then P + α·TG + β·proxy_term(x).

Example:

```python
result = teacher_beyond_proxy(pool, budget=39)
result.proxy, result.delta, result.interval
```
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from keras_sage import contract
from keras_sage.analysis.pool import LOG_FLOPS, MATURE_ACCURACY
from keras_sage.analysis.predictors import (
    DEFAULT_ALPHAS,
    DEFAULT_SPLITS,
    column,
    held_out_comparison,
    resampled_correlation,
    rows_at_budget,
)
from keras_sage.analysis.tables import table_section
from keras_sage.score import combined_score, proxy_term

__all__ = [
    "CANDIDATE_PROXIES",
    "BeyondProxy",
    "describe_beyond_proxy",
    "proxies_section",
    "teacher_beyond_proxy",
]

# The field's zero-cost proxies a pool may carry, in the order ties are broken; params and FLOPs are the
# size controls of the partial correlation instead.
CANDIDATE_PROXIES = (contract.SYNFLOW, contract.NASWOT, contract.SNIP, contract.GRAD_NORM)


@dataclass(frozen=True)
class BeyondProxy:
    """What TG adds to a proxy (the best, or the one named) at one budget (see the module docstring).

    Attributes:
        budget: The budget (SGD steps).
        proxy: The proxy: the best (the highest Spearman ρ with mature accuracy on the pool) unless one was
            named.
        proxy_r: That ρ.
        beta: β of the P + β·proxy_term(x) that correlates best with mature accuracy on the whole pool (in
            the proxy term's units: what `SageTuner(proxy_weights={proxy: beta})` searches by).
        combined_r: ρ(P + β·x) at that β, with its 95% interval: `(r, low, high)` (β chosen in sample).
        proxy_gain: The median held-out r(P + β·x) − r(P), β chosen on the other half.
        proxy_gain_interval: The central 95% of that difference over the splits.
        delta: The median held-out r(P + α·TG + β·x) − r(P + β·x), each chosen on the other half.
        interval: The central 95% of that difference over the splits.
        splits: The number of splits.
        partial_given_size: Partial ρ(TG | params, log FLOPs) with its 95% interval: `(r, low, high)`, on
            the architectures with both.
        partial_given_proxy: Partial ρ(TG | the proxy) with its 95% interval.
        n: The architectures used: P, TG, mature accuracy and the proxy known.
    """

    budget: int
    proxy: str
    proxy_r: float
    beta: float
    combined_r: tuple[float, float, float]
    proxy_gain: float
    proxy_gain_interval: tuple[float, float]
    delta: float
    interval: tuple[float, float]
    splits: int
    partial_given_size: tuple[float, float, float]
    partial_given_proxy: tuple[float, float, float]
    n: int

    def table_row(self) -> dict[str, Any]:
        """The result as one row of the report's table of every proxy."""
        return {
            "budget": self.budget,
            "proxy": self.proxy,
            "ρ(proxy)": self.proxy_r,
            "β": self.beta,
            "ρ(P + β·proxy), β in sample": self.combined_r[0],
            "ρ low": self.combined_r[1],
            "ρ high": self.combined_r[2],
            "proxy's gain over P, held out": self.proxy_gain,
            "gain low": self.proxy_gain_interval[0],
            "gain high": self.proxy_gain_interval[1],
            "Δ held out": self.delta,
            "Δ low": self.interval[0],
            "Δ high": self.interval[1],
            "partial ρ(TG | proxy)": self.partial_given_proxy[0],
            "low": self.partial_given_proxy[1],
            "high": self.partial_given_proxy[2],
            "partial ρ(TG | size)": self.partial_given_size[0],
            "n": self.n,
        }


def teacher_beyond_proxy(
    pool: Sequence[Mapping[str, Any]],
    budget: int,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    # The α grid for β too: where P ranks the architectures backwards, the best β likewise runs to the
    # proxy alone.
    betas: Sequence[float] = DEFAULT_ALPHAS,
    n_resamples: int = 2000,
    n_splits: int = DEFAULT_SPLITS,
    seed: int = 0,
    proxy: str | None = None,
) -> BeyondProxy | None:
    """Whether TG adds to the field's best proxy (or to `proxy`) at one budget of a pool, out of sample.

    Args:
        pool: The pool's rows, with proxy columns.
        budget: The budget (SGD steps).
        proxy: The proxy to set TG against (one of `CANDIDATE_PROXIES`); None for the pool's best.
        alphas: The α of TG to choose from.
        betas: Multiples of sd(P) / sd(proxy_term(x)) to choose β from.
        n_resamples: Resamples of the architectures behind the partial correlations' intervals.
        n_splits: Random splits in halves for the held-out comparison.
        seed: Seed of the resamples and the splits.

    Returns:
        A `BeyondProxy`, or None when the pool has no zero-cost proxy column (or not `proxy`'s) or fewer
        than 6 architectures with P, TG, mature accuracy and the proxy.

    Raises:
        ValueError: If `proxy` is not one of `CANDIDATE_PROXIES`.
    """
    if proxy is not None and proxy not in CANDIDATE_PROXIES:
        raise ValueError(f"proxy must be one of {', '.join(CANDIDATE_PROXIES)}; got {proxy!r}")
    rows = rows_at_budget(pool, budget)
    present = [
        name for name in CANDIDATE_PROXIES if proxy in (None, name) and any(name in row for row in rows)
    ]
    if not present:
        return None
    premature = column(rows, contract.PREMATURE_ACCURACY)
    guidance = column(rows, contract.TEACHER_GUIDANCE)
    target = column(rows, MATURE_ACCURACY)
    scored = np.isfinite(premature) & np.isfinite(guidance) & np.isfinite(target)
    terms = {
        name: _finite_terms(name, np.array([_number(row.get(name)) for row in rows])) for name in present
    }
    ranked = {
        name: float(spearmanr(values[scored & np.isfinite(values)], target[scored & np.isfinite(values)])[0])
        if (scored & np.isfinite(values)).sum() >= 3
        else math.nan
        for name, values in terms.items()
    }
    chosen = max(present, key=lambda name: -math.inf if math.isnan(ranked[name]) else ranked[name])
    kept = scored & np.isfinite(terms[chosen])
    if kept.sum() < 6:
        return None
    premature, guidance, target, term = premature[kept], guidance[kept], target[kept], terms[chosen][kept]
    spread = float(np.std(premature) / np.std(term)) if np.std(term) > 0 else 0.0
    weights = [multiple * spread for multiple in betas]
    reference = np.stack([combined_score(premature, 0.0, 0.0, {chosen: (beta, term)}) for beta in weights])
    challenger = np.stack(
        [
            combined_score(premature, guidance, alpha, {chosen: (beta, term)})
            for alpha in alphas
            for beta in weights
        ]
    )
    held_out = held_out_comparison(reference, challenger, target, n_splits=n_splits, seed=seed)
    proxy_gain = held_out_comparison(premature[None], reference, target, n_splits=n_splits, seed=seed)
    on_pool = [float(spearmanr(candidate, target)[0]) for candidate in reference]
    best = int(np.nanargmax(on_pool)) if not np.isnan(on_pool).all() else 0
    size = np.vstack([column(rows, contract.PARAMS), column(rows, LOG_FLOPS)])[:, kept]
    sized = np.isfinite(size).all(axis=0)
    return BeyondProxy(
        budget=budget,
        proxy=chosen,
        proxy_r=ranked[chosen],
        beta=weights[best],
        combined_r=resampled_correlation(reference[best], target, n_resamples=n_resamples, seed=seed),
        proxy_gain=proxy_gain.delta,
        proxy_gain_interval=proxy_gain.interval,
        delta=held_out.delta,
        interval=held_out.interval,
        splits=held_out.splits,
        partial_given_size=resampled_correlation(
            guidance[sized], target[sized], controls=list(size[:, sized]), n_resamples=n_resamples, seed=seed
        ),
        partial_given_proxy=resampled_correlation(
            guidance, target, controls=[term], n_resamples=n_resamples, seed=seed
        ),
        n=int(kept.sum()),
    )


def describe_beyond_proxy(result: BeyondProxy, examples: Mapping[int, Any]) -> str:
    """The plain-words answer against the field's best proxy at one budget, as the pool report gives it.

    Args:
        result: `teacher_beyond_proxy`'s result at that budget for the best proxy (its words call the proxy
            the best).
        examples: Training examples by budget, to name the budget in both units.

    Returns:
        One markdown paragraph, its verdict in bold.
    """
    low, high = result.interval
    verdict = (
        f"TG adds to the field's best proxy here ({result.proxy})"
        if low > 0
        else f"TG is not shown to add to the field's best proxy here ({result.proxy})"
    )
    proxy, shown_examples = result.proxy, examples.get(result.budget, math.nan)
    partial, partial_low, partial_high = result.partial_given_proxy
    return (
        f"**Against the proxies at {result.budget} steps ({shown_examples:,} examples), {verdict}.** "
        f"ρ({proxy}) = {result.proxy_r:.3f} at initialisation; P + α·TG + β·{proxy} against P + β·{proxy}, "
        f"each chosen on one half of the architectures and measured on the "
        f"other ({result.splits} splits): Δρ = {result.delta:+.3f} [{low:+.3f}, {high:+.3f}]; partial "
        f"ρ(TG | {result.proxy}) = {partial:.3f} [{partial_low:.3f}, {partial_high:.3f}]; partial ρ(TG | "
        f"params, log FLOPs) = {result.partial_given_size[0]:.3f} [{result.partial_given_size[1]:.3f}, "
        f"{result.partial_given_size[2]:.3f}]."
    )


def proxies_section(results: Sequence[BeyondProxy]) -> list[str]:
    """The pool report's section of P + β·proxy and TG added to it, for every proxy (no lines without
    results).

    Args:
        results: `teacher_beyond_proxy(..., proxy=...)`'s results, e.g. for each budget and proxy.

    Returns:
        Markdown lines.
    """
    return table_section(
        "P + β·proxy for each of the field's proxies, and TG added to it",
        "The verdict above is against the best proxy; here every proxy the pool holds, at every budget.",
        [result.table_row() for result in results],
    )


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _finite_terms(name: str, values: np.ndarray) -> np.ndarray:
    """A proxy's score terms, −∞ (naswot of coinciding codes, a log of 0) ranked below every finite one."""
    terms = np.asarray(proxy_term(name, values), dtype=np.float64)
    finite = terms[np.isfinite(terms)]
    return np.where(np.isneginf(terms), finite.min() - 1.0, terms) if len(finite) else terms
