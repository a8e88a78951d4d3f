"""Noise ceilings of a brain region's RDM, from the repeats of its recordings.

A recorded RDM holds noise, so even the true model of the region would not reach a similarity of 1 with
it. Two quantities say how far a model can get, both computed from the repeats (images × sites ×
repeats) with the RDM metric and the comparison method that will score models:

- the split-half reliability, Brain-Score's ceiling: the repeats are split at random into two halves of
  h = ⌊R/2⌋ repeats each, an RDM is computed from each half's mean responses, and the similarity r of the
  two is Spearman–Brown corrected to the full R repeats, k·r / (1 + (k − 1)·r) with k = R/h (k = 2 for an
  even R; a negative r is kept uncorrected). Its mean over the splits is the ceiling; their standard
  deviation is its spread. When there are at most `n_splits` distinct splits, each is used once.
- the lower and upper noise ceiling as rsatoolbox defines them (`rsatoolbox.inference.boot_noise_ceiling`),
  with each repeat as one measurement: an RDM per repeat; the upper bound is the mean similarity of each
  repeat's RDM with the pooled RDM of all repeats, the lower bound with the pooled RDM of the other
  repeats. RDMs are pooled as rsatoolbox pools them for the method: averaged after z-scoring ("pearson",
  "corr_cov") or after scaling to unit root-mean-square ("cosine_cov"), ranks averaged (rank methods).
  These bound the mean similarity of a model with single-repeat RDMs; they need every repeat recorded
  (NaN otherwise).

The ceiling a model's similarity is normalised by is √reliability. The reliability estimates the
similarity of two independent recordings of all R repeats; the noise-free RDM is expected to reach its
square root with one of them (the attenuation formula of classical test theory), so S_i / √reliability
is about 1 for the true model (checked by simulation in tests/test_noise_ceiling.py) and the fraction of
the explainable similarity a model reaches. Brain-Score divides by the reliability itself, which puts
the true model above 1 when the data are noisy. `normalised_similarities` gives S_i / ceiling_i, the
normalised teacher guidance a search can report beside the raw S_i.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_sage.rsa.compare import COMPARE_METHODS, compare
from keras_sage.rsa.dissimilarity import RDM, rdm

DEFAULT_SPLITS = 10


class NoiseCeilingWarning(UserWarning):
    """A region's noise ceiling is low, or cannot be computed: its RDM can hardly guide a search."""


class NoiseCeilingError(ValueError):
    """A region's noise ceiling cannot be computed (fewer than 2 repeats, or no usable split)."""


@dataclass(frozen=True)
class NoiseCeiling:
    """How similar a perfect model of a region could be to its recorded RDM.

    Args:
        reliability: the split-half reliability, Spearman–Brown corrected to all repeats, averaged over
            the splits (Brain-Score's ceiling).
        reliability_std: its standard deviation over the splits (0 with a single split).
        split_reliabilities: the corrected reliability of each split.
        lower: rsatoolbox's lower noise ceiling, repeats as measurements (NaN when some repeat is missing).
        upper: rsatoolbox's upper noise ceiling, likewise.
        method: the comparison method all of them were computed with (see `COMPARE_METHODS`).
        n_repeats: the number of repeats.

    Example:

    ```python
    ceiling = keras_sage.rsa.noise_ceiling(it_responses, name="IT")  # (images, sites, repeats)
    ceiling.ceiling, ceiling.reliability_std, (ceiling.lower, ceiling.upper)
    ```
    """

    reliability: float
    reliability_std: float
    split_reliabilities: np.ndarray
    lower: float
    upper: float
    method: str
    n_repeats: int

    @property
    def ceiling(self) -> float:
        """The ceiling models are normalised by, √reliability (0 for a reliability at or below 0)."""
        return math.sqrt(max(self.reliability, 0.0))


