"""What search spaces share: the structure an oracle may read, the checks of the arguments every space
takes, and how candidates get their optimizer.

Most oracles (random search, TPE) see only KerasTuner's flat list of hyperparameters. The REINFORCE
controller of the paper instead runs one LSTM step per layer of the candidate and shares one softmax head
per kind of choice across layers, so it must know which hyperparameters belong to which layer and which
are connections. A HyperModel tells it by implementing `LayerwiseSearchSpace`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import keras
import keras_tuner

from keras_sage._validation import check_non_negative_number, check_positive_int

# Candidates train with SGD and Nesterov momentum 0.9, as in the paper (supplement, "CIFAR Training").
DEFAULT_MOMENTUM = 0.9
# Momentum of batch normalization's moving statistics in every space and teacher ResNet, in Keras's
# convention (the weight kept by the old value): 0.9, PyTorch's default momentum 0.1, with which
# NAS-Bench-201 and most NAS code train. Keras's own default, 0.99, leaves the statistics that inference
# mode reads (P, TG) only 1 − 0.99¹⁶ ≈ 15% of the way to the data's after 16 steps (benchmarks/RESULTS.md,
# "batch-norm momentum").
BATCH_NORM_MOMENTUM = 0.9

OptimizerFactory = Callable[[], keras.optimizers.Optimizer]


@dataclass(frozen=True)
class LayerwiseSpec:
    """The layer structure of a search space, in terms of its KerasTuner hyperparameter names.

    Args:
        num_layers: Name of the `Int` hyperparameter that holds the number of layers.
        min_layers: Smallest number of layers.
        max_layers: Largest number of layers, the paper's N_L.
        layer_choices: For each per-layer choice (e.g. `"filters"`), its values in order. Every layer
            has the same choices; a controller shares one softmax head per choice across layers.
        layer_param_template: Format string giving the hyperparameter name of a choice at a layer, with
            fields `{name}` and `{layer}` (layers are numbered from 1).
        connection_template: Format string giving the `Boolean` hyperparameter that says whether
            `{source}` feeds layer `{layer}`. `{source}` is `image` or an earlier layer's number.
        image_source: Whether the image is a candidate source for every layer's input.
    """

    num_layers: str
    min_layers: int
    max_layers: int
    layer_choices: dict[str, tuple[Any, ...]]
    layer_param_template: str = "{name}_{layer}"
    connection_template: str = "connect_{source}_to_{layer}"
    image_source: bool = True

    def layer_param(self, name: str, layer: int) -> str:
        """The hyperparameter name of choice `name` at layer `layer` (from 1)."""
        return self.layer_param_template.format(name=name, layer=layer)

    def connection(self, source: int | str, layer: int) -> str:
        """The hyperparameter name of the connection from `source` (`"image"` or a layer) to `layer`."""
        return self.connection_template.format(source=source, layer=layer)

    def sources(self, layer: int) -> list[int | str]:
        """The candidate input sources of `layer`: the image (if allowed), then layers 1..layer-1."""
        image: list[int | str] = ["image"] if self.image_source else []
        return [*image, *range(1, layer)]


@runtime_checkable
class LayerwiseSearchSpace(Protocol):
    """A HyperModel whose candidates are a sequence of layers with per-layer choices and connections."""

    def layerwise_spec(self) -> LayerwiseSpec:
        """Returns the layer structure of this search space."""
        ...


def check_optimizer(optimizer: str | OptimizerFactory | None) -> None:
    """Raises a TypeError unless `optimizer` is None, an optimizer name, or a callable making a new one.

    An optimizer instance is refused: every candidate needs its own optimizer.
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(
            "optimizer must be a name or a callable returning a new optimizer, not an optimizer "
            "instance: every candidate needs its own optimizer."
        )
    if optimizer is not None and not isinstance(optimizer, str) and not callable(optimizer):
        raise TypeError(f"optimizer must be None, a name or a callable, got {optimizer!r}.")


