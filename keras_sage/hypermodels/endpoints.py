"""Which layers of a model are its representation endpoints, by a layer-naming convention.

A representation endpoint is a layer whose output is compared with the teacher: every convolutional
layer of a `CNNSearchSpace` candidate (`layer_1`, `layer_2`, ...), every cell of a `CellSearchSpace`
network (`cell_1`, `cell_2`, ...) and each of the three stacks of a CIFAR ResNet (`L1`, `L2`, `L3`, the
paper's names). Endpoints are marked by name rather than by a model
attribute so that they survive `model.save()` and `keras.saving.load_model()`.
"""

from __future__ import annotations

import re

import keras

# Prefixes of endpoint layer names; the number after the prefix is the endpoint's depth order.
_ENDPOINT_NAME = re.compile(r"^(?:layer_|cell_|L)(\d+)$")


def layer_endpoint_name(layer: int) -> str:
    """The name of the endpoint of layer `layer` (from 1) of a layer-wise search space."""
    return f"layer_{layer}"


def cell_endpoint_name(cell: int) -> str:
    """The name of the endpoint of cell `cell` (from 1, counting every cell of the network in depth order)."""
    return f"cell_{cell}"


def stack_endpoint_name(stack: int) -> str:
    """The name of the endpoint after stack `stack` (from 1) of a ResNet, the paper's `L1`-`L3`."""
    return f"L{stack}"


def representation_endpoints(model: keras.Model) -> list[str]:
    """Returns the names of the representation endpoints of `model`, in depth order.

    An endpoint is a layer named `layer_<n>`, `cell_<n>` or `L<n>`; `n` gives the order.

    Args:
        model: A Keras model, for example one built by `CNNSearchSpace`, `CellSearchSpace` or
            `resnet_cifar`, or loaded back from a file.

    Returns:
        Layer names, shallowest first; empty if the model has no endpoint.

    Example:

    ```python
    model = keras_sage.resnet_cifar(depth=20)
    representation_endpoints(model)  # ["L1", "L2", "L3"]
    ```
    """
    numbered = []
    for layer in model.layers:
        match = _ENDPOINT_NAME.match(layer.name)
        if match:
            numbered.append((int(match.group(1)), layer.name))
    return [name for _, name in sorted(numbered)]
