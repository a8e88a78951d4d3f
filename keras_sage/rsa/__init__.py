"""Representational similarity analysis: RDMs (the paper's §3.1) and how similar two of them are."""

from keras_sage.rsa.compare import (
    COMPARE_METHODS,
    ReferenceRDMs,
    centred_gram,
    compare,
    linear_cka,
    linear_cka_gram,
)
from keras_sage.rsa.dissimilarity import (
    BACKENDS,
    DEFAULT_MAX_FEATURES,
    LEVELS,
    METRICS,
    RDM,
    ConstantRepresentationWarning,
    condensed_length,
    feature_subsample_indices,
    rdm,
    rows_of_condensed,
)

__all__ = [
    "BACKENDS",
    "COMPARE_METHODS",
    "DEFAULT_MAX_FEATURES",
    "LEVELS",
    "METRICS",
    "RDM",
    "ConstantRepresentationWarning",
    "ReferenceRDMs",
    "centred_gram",
    "compare",
    "condensed_length",
    "feature_subsample_indices",
    "linear_cka",
    "linear_cka_gram",
    "rdm",
    "rows_of_condensed",
]
