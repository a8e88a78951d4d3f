"""Representational similarity analysis: RDMs (the paper's §3.1) and how similar two of them are."""

from keras_sage.rsa.compare import (
    COMPARE_METHODS,
    ReferenceRDMs,
    centred_gram,
    compare,
    gram_from_euclidean_rdm,
    linear_cka,
    linear_cka_gram,
)
from keras_sage.rsa.crossvalidated import CROSSVALIDATED_METRICS, crossvalidated_rdm
from keras_sage.rsa.dissimilarity import (
    BACKENDS,
    DEFAULT_MAX_FEATURES,
    LEVELS,
    METRICS,
    RDM,
    ROW_METRICS,
    ConstantRepresentationWarning,
    condensed_length,
    feature_subsample_indices,
    prepared_rows,
    rdm,
    rdm_of_prepared_rows,
    rows_of_condensed,
)
from keras_sage.rsa.interop import from_rsatoolbox, to_rsatoolbox
from keras_sage.rsa.noise_ceiling import (
    DEFAULT_SPLITS,
    NoiseCeiling,
    NoiseCeilingError,
    NoiseCeilingWarning,
    noise_ceiling,
    normalised_similarities,
)

__all__ = [
    "BACKENDS",
    "COMPARE_METHODS",
    "CROSSVALIDATED_METRICS",
    "DEFAULT_MAX_FEATURES",
    "DEFAULT_SPLITS",
    "LEVELS",
    "METRICS",
    "RDM",
    "ROW_METRICS",
    "ConstantRepresentationWarning",
    "NoiseCeiling",
    "NoiseCeilingError",
    "NoiseCeilingWarning",
    "ReferenceRDMs",
    "centred_gram",
    "compare",
    "condensed_length",
    "crossvalidated_rdm",
    "feature_subsample_indices",
    "from_rsatoolbox",
    "gram_from_euclidean_rdm",
    "linear_cka",
    "linear_cka_gram",
    "noise_ceiling",
    "normalised_similarities",
    "prepared_rows",
    "rdm",
    "rdm_of_prepared_rows",
    "rows_of_condensed",
    "to_rsatoolbox",
]
