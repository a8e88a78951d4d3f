"""keras-sage: teacher-guided neural architecture search (TG-SAGE) for Keras and KerasTuner.

The public API is re-exported here. Names are imported on first use, so `import keras_sage` (and the
`keras-sage` command) does not pay for importing TensorFlow until a name that needs it is used.

Example:

```python
import keras_sage

teacher_rdm = keras_sage.rdm(teacher_activations)
student_rdm = keras_sage.rdm(student_activations)
similarity = keras_sage.compare(teacher_rdm, student_rdm)
```
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keras_sage._version import __version__

if TYPE_CHECKING:
    # What the lazy map below resolves, spelled out for type checkers and IDEs (never run).
    from keras_sage.datasets import (
        DatasetNotAvailableError,
        TFDSSplits,
        cifar10,
        cifar100,
        imagenet64,
        probe_set,
    )
    from keras_sage.hypermodels import (
        CellSearchSpace,
        CellStructure,
        CNNSearchSpace,
        NASBench201SearchSpace,
        resnet_cifar,
    )
    from keras_sage.model_size import count_flops
    from keras_sage.objective import TeacherGuidedScorer
    from keras_sage.proxies import zero_cost_proxies
    from keras_sage.rsa import RDM, compare, linear_cka, rdm
    from keras_sage.score import ScoringConfig, combined_score
    from keras_sage.teachers import TeacherFileError, TeacherStore, register_recordings, register_teacher
    from keras_sage.tuners import (
        Bootstrap,
        OptunaOracle,
        ReinforceOracle,
        SageHyperband,
        SageTuner,
        TPEOracle,
    )

# Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "RDM": "keras_sage.rsa",
    "rdm": "keras_sage.rsa",
    "compare": "keras_sage.rsa",
    "linear_cka": "keras_sage.rsa",
    "TeacherStore": "keras_sage.teachers",
    "TeacherFileError": "keras_sage.teachers",
    "register_teacher": "keras_sage.teachers",
    "register_recordings": "keras_sage.teachers",
    "TeacherGuidedScorer": "keras_sage.objective",
    "ScoringConfig": "keras_sage.score",
    "combined_score": "keras_sage.score",
    "SageTuner": "keras_sage.tuners",
    "SageHyperband": "keras_sage.tuners",
    "Bootstrap": "keras_sage.tuners",
    "CNNSearchSpace": "keras_sage.hypermodels",
    "CellSearchSpace": "keras_sage.hypermodels",
    "CellStructure": "keras_sage.hypermodels",
    "NASBench201SearchSpace": "keras_sage.hypermodels",
    "count_flops": "keras_sage.model_size",
    "resnet_cifar": "keras_sage.hypermodels",
    "zero_cost_proxies": "keras_sage.proxies",
    "OptunaOracle": "keras_sage.tuners",
    "TPEOracle": "keras_sage.tuners",
    "ReinforceOracle": "keras_sage.tuners",
    "cifar10": "keras_sage.datasets",
    "cifar100": "keras_sage.datasets",
    "imagenet64": "keras_sage.datasets",
    "probe_set": "keras_sage.datasets",
    "TFDSSplits": "keras_sage.datasets",
    "DatasetNotAvailableError": "keras_sage.datasets",
}

# Spelled out (not built from _EXPORTS) so that linters and type checkers read it; a test keeps the two
# in agreement.
__all__ = [
    "RDM",
    "Bootstrap",
    "CNNSearchSpace",
    "CellSearchSpace",
    "CellStructure",
    "DatasetNotAvailableError",
    "NASBench201SearchSpace",
    "OptunaOracle",
    "ReinforceOracle",
    "SageHyperband",
    "SageTuner",
    "ScoringConfig",
    "TFDSSplits",
    "TPEOracle",
    "TeacherFileError",
    "TeacherGuidedScorer",
    "TeacherStore",
    "__version__",
    "cifar10",
    "cifar100",
    "combined_score",
    "compare",
    "count_flops",
    "imagenet64",
    "linear_cka",
    "probe_set",
    "rdm",
    "register_recordings",
    "register_teacher",
    "resnet_cifar",
    "zero_cost_proxies",
]


# Old names kept for one release; each warns where its module defines it.
_DEPRECATED: dict[str, str] = {"TeacherGuidedObjective": "keras_sage.objective"}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        return getattr(importlib.import_module(_DEPRECATED[name]), name)
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'keras_sage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
