"""What the oracle tests share: a stand-in for `CNNSearchSpace` that builds no model, and a tuner that
scores trials with a plain function."""

from __future__ import annotations

import keras_tuner

from keras_sage.hypermodels.base import LayerwiseSpec

LAYER_CHOICES = {
    "filters": (32, 64, 128),
    "kernel_height": (1, 3, 5, 7),
    "kernel_width": (1, 3, 5, 7),
    "stride": (1, 2),
    "activation": ("identity", "relu"),
    "normalization": ("none", "batchnorm"),
}


def declare_layers(hp: keras_tuner.HyperParameters, max_layers: int) -> None:
    """Declares the CNN space's hyperparameters, with the same names and conditional scopes."""
    hp.Int("num_layers", 1, max_layers)
    for layer in range(1, max_layers + 1):
        with hp.conditional_scope("num_layers", list(range(layer, max_layers + 1))):
            for name, values in LAYER_CHOICES.items():
                hp.Choice(f"{name}_{layer}", list(values))
            hp.Boolean(f"connect_image_to_{layer}")
            for source in range(1, layer):
                hp.Boolean(f"connect_{source}_to_{layer}")


class LayerwiseStandIn(keras_tuner.HyperModel):
    """Declares the hyperparameters of a `max_layers`-layer CNN space; `build` returns no model."""

    def __init__(self, max_layers: int = 3):
        super().__init__()
        self.max_layers = max_layers

    def build(self, hp: keras_tuner.HyperParameters) -> None:
        declare_layers(hp, self.max_layers)

    def layerwise_spec(self) -> LayerwiseSpec:
        return LayerwiseSpec(
            num_layers="num_layers", min_layers=1, max_layers=self.max_layers, layer_choices=LAYER_CHOICES
        )


def layerwise_space(max_layers: int) -> keras_tuner.HyperParameters:
    """The whole space (all conditional scopes registered), as a `HyperParameters`."""
    hp = keras_tuner.HyperParameters()
    declare_layers(hp, max_layers)
    return hp


class FunctionTuner(keras_tuner.Tuner):
    """Scores a trial with a plain function of its values (no model is built or trained)."""

    def __init__(self, function, **kwargs):
        super().__init__(**kwargs)
        self.function = function

    def run_trial(self, trial, **kwargs):
        value = self.function(trial.hyperparameters.values)
        if value is None:
            raise keras_tuner.errors.FailedTrialError("the function refused these values")
        return value


def trial_values(oracle) -> list[dict]:
    """The hyperparameter values of an oracle's trials, in the order they started."""
    return [oracle.trials[trial_id].hyperparameters.values for trial_id in oracle.start_order]
