"""Search spaces (KerasTuner HyperModels) and teacher networks whose layers are named endpoints.

`CandidateBuildError` and `representation_endpoints` live in `keras_sage.contract` and are re-exported here.
"""

from keras_sage.contract import CandidateBuildError, representation_endpoints
from keras_sage.hypermodels.base import LayerwiseSearchSpace, LayerwiseSpec, random_hyperparameters
from keras_sage.hypermodels.cells import Block, CellPlan, CellSearchSpace, CellStructure
from keras_sage.hypermodels.cnn import CandidateArchitecture, CNNSearchSpace, LayerPlan
from keras_sage.hypermodels.nasbench201 import NASBench201SearchSpace
from keras_sage.hypermodels.resnet import resnet_cifar

__all__ = [
    "Block",
    "CNNSearchSpace",
    "CandidateArchitecture",
    "CandidateBuildError",
    "CellPlan",
    "CellSearchSpace",
    "CellStructure",
    "LayerPlan",
    "LayerwiseSearchSpace",
    "LayerwiseSpec",
    "NASBench201SearchSpace",
    "random_hyperparameters",
    "representation_endpoints",
    "resnet_cifar",
]
