"""The paper's space of convolutional networks (after Zoph & Le), as a KerasTuner HyperModel.

A candidate is a stack of 1 to N_L convolutional layers. Each layer chooses its number of filters,
kernel height and width, stride, activation and normalization, and which earlier outputs (the image or
any earlier layer) it reads. The rules that make every sampled candidate a valid network:

- **Inputs.** A layer reads the concatenation, on channels, of the sources whose connection is on. With
  no connection on, it reads the previous layer's output (the image for layer 1).
- **Spatial sizes.** Sources of different spatial sizes are zero-padded, centred, up to the largest
  height and width among them, then concatenated, as Zoph & Le do. Padding (rather than pooling the
  larger ones down) keeps every source's features intact and adds no computation to the smaller ones.
- **Strides.** Convolutions use "same" padding, so a layer's output is ⌈input / stride⌉ on each axis and
  never falls below 1×1. A stride of 2 along an axis whose size is already 1 is set to 1 and recorded as
  capped (`LayerPlan.strides`); no candidate of the space is invalid.
- **Classifier.** The outputs that no later layer reads (always including the last layer's) are
  zero-padded to a common size by the same rule, concatenated, globally average-pooled and classified
  by a softmax `Dense` layer (so a padded map's pooled features are scaled by its share of the area).

Every layer's output (after convolution, normalization and activation) is the representation endpoint
named `layer_<l>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner

from keras_sage._validation import check_positive_int
from keras_sage.contract import CandidateBuildError, layer_endpoint_name
from keras_sage.hypermodels.base import (
    BATCH_NORM_MOMENTUM,
    LayerwiseSpec,
    OptimizerFactory,
    check_batch_norm_momentum,
    check_input_shape,
    check_num_classes,
    check_optimizer,
    compiled_candidate,
)

FILTERS = (32, 64, 128)
KERNEL_SIZES = (1, 3, 5, 7)
STRIDES = (1, 2)
ACTIVATIONS = ("identity", "relu")
NORMALIZATIONS = ("none", "batchnorm")

# The paper trains candidates with SGD, Nesterov momentum 0.9, from a learning rate of 0.1 for 300
# epochs, divided by 10 every 100 (supplement, "CIFAR Training"). A premature budget of 1-2 epochs is the
# start of that schedule, so the defaults are its first epochs: constant rate 0.1. Checked on 16 random
# candidates (up to 5 layers, digits 16×16, 2 epochs, batch 32): none diverged at 0.1, and 0.1 gave the
# highest mean validation accuracy (0.47, against 0.42 at 0.05, 0.36 at 0.01 and 0.45 for Adam 1e-3).
DEFAULT_LEARNING_RATE = 0.1

IMAGE = "image"


@dataclass(frozen=True)
class LayerPlan:
    """One convolutional layer of a candidate, as built.

    Args:
        index: Layer number, from 1.
        filters: Number of filters.
        kernel_size: (height, width) of the kernel.
        stride: The sampled stride.
        strides: The (height, width) strides used: `stride`, or 1 along an axis already of size 1.
        activation: `"identity"` or `"relu"`.
        normalization: `"none"` or `"batchnorm"`.
        sources: What the layer reads: `"image"` and/or earlier layer numbers, in that order.
        input_size: (height, width) of the input after zero-padding the sources to a common size.
        output_size: (height, width) of the output.
    """

    index: int
    filters: int
    kernel_size: tuple[int, int]
    stride: int
    strides: tuple[int, int]
    activation: str
    normalization: str
    sources: tuple[int | str, ...]
    input_size: tuple[int, int]
    output_size: tuple[int, int]

    @property
    def stride_capped(self) -> bool:
        """Whether the sampled stride was lowered to 1 along an axis of size 1."""
        return self.strides != (self.stride, self.stride)


@dataclass(frozen=True)
class CandidateArchitecture:
    """The topology of one candidate: its layers and the outputs joined before the classifier.

    Args:
        image_size: (height, width) of the input image.
        layers: The convolutional layers, in order.
        joined: Numbers of the layers whose outputs no later layer reads; they feed the classifier.
    """

    image_size: tuple[int, int]
    layers: tuple[LayerPlan, ...]
    joined: tuple[int, ...]

    @property
    def endpoints(self) -> list[str]:
        """Names of the representation endpoints, one per layer, in depth order."""
        return [layer_endpoint_name(layer.index) for layer in self.layers]


class CNNSearchSpace(keras_tuner.HyperModel):
    """The paper's search space of convolutional networks, with N_L = `max_layers`.

    Hyperparameters (`l` = 1..`max_layers`; all of layer `l` are conditional on `num_layers >= l`):
    `num_layers` in [1, `max_layers`]; `filters_l` in {32, 64, 128}; `kernel_height_l` and
    `kernel_width_l` in {1, 3, 5, 7}; `stride_l` in {1, 2}; `activation_l` in {identity, relu};
    `normalization_l` in {none, batchnorm}; `connect_image_to_l` and `connect_s_to_l` (s < l) booleans.
    The module docstring gives the rules that turn these into a network.

    `build(hp)` returns a model compiled with `sparse_categorical_crossentropy` and `accuracy`. The default
    optimizer is the paper's, SGD with Nesterov momentum 0.9 at a learning rate of 0.1: a premature
    budget of one or two epochs is the start of the paper's schedule, before its first decay. A candidate
    whose loss diverges is a failed trial of the tuner, not a crash.

    Args:
        max_layers: N_L, the largest number of layers (the paper uses 10 and 20).
        num_classes: Number of classes of the softmax classifier.
        input_shape: (height, width, channels) of the images.
        optimizer: `None` for SGD with Nesterov momentum 0.9; the name of a Keras optimizer (e.g.
            `"adam"`), created with `learning_rate`; or a callable with no arguments that returns a new
            optimizer (then `learning_rate` is not used). Each build gets its own optimizer.
        learning_rate: Learning rate of the default or named optimizer.
        batch_norm_momentum: Momentum of the moving statistics of every batch normalization layer.
        name: Name of the HyperModel.
        tunable: Whether the hyperparameters are added to the search space (see `keras_tuner.HyperModel`).

    Example:

    ```python
    space = CNNSearchSpace(max_layers=10, num_classes=10, input_shape=(32, 32, 3))
    hp = keras_tuner.HyperParameters()
    model = space.build(hp)  # one layer: the defaults of every hyperparameter
    space.architecture(hp).endpoints  # ["layer_1"]
    ```
    """

    def __init__(
        self,
        max_layers: int = 10,
        *,
        num_classes: int,
        input_shape: Sequence[int],
        optimizer: str | OptimizerFactory | None = None,
        learning_rate: float = DEFAULT_LEARNING_RATE,
        batch_norm_momentum: float = BATCH_NORM_MOMENTUM,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        self.max_layers = check_positive_int("max_layers", max_layers)
        self.batch_norm_momentum = check_batch_norm_momentum(batch_norm_momentum)
        self.num_classes = check_num_classes(num_classes)
        self.input_shape = check_input_shape(input_shape)
        check_optimizer(optimizer)
        self.optimizer = optimizer
        self.learning_rate = learning_rate

    def layerwise_spec(self) -> LayerwiseSpec:
        """Returns the layer structure of this space, for the REINFORCE controller."""
        return LayerwiseSpec(
            num_layers="num_layers",
            min_layers=1,
            max_layers=self.max_layers,
            layer_choices={
                "filters": FILTERS,
                "kernel_height": KERNEL_SIZES,
                "kernel_width": KERNEL_SIZES,
                "stride": STRIDES,
                "activation": ACTIVATIONS,
                "normalization": NORMALIZATIONS,
            },
        )

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Declares every hyperparameter of the space in `hp`, active or not."""
        self.architecture(hp)

    def architecture(self, hp: keras_tuner.HyperParameters) -> CandidateArchitecture:
        """Declares the hyperparameters in `hp` and returns the topology that their values describe.

        Args:
            hp: The hyperparameters of one candidate.

        Returns:
            The candidate's layers, their inputs and sizes, and the outputs joined before the classifier.

        Raises:
            CandidateBuildError: If a value in `hp` lies outside the space (for example one set by hand).
        """
        spec = self.layerwise_spec()
        num_layers = hp.Int(spec.num_layers, spec.min_layers, spec.max_layers)
        if not isinstance(num_layers, int) or not spec.min_layers <= num_layers <= spec.max_layers:
            raise CandidateBuildError(
                f"num_layers is {num_layers!r}, outside [{spec.min_layers}, {spec.max_layers}]."
            )
        layers: list[LayerPlan] = []
        sizes: dict[int | str, tuple[int, int]] = {IMAGE: self.input_shape[:2]}
        for index in range(1, self.max_layers + 1):
            with hp.conditional_scope(spec.num_layers, list(range(index, self.max_layers + 1))):
                values = {
                    choice: hp.Choice(spec.layer_param(choice, index), list(options))
                    for choice, options in spec.layer_choices.items()
                }
                connected = [
                    source
                    for source in spec.sources(index)
                    if hp.Boolean(spec.connection(source, index), default=False)
                ]
            if index > num_layers:
                continue
            _check_values(index, values, spec.layer_choices)
            sources = tuple(connected) or ((index - 1) if index > 1 else IMAGE,)
            input_size = (max(sizes[s][0] for s in sources), max(sizes[s][1] for s in sources))
            height_stride, width_stride = (1 if size == 1 else int(values["stride"]) for size in input_size)
            strides = (height_stride, width_stride)
            output_size = (-(-input_size[0] // height_stride), -(-input_size[1] // width_stride))
            sizes[index] = output_size
            layers.append(
                LayerPlan(
                    index=index,
                    filters=values["filters"],
                    kernel_size=(values["kernel_height"], values["kernel_width"]),
                    stride=values["stride"],
                    strides=strides,
                    activation=values["activation"],
                    normalization=values["normalization"],
                    sources=sources,
                    input_size=input_size,
                    output_size=output_size,
                )
            )
        read = {source for layer in layers for source in layer.sources}
        joined = tuple(layer.index for layer in layers if layer.index not in read)
        return CandidateArchitecture(image_size=self.input_shape[:2], layers=tuple(layers), joined=joined)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds and compiles the candidate that `hp` describes.

        Args:
            hp: The hyperparameters of one candidate.

        Returns:
            A compiled `keras.Model` whose endpoints are named `layer_1` .. `layer_<num_layers>`.

        Raises:
            CandidateBuildError: If a value in `hp` lies outside the space.
        """
        model = self.model_from_architecture(self.architecture(hp))
        return compiled_candidate(model, self.optimizer, self.learning_rate)

    def model_from_architecture(self, architecture: CandidateArchitecture) -> keras.Model:
        """Returns the uncompiled Keras model of `architecture`."""
        image = keras.Input(shape=self.input_shape, name=IMAGE)
        outputs: dict[int | str, Any] = {IMAGE: image}
        for layer in architecture.layers:
            name = layer_endpoint_name(layer.index)
            x = _pad_and_concatenate([outputs[s] for s in layer.sources], layer.sources, f"{name}_input")
            x = keras.layers.Conv2D(
                layer.filters,
                layer.kernel_size,
                strides=layer.strides,
                padding="same",
                use_bias=layer.normalization == "none",
                name=f"{name}_conv",
            )(x)
            if layer.normalization == "batchnorm":
                x = keras.layers.BatchNormalization(
                    momentum=self.batch_norm_momentum, name=f"{name}_batchnorm"
                )(x)
            activation = "relu" if layer.activation == "relu" else "linear"
            outputs[layer.index] = keras.layers.Activation(activation, name=name)(x)
        x = _pad_and_concatenate([outputs[i] for i in architecture.joined], architecture.joined, "join")
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
        probabilities = keras.layers.Dense(self.num_classes, activation="softmax", name="classifier")(x)
        return keras.Model(image, probabilities, name=self.name or "cnn_candidate")


def _check_values(index: int, values: dict[str, Any], choices: dict[str, tuple[Any, ...]]) -> None:
    for choice, value in values.items():
        if value not in choices[choice]:
            raise CandidateBuildError(
                f"Layer {index}: {choice} is {value!r}, not one of {list(choices[choice])}."
            )


def _pad_and_concatenate(tensors: list[Any], sources: Sequence[int | str], name: str) -> Any:
    """Zero-pads `tensors` (centred) to their largest height and width and concatenates them on channels.

    Layers are named `<name>_pad_<source>` and `<name>_concat`; one tensor of the largest size passes
    through unchanged.
    """
    height = max(tensor.shape[1] for tensor in tensors)
    width = max(tensor.shape[2] for tensor in tensors)
    padded = []
    for tensor, source in zip(tensors, sources, strict=True):
        extra_height, extra_width = height - tensor.shape[1], width - tensor.shape[2]
        if extra_height or extra_width:
            tensor = keras.layers.ZeroPadding2D(
                (
                    (extra_height // 2, extra_height - extra_height // 2),
                    (extra_width // 2, extra_width - extra_width // 2),
                ),
                name=f"{name}_pad_{source}",
            )(tensor)
        padded.append(tensor)
    if len(padded) == 1:
        return padded[0]
    return keras.layers.Concatenate(axis=-1, name=f"{name}_concat")(padded)
