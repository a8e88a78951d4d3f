"""The compactness of a network, as the paper's Tables 2 and 3 report it: parameters and FLOPs.

FLOPs are counted as NASNet and PNAS count their mult-adds, doubled (the paper's Table 3 gives NASNet-A
1.16B FLOPs for the 564M mult-adds NASNet reports): two operations per multiply-accumulate of the
convolutions (standard, grouped, depthwise, separable, transposed) and dense layers, for one input at
the model's input size. Pooling, normalization, activations and additions are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import keras

__all__ = ["count_flops"]

_CONVOLUTIONS_AT_OUTPUT = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
)
_CONVOLUTIONS_AT_INPUT = (
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)


def count_flops(model: keras.Model) -> int:
    """Returns the FLOPs of one forward pass of `model` on one input: 2 × its multiply-accumulates.

    A convolution or dense layer does one multiply-accumulate per weight of its kernel at every
    position of its output (of its input, for a transposed convolution); a separable convolution sums
    its depthwise and pointwise kernels. Layers of nested models are counted; a layer called more than
    once is counted once.

    Args:
        model: A built Keras model with a known input size (a functional or built sequential model).

    Returns:
        The FLOPs, an integer.

    Raises:
        ValueError: If a counted layer's output size is not known, naming the layer.

    Example:

    ```python
    model = keras_sage.resnet_cifar(depth=20)
    count_flops(model)  # 81.1 million: 40.6M mult-adds (He et al. report 41M)
    ```
    """
    multiply_accumulates = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, _CONVOLUTIONS_AT_INPUT):
            positions = _positions(layer, layer.input.shape)
        elif isinstance(layer, _CONVOLUTIONS_AT_OUTPUT):
            positions = _positions(layer, layer.output.shape)
        else:
            continue
        kernels = [
            getattr(layer, name)
            for name in ("kernel", "depthwise_kernel", "pointwise_kernel")
            if hasattr(layer, name)
        ]
        multiply_accumulates += positions * sum(math.prod(kernel.shape) for kernel in kernels)
    return 2 * multiply_accumulates


def _positions(layer: keras.layers.Layer, shape: tuple[int | None, ...]) -> int:
    """The number of positions (all axes but the batch and the channels) of a tensor of `shape`."""
    spatial = [size for size in shape[1:-1] if size is not None]
    if len(spatial) < len(shape) - 2:
        raise ValueError(
            f"Layer {layer.name!r} has an unknown size {tuple(shape)}; FLOPs need a model built for a fixed "
            "input size."
        )
    return math.prod(spatial)


def _leaf_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer
