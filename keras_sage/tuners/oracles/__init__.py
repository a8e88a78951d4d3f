"""Search algorithms as KerasTuner oracles: any optuna sampler (`OptunaOracle`), the paper's TPE
(`TPEOracle`), and its REINFORCE controller (`ReinforceOracle`)."""

from keras_sage.tuners.oracles.optuna_oracle import OptunaOracle
from keras_sage.tuners.oracles.reinforce import LayerwiseController, ReinforceOracle
from keras_sage.tuners.oracles.tpe import TPEOracle

__all__ = ["LayerwiseController", "OptunaOracle", "ReinforceOracle", "TPEOracle"]