def compiled_candidate(
    model: keras.Model,
    optimizer: str | OptimizerFactory | None,
    learning_rate: float,
    global_clipnorm: float | None = None,
) -> keras.Model:
    """A search space's candidate compiled as every space compiles it: a new optimizer (`new_optimizer`),
    sparse categorical cross-entropy, and the accuracy metric P is read from.

    Returns:
        `model`, compiled.
    """
    model.compile(
        optimizer=new_optimizer(optimizer, learning_rate, global_clipnorm),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def new_optimizer(
    optimizer: str | OptimizerFactory | None,
    learning_rate: float,
    global_clipnorm: float | None = None,
) -> keras.optimizers.Optimizer:
    """A new optimizer for one candidate.

    Args:
        optimizer: `None` for SGD with Nesterov momentum 0.9; the name of a Keras optimizer, created with
            `learning_rate`; or a callable with no arguments that returns a new optimizer (then
            `learning_rate` and `global_clipnorm` are not used).
        learning_rate: Learning rate of the default or named optimizer.
        global_clipnorm: If set, gradients of the default or named optimizer are clipped to this global norm.

    Returns:
        A new `keras.optimizers.Optimizer`.
    """
    clipping = {} if global_clipnorm is None else {"global_clipnorm": global_clipnorm}
    if optimizer is None:
        return keras.optimizers.SGD(
            learning_rate=learning_rate, momentum=DEFAULT_MOMENTUM, nesterov=True, **clipping
        )
    if isinstance(optimizer, str):
        named = keras.optimizers.get(optimizer)
        return named.__class__.from_config({**named.get_config(), "learning_rate": learning_rate, **clipping})
    created = optimizer()
    if not isinstance(created, keras.optimizers.Optimizer):
        raise TypeError(f"The optimizer callable returned {created!r}, not a keras optimizer.")
    return created


def check_batch_norm_momentum(momentum: Any) -> float:
    """`momentum` as a float if it is a batch normalization momentum: a real number in [0, 1).

    Args:
        momentum: The momentum a search space was given (Keras's convention: the weight of the old value).

    Returns:
        It, as a Python `float`.

    Raises:
        TypeError: If it is not a real number.
        ValueError: If it is outside [0, 1), naming `batch_norm_momentum`.

    Example:

    ```python
    check_batch_norm_momentum(np.float32(0.9))  # 0.9 (as a float32 rounds it)
    ```
    """
    value = check_non_negative_number("batch_norm_momentum", momentum)
    if value >= 1:
        raise ValueError(f"batch_norm_momentum must lie in [0, 1); got {momentum!r}")
    return value


def check_num_classes(num_classes: Any) -> int:
    """`num_classes` as an int if it is an integer of at least 2 (a softmax needs two classes).

    Args:
        num_classes: The number of classes a search space was given.

    Returns:
        It, as a Python `int`.

    Raises:
        ValueError: If it is not an integer of at least 2.

    Example:

    ```python
    check_num_classes(np.int64(10))  # 10
    ```
    """
    number = check_positive_int("num_classes", num_classes)
    if number < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    return number


def check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    """`input_shape` as a tuple of ints if it is (height, width, channels), each a positive integer.

    Args:
        input_shape: The image shape a search space was given.

    Returns:
        It, as a tuple of three Python `int`s.

    Raises:
        ValueError: If it is not three positive integers.

    Example:

    ```python
    check_input_shape([32, 32, 3])  # (32, 32, 3)
    ```
    """
    if isinstance(input_shape, str) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}.")
    height, width, channels = (check_positive_int("each size in input_shape", size) for size in input_shape)
    return height, width, channels


def random_hyperparameters(hypermodel: Any, seed: int) -> keras_tuner.HyperParameters:
    """A random candidate of a search space, drawn as KerasTuner's random search draws a trial.

    Every hyperparameter that is active, given the values drawn before it, is drawn at random in the
    order the space declares it. The hypermodel declares its space with `declare_hyperparameters`.

    Args:
        hypermodel: A search space such as `CNNSearchSpace` or `CellSearchSpace`.
        seed: Seed of the draw: the same seed gives the same candidate.

    Returns:
        The candidate's `keras_tuner.HyperParameters`, ready for `hypermodel.build`.

    Example:

    ```python
    space = CellSearchSpace(num_classes=10, input_shape=(32, 32, 3))
    model = space.build(random_hyperparameters(space, seed=3))
    ```
    """
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    rng = random.Random(seed)
    for parameter in hp.space:
        if hp.is_active(parameter):
            hp.values[parameter.name] = parameter.random_sample(rng.randrange(2**31))
    return hp
