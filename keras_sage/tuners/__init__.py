"""Search algorithms (KerasTuner oracles) and the tuner that scores candidates with a teacher."""

from keras_sage.tuners.hyperband import SageHyperband
from keras_sage.tuners.optuna_oracle import OptunaOracle
from keras_sage.tuners.reinforce import LayerwiseController, ReinforceOracle
from keras_sage.tuners.sage_tuner import SageTuner, SearchStoppedError
from keras_sage.tuners.schedule import Bootstrap, BootstrapStep
from keras_sage.tuners.tpe import TPEOracle

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
