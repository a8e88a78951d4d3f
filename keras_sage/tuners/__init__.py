"""Search algorithms (KerasTuner oracles) and the tuner that scores candidates with a teacher."""

import importlib
import sys

from keras_sage.tuners.failures import SearchStoppedError
from keras_sage.tuners.hyperband import SageHyperband
from keras_sage.tuners.oracles import LayerwiseController, OptunaOracle, ReinforceOracle, TPEOracle
from keras_sage.tuners.sage_tuner import SageTuner
from keras_sage.tuners.schedule import Bootstrap, BootstrapStep

# The oracles' modules lived beside the tuner until 0.1 (`keras_sage.tuners.tpe`, ...); those names stay
# importable as the modules of `keras_sage.tuners.oracles`.
for _module in ("optuna_oracle", "tpe", "reinforce"):
    sys.modules[f"{__name__}.{_module}"] = importlib.import_module(f"{__name__}.oracles.{_module}")

__all__ = [
    "Bootstrap",
    "BootstrapStep",
    "LayerwiseController",
    "OptunaOracle",
    "ReinforceOracle",
    "SageHyperband",
    "SageTuner",
    "SearchStoppedError",
    "TPEOracle",
]
