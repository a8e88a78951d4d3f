"""The CIFAR ResNet of He et al. (2016, section 4.2), the paper's teacher network.

The network is a 3×3 convolution with 16 filters, three stacks of n residual blocks with 16, 32 and 64
filters (the first block of the second and third stacks halves the spatial size), global average pooling
and a softmax classifier: 6n + 2 weighted layers. The paper's teacher has n = 9 (56 layers) and reads
the features after each stack, named `L1`-`L3`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_sage.contract import stack_endpoint_name
from keras_sage.hypermodels.base import BATCH_NORM_MOMENTUM

STACK_FILTERS = (16, 32, 64)
# He et al. train with weight decay 1e-4; Keras' L2 penalty adds l2 * sum(w²), whose gradient is
# 2 * l2 * w, so the penalty coefficient is half the decay.
DEFAULT_WEIGHT_DECAY = 1e-4


def resnet_cifar(
    depth: int = 56,
    num_classes: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    *,
    weight_decay: float = DEFAULT_WEIGHT_DECAY,
    name: str | None = None,
) -> keras.Model:
    """Returns the CIFAR ResNet of He et al. with `depth` = 6n + 2 layers, uncompiled.

    Residual blocks are two 3×3 convolutions, each followed by batch normalization (and ReLU, the second
    after the addition). Where a block halves the spatial size and doubles the filters, its shortcut is
    He et al.'s option A, the one they use on CIFAR: the input subsampled with stride 2 and padded with
    zero channels, which adds no parameters (depth 20 has 0.27M parameters, depth 56 0.85M, as in their
    Table 6). The outputs of the three stacks are the representation endpoints `L1`, `L2`, `L3`.

    Args:
        depth: Number of weighted layers, 6n + 2 (20, 32, 44, 56, 110, ...); the paper's teacher is 56.
        num_classes: Number of classes of the softmax classifier.
        input_shape: (height, width, channels) of the images.
        weight_decay: Weight decay on every kernel (applied as an L2 penalty of half this coefficient).
        name: Model name; `resnet<depth>` by default.

    Returns:
        An uncompiled functional `keras.Model`.

    Raises:
        ValueError: If `depth` is not 6n + 2 for some n >= 1.

    Example:

    He et al.'s training (SGD, momentum 0.9, learning rate 0.1 divided by 10 at 32k and 48k steps):

    ```python
    model = resnet_cifar(depth=56, num_classes=100)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([32000, 48000], [0.1, 0.01, 0.001])
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    ```
    """
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 for an integer n >= 1 (20, 32, 44, 56, ...), got {depth!r}.")
    blocks_per_stack = (depth - 2) // 6
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None

    image = keras.Input(shape=tuple(input_shape), name="image")
    x = _conv_batchnorm(image, STACK_FILTERS[0], 1, regularizer, "stem")
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    for stack, filters in enumerate(STACK_FILTERS, start=1):
        for block in range(1, blocks_per_stack + 1):
            downsample = stack > 1 and block == 1
            last = block == blocks_per_stack
            name_prefix = f"stack{stack}_block{block}"
            output_name = stack_endpoint_name(stack) if last else f"{name_prefix}_out"
            x = _residual_block(x, filters, downsample, regularizer, name_prefix, output_name)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    probabilities = keras.layers.Dense(
        num_classes, activation="softmax", kernel_regularizer=regularizer, name="classifier"
    )(x)
    return keras.Model(image, probabilities, name=name or f"resnet{depth}")


def _conv_batchnorm(x: Any, filters: int, stride: int, regularizer: Any, name: str) -> Any:
    x = keras.layers.Conv2D(
        filters,
        3,
        strides=stride,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=regularizer,
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_batchnorm")(x)


def _residual_block(
    x: Any, filters: int, downsample: bool, regularizer: Any, name: str, output_name: str
) -> Any:
    residual = _conv_batchnorm(x, filters, 2 if downsample else 1, regularizer, f"{name}_1")
    residual = keras.layers.Activation("relu", name=f"{name}_1_relu")(residual)
    residual = _conv_batchnorm(residual, filters, 1, regularizer, f"{name}_2")
    shortcut = x
    if downsample:
        # Option A: subsample with stride 2 (a 1×1 pooling window picks every other pixel), then append
        # as many zero channels as the input has (filters double at every downsampling block).
        shortcut = keras.layers.MaxPooling2D(
            pool_size=1, strides=2, padding="same", name=f"{name}_shortcut_subsample"
        )(x)
        zeros = keras.layers.Rescaling(0.0, name=f"{name}_shortcut_zeros")(shortcut)
        shortcut = keras.layers.Concatenate(name=f"{name}_shortcut_pad")([shortcut, zeros])
    x = keras.layers.Add(name=f"{name}_add")([shortcut, residual])
    return keras.layers.Activation("relu", name=output_name)(x)
