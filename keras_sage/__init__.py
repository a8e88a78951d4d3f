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
from typing import Any

__version__ = "0.1.0"

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
    "TeacherGuidedObjective": "keras_sage.objective",
    "SageTuner": "keras_sage.tuners",
    "CNNSearchSpace": "keras_sage.hypermodels",
    "CellSearchSpace": "keras_sage.hypermodels",
    "CellStructure": "keras_sage.hypermodels",
    "count_flops": "keras_sage.model_size",
    "resnet_cifar": "keras_sage.hypermodels",
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

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'keras_sage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
