"""What a search space declares about its structure, for oracles that generate architectures.

Most oracles (random search, TPE) see only KerasTuner's flat list of hyperparameters. The REINFORCE
controller of the paper instead runs one LSTM step per layer of the candidate and shares one softmax head
per kind of choice across layers, so it must know which hyperparameters belong to which layer and which
are connections. A HyperModel tells it by implementing `LayerwiseSearchSpace`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


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