def noise_ceiling(
    responses: Any,
    metric: str = "correlation",
    method: str = "pearson",
    labels: Any = None,
    level: str = "image",
    max_features: int | None = None,
    seed: int = 0,
    n_splits: int = DEFAULT_SPLITS,
    name: str | None = None,
) -> NoiseCeiling:
    """The split-half reliability and the lower/upper noise ceiling of a region's RDM.

    See the module docstring for the definitions. RDMs are computed as `keras_sage.rsa.rdm` computes
    them (same `metric`, `labels`, `level`, `max_features` and `seed`, so the same sites) and compared
    as `keras_sage.rsa.compare(..., method)` compares them. Repeats that were not recorded may be NaN: a
    half averages the repeats it has, and a split in which some (image, site) has no repeat in a half is
    not used.

    Args:
        responses: array (n_images, n_sites, n_repeats).
        metric: the RDM metric (see `keras_sage.rsa.METRICS`).
        method: the comparison method (see `COMPARE_METHODS`).
        labels: one label per image, for `level="category"`.
        level: "image" or "category".
        max_features: sites kept; None keeps all.
        seed: seed of the site subsample and of the random splits.
        n_splits: the number of random splits into halves.
        name: the region's name, used in messages.

    Returns:
        A `NoiseCeiling`.

    Raises:
        NoiseCeilingError: on fewer than 2 repeats, or when no split has every (image, site) recorded in
            both halves.
        ValueError: on responses that are not a real 3-D array, an unknown `method`, or `n_splits` < 1.

    Example:

    ```python
    ceiling = keras_sage.rsa.noise_ceiling(v4_responses, method="spearman", name="V4")
    ```
    """
    where = f"region {name!r}" if name is not None else "responses"
    if method not in COMPARE_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, COMPARE_METHODS))}, got {method!r}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    array = np.asarray(responses)
    if array.dtype.kind not in "biuf" or array.ndim != 3:
        raise ValueError(
            f"{where}: a noise ceiling needs real responses of shape (n_images, n_sites, n_repeats); "
            f"got dtype {array.dtype}, shape {array.shape}"
        )
    n_repeats = array.shape[2]
    if n_repeats < 2:
        raise NoiseCeilingError(f"{where}: the noise ceiling needs at least 2 repeats; got {n_repeats}")
    array = array.astype(np.float64)

    def rdm_of(repeats: Any) -> RDM | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" for missing repeats
            means = np.nanmean(array[:, :, repeats], axis=2)
        if not np.isfinite(means).all():
            return None
        return rdm(
            means, metric=metric, labels=labels, level=level, max_features=max_features, seed=seed, name=name
        )

    half = n_repeats // 2
    stretch = n_repeats / half
    reliabilities = []
    for first, second in _splits(n_repeats, n_splits, seed):
        rdm_first, rdm_second = rdm_of(list(first)), rdm_of(list(second))
        if rdm_first is None or rdm_second is None:
            continue
        r = compare(rdm_first, rdm_second, method)
        # The prophecy extrapolates a positive reliability; a negative r is kept as it is.
        reliabilities.append(stretch * r / (1.0 + (stretch - 1.0) * r) if r > 0 else r)
    if not reliabilities:
        raise NoiseCeilingError(
            f"{where}: no split of the {n_repeats} repeats into halves has every (image, site) recorded "
            "in both halves; the noise ceiling cannot be computed"
        )
    lower, upper = _lower_upper(array, rdm_of, method)
    split_reliabilities = np.asarray(reliabilities, dtype=np.float64)
    return NoiseCeiling(
        reliability=float(np.mean(split_reliabilities)),
        reliability_std=float(np.std(split_reliabilities)),
        split_reliabilities=split_reliabilities,
        lower=lower,
        upper=upper,
        method=method,
        n_repeats=n_repeats,
    )


