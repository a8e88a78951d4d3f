"""The NAS-Bench-201 space (Dong & Yang, ICLR 2020) as a KerasTuner HyperModel: its published network.

A candidate is one cell (`keras_sage.nasbench201` gives the cell and its arch strings), repeated in
NAS-Bench-201's CIFAR network:

- **Stem.** A 3×3 convolution with C = 16 filters (no bias), then batch norm.
- **Stages.** Three stages of N = 5 cells, with C, 2C and 4C channels. Between two stages, the residual
  reduction block (ResNet's basic block): ReLU, 3×3 convolution with stride 2, batch norm, ReLU, 3×3
  convolution, batch norm; its shortcut a 2×2 average pooling with stride 2 and a 1×1 convolution (no
  batch norm); the two added. The strided convolution pads one pixel on each side, as PyTorch's
  `padding=1` does, so it samples the same pixels as the published network.
- **Head.** Batch norm, ReLU, global average pooling and a softmax classifier.
- **Cell.** Node 0 is the cell's input, node 3 its output; node j sums its edges i → j. An edge applies
  `none` (its input times zero, as NAS-Bench-201's `Zero` does: a node whose every edge is `none` is
  zeros, and the network still builds and trains), `skip_connect` (its input), `nor_conv_1x1` or
  `nor_conv_3x3` (ReLU, convolution without bias, batch norm) or `avg_pool_3x3` (3×3 average pooling,
  stride 1, "same" padding, averaging only the pixels inside the image, like PyTorch's
  `count_include_pad=False`). Every edge is built, even one whose result reaches no output, so the
  parameters and FLOPs are NAS-Bench-201's: the all-`nor_conv_3x3` network has 1,531,546 trainable
  parameters on CIFAR-10, the one without convolutions in its cells 73,306 (NAS-Bench-201's 1.53 M and
  0.07 M).

Batch normalization uses PyTorch's defaults, with which NAS-Bench-201 was trained: momentum 0.1 (Keras's
0.9) and epsilon 1e-5.

**Endpoints.** Each cell's output is a representation endpoint, `cell_1` .. `cell_<3N>` in depth order;
the fixed stem and reduction blocks are not. Cells rather than stages, because TG takes, for each teacher
layer, the best-matching student endpoint: with every cell a candidate, it finds the depth whose
representation matches best, where stage outputs would offer only the last cell of each stage. It is the
rule of the paper's cell space (one RDM per cell, `CellSearchSpace`).

**Hyperparameters.** Six `Choice`s, `edge_<i>_<j>` for the edge i → j, over `OPERATIONS` (default
`nor_conv_3x3`), and one constant, `num_edges` (an `Int` from 6 to 6), which REINFORCE's controller reads
as its number of steps: it picks one operation per edge with one shared head (`layerwise_spec`). A trial's
arch string is `NASBench201SearchSpace.to_arch_string(trial.hyperparameters)`; a pool's rows carry it, and
`keras-sage export` gives every trial's (`keras_sage.nasbench201.arch_string_of_values` of its
`trial.json`).

The default optimizer is NAS-Bench-201's at the start of its schedule: SGD with Nesterov momentum 0.9 at
a learning rate of 0.1 (NAS-Bench-201 then decays it on a cosine over 200 epochs, with weight decay 5e-4,
which is not applied here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

from keras_sage._validation import check_positive_int
from keras_sage.contract import CandidateBuildError, cell_endpoint_name
from keras_sage.hypermodels.base import (
    BATCH_NORM_MOMENTUM,
    LayerwiseSpec,
    OptimizerFactory,
    check_input_shape,
    check_num_classes,
    check_optimizer,
    compiled_candidate,
)
from keras_sage.nasbench201 import (
    EDGES,
    NUM_NODES,
    OPERATIONS,
    arch_string_of_values,
    edge_hyperparameter,
    parse_arch_string,
)

DEFAULT_NUM_REPEATS = 5  # N, cells per stage
DEFAULT_FILTERS = 16  # C, channels of the first stage
DEFAULT_LEARNING_RATE = 0.1
DEFAULT_OPERATION = "nor_conv_3x3"
# PyTorch's batch norm epsilon (NAS-Bench-201 trained with it; its momentum is `BATCH_NORM_MOMENTUM`).
BATCH_NORM_EPSILON = 1e-5
NUM_STAGES = 3
# Each reduction block halves the size with a 2×2 pooling, so the image's sides must divide by 2^2.
SIDE_MULTIPLE = 2 ** (NUM_STAGES - 1)
NUM_EDGES_HYPERPARAMETER = "num_edges"
OPERATION_CHOICE = "operation"


class _EdgewiseSpec(LayerwiseSpec):
    """The cell's edges as the steps of REINFORCE's controller: one operation each, no connection to draw."""

    def layer_param(self, name: str, layer: int) -> str:
        return edge_hyperparameter(*EDGES[layer - 1])

    def sources(self, layer: int) -> list[int | str]:
        return []


class NASBench201SearchSpace(keras_tuner.HyperModel):
    """The NAS-Bench-201 space: one cell of 6 edges, 5 operations each, in NAS-Bench-201's CIFAR network.

    The module docstring describes the network, the endpoints and the hyperparameters. `build(hp)`
    returns a model compiled with `sparse_categorical_crossentropy` and `accuracy`. Works with every
    oracle: TPE, random search, Hyperband, and REINFORCE (through `layerwise_spec`).

    Args:
        num_classes: Number of classes of the softmax classifier.
        input_shape: (height, width, channels) of the images; height and width must be multiples of 4.
        num_repeats: N, cells per stage (NAS-Bench-201's 5).
        filters: C, channels of the stem and the first stage's cells, doubled at each reduction (16).
        optimizer: `None` for SGD with Nesterov momentum 0.9; the name of a Keras optimizer, created with
            `learning_rate`; or a callable with no arguments that returns a new optimizer.
        learning_rate: Learning rate of the default or named optimizer.
        name: Name of the HyperModel.
        tunable: Whether the hyperparameters are added to the search space.

    Raises:
        ValueError: If an argument is out of range, naming it.

    Example:

    ```python
    space = NASBench201SearchSpace(num_classes=10, input_shape=(32, 32, 3))
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    model = space.build(NASBench201SearchSpace.from_arch_string(best))
    keras_sage.contract.representation_endpoints(model)  # ["cell_1", ..., "cell_15"]
    tuner = SageTuner(space, teacher="resnet_teacher.h5", oracle=TPEOracle(max_trials=100))
    ```
    """

    def __init__(
        self,
        num_classes: int = 10,
        input_shape: Sequence[int] = (32, 32, 3),
        *,
        num_repeats: int = DEFAULT_NUM_REPEATS,
        filters: int = DEFAULT_FILTERS,
        optimizer: str | OptimizerFactory | None = None,
        learning_rate: float = DEFAULT_LEARNING_RATE,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        self.num_classes = check_num_classes(num_classes)
        self.input_shape = check_input_shape(input_shape)
        if any(side % SIDE_MULTIPLE for side in self.input_shape[:2]):
            raise ValueError(
                f"input_shape's height and width must be multiples of {SIDE_MULTIPLE} (each reduction block "
                f"halves them with a 2×2 pooling), got {tuple(input_shape)}."
            )
        self.num_repeats = check_positive_int("num_repeats", num_repeats)
        self.filters = check_positive_int("filters", filters)
        check_optimizer(optimizer)
        self.optimizer = optimizer
        self.learning_rate = learning_rate

    @staticmethod
    def declare_hyperparameters(hp: keras_tuner.HyperParameters) -> None:
        """Declares every hyperparameter of the space in `hp`."""
        hp.Int(NUM_EDGES_HYPERPARAMETER, len(EDGES), len(EDGES))
        for source, target in EDGES:
            hp.Choice(edge_hyperparameter(source, target), list(OPERATIONS), default=DEFAULT_OPERATION)

    @classmethod
    def from_arch_string(cls, arch_string: str) -> keras_tuner.HyperParameters:
        """The hyperparameters of the cell a NAS-Bench-201 arch string describes.

        Args:
            arch_string: `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.

        Returns:
            `keras_tuner.HyperParameters` with the space declared and the cell's values, ready for `build`.

        Raises:
            ValueError: If `arch_string` is not a NAS-Bench-201 cell.

        Example:

        ```python
        hp = NASBench201SearchSpace.from_arch_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
        hp.get("edge_0_1")  # "none"
        ```
        """
        operations = parse_arch_string(arch_string)
        hp = keras_tuner.HyperParameters()
        cls.declare_hyperparameters(hp)
        for (source, target), operation in zip(EDGES, operations, strict=True):
            hp.values[edge_hyperparameter(source, target)] = operation
        return hp

    @staticmethod
    def to_arch_string(hp: keras_tuner.HyperParameters) -> str:
        """The NAS-Bench-201 arch string of the cell whose hyperparameters are `hp`.

        Args:
            hp: A candidate's hyperparameters, e.g. a trial's `trial.hyperparameters`.

        Returns:
            Its arch string, `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.

        Raises:
            CandidateBuildError: If an edge's value is missing or not one of `OPERATIONS`, naming the edge.

        Example:

        ```python
        NASBench201SearchSpace.to_arch_string(tuner.oracle.get_best_trials(1)[0].hyperparameters)
        ```
        """
        arch_string = arch_string_of_values(hp.values)
        if arch_string is not None:
            return arch_string
        edge = next(
            name
            for name in (edge_hyperparameter(source, target) for source, target in EDGES)
            if hp.values.get(name) not in OPERATIONS
        )
        raise CandidateBuildError(
            f"Hyperparameter {edge} is {hp.values.get(edge)!r}, not one of {', '.join(OPERATIONS)}."
        )

    def layerwise_spec(self) -> LayerwiseSpec:
        """The cell's edges as the layers of REINFORCE's controller: 6 steps, one `operation` head."""
        return _EdgewiseSpec(
            num_layers=NUM_EDGES_HYPERPARAMETER,
            min_layers=len(EDGES),
            max_layers=len(EDGES),
            layer_choices={OPERATION_CHOICE: OPERATIONS},
            image_source=False,
        )

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds and compiles the network of the cell that `hp` describes.

        Args:
            hp: The hyperparameters of one candidate (an empty `keras_tuner.HyperParameters()` gives the
                defaults: every edge `nor_conv_3x3`).

        Returns:
            A compiled `keras.Model` whose endpoints are `cell_1` .. `cell_<3N>`.

        Raises:
            CandidateBuildError: If a value in `hp` lies outside the space, naming the edge.
        """
        self.declare_hyperparameters(hp)
        model = self.model_from_arch_string(self.to_arch_string(hp))
        return compiled_candidate(model, self.optimizer, self.learning_rate)

    def model_from_arch_string(self, arch_string: str) -> keras.Model:
        """The uncompiled network of the cell `arch_string` describes.

        Args:
            arch_string: A NAS-Bench-201 arch string.

        Returns:
            A `keras.Model` whose endpoints are `cell_1` .. `cell_<3N>`.

        Raises:
            ValueError: If `arch_string` is not a NAS-Bench-201 cell.
        """
        operations = parse_arch_string(arch_string)
        image = keras.Input(shape=self.input_shape, name="image")
        x = keras.layers.Conv2D(self.filters, 3, padding="same", use_bias=False, name="stem_conv")(image)
        x = _batch_norm("stem_bn")(x)
        cell_number = 0
        for stage in range(NUM_STAGES):
            channels = self.filters * 2**stage
            if stage:
                x = _reduction_block(x, channels, f"reduction_{stage}")
            for _ in range(self.num_repeats):
                cell_number += 1
                x = _cell(x, operations, channels, cell_endpoint_name(cell_number))
        x = _batch_norm("head_bn")(x)
        x = keras.layers.ReLU(name="head_relu")(x)
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
        probabilities = keras.layers.Dense(self.num_classes, activation="softmax", name="classifier")(x)
        return keras.Model(image, probabilities, name=self.name or "nasbench201_candidate")


def _batch_norm(name: str) -> keras.layers.Layer:
    return keras.layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, name=name
    )


