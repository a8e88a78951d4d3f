"""The operations a block applies to a state, and the factorized reduction (NASNet, PNAS, TG-SAGE §4.3).

- **Operations.** The paper's 8, in NASNet's ReLU-convolution-batch-norm order, with F filters:
  `identity`; `avg_pool_3x3` and `max_pool_3x3` ("same" padding); `dilated_conv_3x3` (dilation 2);
  `conv_1x7_7x1` (a 1×7 then a 7×1 convolution, one ReLU before and one batch norm after);
  `sep_conv_3x3`, `sep_conv_5x5`, `sep_conv_7x7` (depthwise-separable, depth multiplier 1, applied twice
  as in NASNet and PNAS, each time ReLU-separable conv-BN).
- **Strides.** A strided `identity` is ReLU, a 1×1 convolution with stride 2, and batch norm. Keras does
  not stride dilated convolutions, so a strided `dilated_conv_3x3` keeps every other row and column of its
  stride-1 output (a 1×1 pooling with stride 2): the values a strided dilated convolution computes. Every
  operation maps a size s to ⌈s / stride⌉.
- **Factorized reduction** (NASNet): two 1×1 convolutions with F/2 filters, one on the even rows and
  columns of the input, one on the input shifted by one pixel, concatenated and batch-normalized.

Batch normalization uses momentum 0.9 (the decay of NASNet's CIFAR setting): a premature budget is a few
hundred steps, too few for the moving averages of Keras's default 0.99 to settle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from keras_sage.hypermodels.base import BATCH_NORM_MOMENTUM

OPERATIONS = (
    "identity",
    "avg_pool_3x3",
    "max_pool_3x3",
    "dilated_conv_3x3",
    "conv_1x7_7x1",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)


def batch_norm(name: str) -> keras.layers.Layer:
    """A batch normalization layer with the cells' momentum, `BATCH_NORM_MOMENTUM`."""
    return keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=name)


def conv_bn(x: Any, filters: int, kernel_size: int, strides: int, name: str) -> Any:
    """A convolution without bias ("same" padding), then batch norm; the layers are `<name>_conv`, `_bn`.

    Args:
        x: The input tensor.
        filters: Filters of the convolution.
        kernel_size: Its kernel size.
        strides: Its strides.
        name: Prefix of the layer names.

    Returns:
        The output tensor.
    """
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    return batch_norm(f"{name}_bn")(x)


def factorized_reduction(x: Any, filters: int, name: str) -> Any:
    """NASNet's factorized reduction of `x` to half its size (⌈s / 2⌉) and `filters` channels.

    Args:
        x: The input tensor (already rectified, where a ReLU is wanted).
        filters: Channels of the output: `filters // 2` from the even pixels, the rest from the odd ones.
        name: Prefix of the layer names.

    Returns:
        The output tensor.
    """
    half = filters // 2
    even = keras.layers.AveragePooling2D(1, strides=2, name=f"{name}_even")(x)
    even = keras.layers.Conv2D(half, 1, use_bias=False, name=f"{name}_even_conv")(even)
    shifted = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
    shifted = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_shift")(shifted)
    shifted = keras.layers.AveragePooling2D(1, strides=2, name=f"{name}_odd")(shifted)
    shifted = keras.layers.Conv2D(filters - half, 1, use_bias=False, name=f"{name}_odd_conv")(shifted)
    x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([even, shifted])
    return batch_norm(f"{name}_bn")(x)


def apply_operation(
    operation: str, state: Any, rectified: Callable[[], Any], filters: int, stride: int, name: str
) -> Any:
    """Applies one of the `OPERATIONS` to a state.

    Args:
        operation: The operation's name, one of `OPERATIONS`.
        state: The state the operation reads.
        rectified: Returns the ReLU of `state`; a cell makes it once and shares it between the operations
            that begin with a ReLU.
        filters: F, the filters of every convolution.
        stride: 1, or 2 for an operation on a cell input in a reduction cell.
        name: The layer name of a one-layer operation, and the prefix of the others' layer names.

    Returns:
        The output tensor, of F channels (pooling and stride-1 identity keep the state's channels).

    Example:

    ```python
    x = keras.Input((8, 8, 16))
    relu = keras.layers.ReLU()(x)
    y = apply_operation("sep_conv_3x3", x, lambda: relu, filters=16, stride=2, name="op")  # (4, 4, 16)
    ```
    """
    if operation == "identity":
        if stride == 1:
            return state
        return conv_bn(rectified(), filters, 1, stride, name)
    if operation in ("avg_pool_3x3", "max_pool_3x3"):
        pooling = keras.layers.AveragePooling2D if operation == "avg_pool_3x3" else keras.layers.MaxPooling2D
        return pooling(3, strides=stride, padding="same", name=name)(state)
    x = rectified()
    if operation == "dilated_conv_3x3":
        x = keras.layers.Conv2D(
            filters, 3, dilation_rate=2, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        if stride == 2:
            x = keras.layers.AveragePooling2D(1, strides=2, name=f"{name}_stride")(x)
        return batch_norm(f"{name}_bn")(x)
    if operation == "conv_1x7_7x1":
        x = keras.layers.Conv2D(
            filters, (1, 7), strides=(1, stride), padding="same", use_bias=False, name=f"{name}_1x7"
        )(x)
        x = keras.layers.Conv2D(
            filters, (7, 1), strides=(stride, 1), padding="same", use_bias=False, name=f"{name}_7x1"
        )(x)
        return batch_norm(f"{name}_bn")(x)
    kernel_size = int(operation[-1])
    for repeat in (1, 2):
        if repeat == 2:
            x = keras.layers.ReLU(name=f"{name}_relu_2")(x)
        x = keras.layers.SeparableConv2D(
            filters,
            kernel_size,
            strides=stride if repeat == 1 else 1,
            padding="same",
            use_bias=False,
            name=f"{name}_sep_{repeat}",
        )(x)
        x = batch_norm(f"{name}_bn_{repeat}")(x)
    return x