def normalised_similarities(
    similarities: Mapping[str, float],
    ceilings: Mapping[str, NoiseCeiling],
    method: str | None = None,
) -> dict[str, float]:
    """Each similarity divided by its region's noise ceiling, S_i / ceiling_i.

    Args:
        similarities: teacher layer or region name → similarity S_i (as a scorer reports them).
        ceilings: name → `NoiseCeiling` (e.g. `TeacherStore.noise_ceilings()`).
        method: the comparison method the similarities were computed with; when given, it must be the
            one each ceiling was computed with.

    Returns:
        name → S_i / ceiling_i, for the names that have a ceiling above 0, in the order of
        `similarities`; a name without one (a model layer, a region without repeats) is left out.

    Raises:
        ValueError: when `method` differs from a ceiling's.

    Example:

    ```python
    normalised_similarities({"V4": 0.31, "IT": 0.22}, teacher.noise_ceilings(), method="pearson")
    ```
    """
    normalised = {}
    for name, similarity in similarities.items():
        ceiling = ceilings.get(name)
        if ceiling is None:
            continue
        if method is not None and ceiling.method != method:
            raise ValueError(
                f"the noise ceiling of {name!r} was computed with method {ceiling.method!r}, but the "
                f"similarities with {method!r}; register the recordings with ceiling_method={method!r}"
            )
        if ceiling.ceiling > 0:
            normalised[name] = float(similarity) / ceiling.ceiling
    return normalised


def _splits(n_repeats: int, n_splits: int, seed: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Distinct splits of the repeats into two halves of ⌊R/2⌋ (one repeat left out for an odd R).

    Every distinct split when there are at most `n_splits` of them, else `n_splits` drawn at random.
    """
    half = n_repeats // 2
    distinct = math.comb(n_repeats, half) * math.comb(n_repeats - half, half) // 2
    if distinct <= n_splits:
        splits = set()
        for first in itertools.combinations(range(n_repeats), half):
            rest = [repeat for repeat in range(n_repeats) if repeat not in first]
            for second in itertools.combinations(rest, half):
                splits.add((min(first, second), max(first, second)))
        return sorted(splits)
    rng = np.random.default_rng(seed)
    drawn: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    while len(drawn) < n_splits:
        order = rng.permutation(n_repeats)
        first = tuple(sorted(int(repeat) for repeat in order[:half]))
        second = tuple(sorted(int(repeat) for repeat in order[half : 2 * half]))
        split = (min(first, second), max(first, second))
        if split not in drawn:
            drawn.append(split)
    return drawn


def _lower_upper(array: np.ndarray, rdm_of: Any, method: str) -> tuple[float, float]:
    """rsatoolbox's leave-one-out lower and pooled upper noise ceiling, each repeat one measurement."""
    per_repeat = [rdm_of([repeat]) for repeat in range(array.shape[2])]
    if any(repeat_rdm is None for repeat_rdm in per_repeat):
        return math.nan, math.nan
    vectors = np.stack([repeat_rdm.values.astype(np.float64) for repeat_rdm in per_repeat if repeat_rdm])
    lower, upper = [], []
    everything = _pooled(vectors, method)
    for repeat, vector in enumerate(vectors):
        others = _pooled(np.delete(vectors, repeat, axis=0), method)
        lower.append(compare(others, vector, method))
        upper.append(compare(everything, vector, method))
    return float(np.mean(lower)), float(np.mean(upper))


def _pooled(vectors: np.ndarray, method: str) -> np.ndarray:
    """The RDM that best represents several under `method`, as rsatoolbox's `pool_rdm` forms it."""
    if method in ("pearson", "corr_cov"):
        centred = vectors - vectors.mean(axis=1, keepdims=True)
        scale = centred.std(axis=1, keepdims=True)
        return np.asarray(
            np.mean(np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0), axis=0)
        )
    if method == "cosine_cov":
        scale = np.sqrt(np.mean(vectors**2, axis=1, keepdims=True))
        return np.asarray(
            np.mean(np.divide(vectors, scale, out=np.zeros_like(vectors), where=scale > 0), axis=0)
        )
    import scipy.stats

    return np.asarray(np.mean([scipy.stats.rankdata(vector) for vector in vectors], axis=0))