def _relu_conv_bn(x: Any, channels: int, kernel_size: int, strides: int, name: str) -> Any:
    """ReLU, a convolution without bias, batch norm; stride 2 pads one pixel on each side, as PyTorch's
    `padding=1` does (Keras's "same" would pad only after)."""
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    padding = "same"
    if strides > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.Conv2D(
        channels, kernel_size, strides=strides, padding=padding, use_bias=False, name=f"{name}_conv"
    )(x)
    return _batch_norm(f"{name}_bn")(x)


def _reduction_block(x: Any, channels: int, name: str) -> Any:
    """ResNet's basic block with stride 2 to `channels`, its shortcut a 2×2 average pooling and a 1×1 conv."""
    residual = _relu_conv_bn(x, channels, 3, 2, f"{name}_a")
    residual = _relu_conv_bn(residual, channels, 3, 1, f"{name}_b")
    shortcut = keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_shortcut_pool")(x)
    shortcut = keras.layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_shortcut_conv")(shortcut)
    return keras.layers.Add(name=name)([residual, shortcut])


def _edge(x: Any, operation: str, channels: int, name: str) -> Any:
    """One edge's operation on its source node."""
    if operation == "none":
        return keras.layers.Rescaling(0.0, name=f"{name}_none")(x)
    if operation == "skip_connect":
        return x
    if operation == "avg_pool_3x3":
        return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_avg_pool")(x)
    kernel_size = 3 if operation == "nor_conv_3x3" else 1
    return _relu_conv_bn(x, channels, kernel_size, 1, f"{name}_{operation}")


def _cell(x: Any, operations: Sequence[str], channels: int, name: str) -> Any:
    """A cell on input `x`: every node the sum of its edges; the output, node 3, is the layer `name`."""
    nodes = [x]
    for target in range(1, NUM_NODES):
        results = [
            _edge(nodes[source], operation, channels, f"{name}_edge_{source}_{target}")
            for (source, edge_target), operation in zip(EDGES, operations, strict=True)
            if edge_target == target
        ]
        node_name = name if target == NUM_NODES - 1 else f"{name}_node_{target}"
        if len(results) == 1:
            node = keras.layers.Identity(name=node_name)(results[0])
        else:
            node = keras.layers.Add(name=node_name)(results)
        nodes.append(node)
    return nodes[-1]
