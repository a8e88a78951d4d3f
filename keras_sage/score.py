"""The teacher-guided score and its settings, in one place: `combined_score` and `ScoringConfig`.

The score of a candidate is P + α·TG (paper §3.2): P its premature validation accuracy, TG its teacher
guidance, α the weight of TG. Further terms β_k·x_k (a zero-cost proxy such as synflow, a cost) add to it:
score = P + α·TG + Σ_k β_k·x_k. `combined_score` is that formula, vectorised, and every room that forms a
score (the scorer, the pool analysis, the search replay, the plots) calls it.

A proxy enters a score as `proxy_term(name, value)`: the base-10 logarithm of the proxies that span
orders of magnitude across a space (synflow's products of |θ| reach 1e60 on NAS-Bench-201; snip and
grad_norm are sums of positive magnitudes; params and FLOPs are counts), and naswot as it is (already a
log-determinant). So β is a weight per decade, and a proxy's term is on the scale its papers plot.

`ScoringConfig` names every setting of how a candidate is scored except the teacher itself: α, how RDMs
are compared and matched to the teacher's layers, the feature subsample, the probe batches. A scorer is
built from a teacher and a config (`TeacherGuidedScorer(teacher, config)`), and a search keeps its config
when a teacher schedule replaces the teacher (`scorer.with_teacher(store)`).

This module imports only numpy and keras-sage's RSA constants, so the analysis can use it without
TensorFlow.

Example:

```python
combined_score(0.41, 0.30, alpha=2.0)  # 1.01
combined_score(np.array([0.4, 0.5]), np.array([0.3, 0.1]), alpha=1.0)  # array([0.7, 0.6])
config = ScoringConfig(alpha=2.0, similarity="spearman")
dataclasses.replace(config, alpha=0.0)  # the same settings, P alone
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from keras_sage._validation import check_choice, check_non_negative_number, check_positive_int
from keras_sage.contract import NASWOT, PROXY_NAMES
from keras_sage.rsa import COMPARE_METHODS, DEFAULT_MAX_FEATURES

__all__ = [
    "CKA",
    "DEFAULT_ALPHA",
    "DEFAULT_MEMORY_BUDGET",
    "FEATURE_DTYPES",
    "LAYER_MATCHES",
    "SIMILARITIES",
    "ScoringConfig",
    "combined_score",
    "proxy_term",
]

# α = 1, the paper's choice for about 2 epochs of premature training (§4.1).
DEFAULT_ALPHA = 1.0
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
# How S_i is taken over the student endpoints j: max_j r (the paper's), mean_j r, or one mapped endpoint.
LAYER_MATCHES = ("max", "mean", "fixed")
# r: an RDM comparison, or linear CKA of the features (from an image-level Euclidean teacher RDM).
CKA = "cka"
SIMILARITIES = (*COMPARE_METHODS, CKA)
# How the prepared rows of the endpoints' features are stored between the forward pass and the RDMs:
# "float16" where that needs fewer forward passes than "float32" ("auto"), or always one of them.
FEATURE_DTYPES = ("auto", "float32", "float16")


@overload
def combined_score(
    premature_accuracy: float,
    teacher_guidance: float = ...,
    alpha: float = ...,
    terms: Mapping[str, tuple[float, float]] | None = ...,
) -> float: ...


@overload
def combined_score(
    premature_accuracy: npt.NDArray[Any],
    teacher_guidance: npt.ArrayLike = ...,
    alpha: float = ...,
    terms: Mapping[str, tuple[float, npt.ArrayLike]] | None = ...,
) -> npt.NDArray[np.float64]: ...


def combined_score(
    premature_accuracy: Any,
    teacher_guidance: Any = 0.0,
    alpha: float = DEFAULT_ALPHA,
    terms: Mapping[str, tuple[float, Any]] | None = None,
) -> Any:
    """The score P + α·TG + Σ_k β_k·x_k, of one candidate or of arrays of them.

    Args:
        premature_accuracy: P, a number or an array.
        teacher_guidance: TG (or any predictor in its place, e.g. a control column), broadcast with P.
        alpha: α, the weight of TG.
        terms: Further terms by name: `(β_k, x_k)`, the weight and the value (or array) of each.

    Returns:
        A float when every input is a number, else an array of float64. NaN where any input is NaN (a
        failed candidate), so that no NaN is mistaken for a score.

    Example:

    ```python
    combined_score(0.41, 0.30, alpha=2.0)  # 1.01
    combined_score(0.41, 0.30, alpha=2.0, terms={"synflow": (0.01, 20.0)})  # 1.21
    ```
    """
    score = np.asarray(premature_accuracy, dtype=np.float64) + alpha * np.asarray(
        teacher_guidance, dtype=np.float64
    )
    for beta, values in (terms or {}).values():
        score = score + beta * np.asarray(values, dtype=np.float64)
    return float(score) if score.ndim == 0 else score


def proxy_term(name: str, value: Any) -> Any:
    """The value a proxy adds to a score as β·x: log10 of it, or naswot as it is (see the module doc).

    Args:
        name: One of `keras_sage.contract.PROXY_NAMES`.
        value: The proxy's value, or an array of them.

    Returns:
        A float (or array): −inf for a log-scaled proxy of 0 (a network with no weight), NaN for one below.
    """
    check_choice("proxy", name, PROXY_NAMES)
    values = np.asarray(value, dtype=np.float64)
    if name != NASWOT:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log10(values)
    return float(values) if values.ndim == 0 else values


@dataclass(frozen=True)
class ScoringConfig:
    """How a candidate is scored against a teacher: every setting but the teacher itself.

    Attributes:
        alpha: α, the weight of TG. 1 is the paper's value for ~2 epochs of premature training; 0 gives
            plain performance-guided scoring (TG is still computed and reported).
        similarity: How a student RDM is compared with a teacher RDM (`keras_sage.rsa.compare`'s
            methods; the paper's is `"pearson"`), or `"cka"`: linear CKA of the features, for teachers
            registered with image-level euclidean RDMs.
        layer_match: How S_i is taken over the student endpoints C_j: `"max"` (the paper's max_j r),
            `"mean"` (mean_j r), or `"fixed"` (r with the one endpoint `layer_mapping` names).
        layer_mapping: With `layer_match="fixed"`, teacher layer name → student endpoint name.
        normalise_by_ceiling: Whether TG is the mean of S_i / ceiling_i over the regions' noise ceilings
            instead of the mean of S_i.
        max_features: Features of each student endpoint in its RDM, a fixed random subsample (`None`:
            all).
        seed: Seed of that subsample.
        probe_batch_size: Probe images per forward pass.
        memory_budget: Bytes the feature buffers plus one RDM computation may take; endpoints are grouped
            into several forward passes to stay within it.
        feature_dtype: `"auto"`, `"float32"` or `"float16"`: how prepared feature rows are stored (see
            `keras_sage.objective`).
        probe_preprocessing: Optional callable applied to each batch of probe images (numpy, as stored)
            before the candidate sees it.
        proxy_weights: β for each of the field's proxies to add to the score as β·`proxy_term(x)`, by name
            (`keras_sage.contract.PROXY_NAMES`); computed at initialisation on one training batch. Empty:
            P + α·TG alone.

    Raises:
        ValueError: A setting out of range or an unknown choice, naming it.

    Example:

    ```python
    config = ScoringConfig(alpha=2.0, similarity="spearman", max_features=1024)
    scorer = TeacherGuidedScorer("teacher.h5", config)
    ```
    """

    alpha: float = DEFAULT_ALPHA
    similarity: str = "pearson"
    layer_match: str = "max"
    layer_mapping: Mapping[str, str] | None = None
    normalise_by_ceiling: bool = False
    max_features: int | None = DEFAULT_MAX_FEATURES
    seed: int = 0
    probe_batch_size: int = 128
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    feature_dtype: str = "auto"
    probe_preprocessing: Callable[[np.ndarray], Any] | None = None
    proxy_weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("layer_match", self.layer_match, LAYER_MATCHES)
        check_choice("similarity", self.similarity, SIMILARITIES)
        check_choice("feature_dtype", self.feature_dtype, FEATURE_DTYPES)
        object.__setattr__(self, "alpha", check_non_negative_number("alpha", self.alpha))
        if self.max_features is not None:
            object.__setattr__(self, "max_features", check_positive_int("max_features", self.max_features))
        object.__setattr__(
            self, "probe_batch_size", check_positive_int("probe_batch_size", self.probe_batch_size)
        )
        object.__setattr__(self, "memory_budget", check_positive_int("memory_budget", self.memory_budget))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "normalise_by_ceiling", bool(self.normalise_by_ceiling))
        weights = {}
        for name, beta in dict(self.proxy_weights).items():
            check_choice("proxy_weights", name, PROXY_NAMES)
            if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not np.isfinite(beta):
                raise ValueError(f"proxy_weights[{name!r}] must be a finite number, got {beta!r}")
            weights[str(name)] = float(beta)
        object.__setattr__(self, "proxy_weights", weights)
        if self.layer_mapping is not None:
            mapping = {str(name): str(endpoint) for name, endpoint in self.layer_mapping.items()}
            object.__setattr__(self, "layer_mapping", mapping)
