"""Networks of cells: which cells a layout has (`network_plan`), and their layers (`cell_network`).

Network generation follows PNAS: one cell structure serves as normal cell and, with stride 2 and twice
the filters, as reduction cell (NASNet-A passes a separate `reduction_cell`). Layouts:

- `"cifar"`: a 3×3 convolution with 3F filters and batch norm (the stem), N normal cells, a reduction
  cell, N normal cells, a reduction cell, N normal cells: 3N + 2 cells.
- `"imagenet"` (the mobile setting of the paper's Table 3): a 3×3 convolution with 32 filters, stride 2
  and no padding, two reduction cells with F/4 and F/2 filters, then the CIFAR sequence: 3N + 4 cells.
  `drop_first_reductions=2` removes the first two reduction cells, as the paper does for its 64×64 search
  (§4.4); the other cells keep their filters.
- `reduction_placement="first_of_stack"` makes the reduction cell the first of the N cells of the second
  and third stacks (3N cells, or 3N + 2 on ImageNet), as PNAS's implementation builds PNASNet-5.

Then ReLU, global average pooling and a softmax classifier; no dropout or drop-path (the paper used
neither). Every cell's output is a representation endpoint named `cell_<n>`, numbered in depth order.

How a cell's layers are made:

- **Cell inputs.** Where the previous two cells do not exist yet, the stem's output stands for them (the
  paper substitutes the input image; NASNet's implementation, like this one, uses the image after the
  stem convolution). As in NASNet's implementation, `prev_cell` goes through ReLU, a 1×1 convolution to F
  filters and batch normalization; `prev_prev_cell`, when larger than `prev_cell` (it precedes a
  reduction), goes through ReLU and a factorized reduction, and otherwise, when its channels are not F,
  through ReLU-1×1 conv-BN. So every state a block reads has F channels, and no operation needs a
  projection afterwards.
- **Strides.** In a reduction cell, operations on the cell's inputs have stride 2 and operations on block
  outputs (already reduced) stride 1, as in NASNet's implementation.
- **Output.** The states of `CellStructure.concatenated`, cell inputs in their F-channel form; an input
  larger than the blocks' outputs (in a reduction cell) is first brought down by a factorized reduction,
  as NASNet's implementation does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras

from keras_sage._validation import check_choice
from keras_sage.contract import CandidateBuildError, cell_endpoint_name
from keras_sage.hypermodels.cells.cell import (
    CELL_INPUTS,
    PREV_CELL,
    PREV_PREV_CELL,
    CellStructure,
    block_output,
)
from keras_sage.hypermodels.cells.ops import apply_operation, batch_norm, conv_bn, factorized_reduction

LAYOUTS = ("cifar", "imagenet")
REDUCTION_PLACEMENTS = ("between_stacks", "first_of_stack")
# Stem filters: 3F for CIFAR; a fixed 32 for ImageNet (NASNet's stem multipliers 3 and 1).
CIFAR_STEM_MULTIPLIER = 3
IMAGENET_STEM_FILTERS = 32


@dataclass(frozen=True)
class CellPlan:
    """One cell of a network, as generated.

    Args:
        number: Position in the network, from 1 (the endpoint is `cell_<number>`).
        reduction: Whether it is a reduction cell (stride 2).
        filters: F of this cell: filters of each operation.
    """

    number: int
    reduction: bool
    filters: int


def network_plan(
    layout: str,
    num_repeats: int,
    filters: int,
    drop_first_reductions: int = 0,
    reduction_placement: str = "between_stacks",
) -> tuple[CellPlan, ...]:
    """The cells of a network: the layout's sequence, less its first `drop_first_reductions` reductions.

    Each reduction doubles the filters of the cells after it; the ImageNet stem's two reduction cells
    have F/4 and F/2 filters. Dropping a reduction cell leaves the other cells' filters unchanged.

    Args:
        layout: `"cifar"` or `"imagenet"`.
        num_repeats: N.
        filters: F, the filters of the first normal cells.
        drop_first_reductions: Number of leading reduction cells to leave out.
        reduction_placement: `"between_stacks"`: three stacks of N normal cells with a reduction cell
            between them (3N + 2 cells; NASNet, and the paper's search, whose N = 2 gives 8 cells);
            `"first_of_stack"`: three stacks of N cells whose second and third start with the reduction
            cell (3N cells; PNAS's implementation of PNASNet-5).

    Returns:
        The cells in depth order.

    Example:

    ```python
    [cell.filters for cell in network_plan("cifar", num_repeats=1, filters=24)]  # [24, 48, 48, 96, 96]
    ```
    """
    check_choice("reduction_placement", reduction_placement, REDUCTION_PLACEMENTS)
    sequence: list[tuple[bool, float]] = []
    if layout == "imagenet":
        # The ImageNet stem's two reduction cells, before the CIFAR-like sequence.
        sequence += [(True, 1 / 4), (True, 1 / 2)]
    for stack in range(3):
        normal_cells = num_repeats
        if stack:
            sequence.append((True, 2**stack))
            normal_cells -= reduction_placement == "first_of_stack"
        sequence += [(False, 2**stack)] * normal_cells
    dropped = 0
    cells: list[CellPlan] = []
    for reduction, scale in sequence:
        if reduction and dropped < drop_first_reductions:
            dropped += 1
            continue
        cells.append(CellPlan(len(cells) + 1, reduction, max(2, int(filters * scale))))
    return tuple(cells)


def cell_network(
    normal_cell: CellStructure,
    reduction_cell: CellStructure | None,
    plan: Sequence[CellPlan],
    *,
    layout: str,
    filters: int,
    input_shape: Sequence[int],
    num_classes: int,
    name: str | None = None,
) -> keras.Model:
    """The uncompiled network of a cell: the layout's stem, the planned cells, and the classifier.

    Args:
        normal_cell: The cell of every planned cell (of every normal cell, if `reduction_cell` is given).
        reduction_cell: A separate cell for the reduction cells, or None.
        plan: The cells, in depth order (see `network_plan`).
        layout: `"cifar"` or `"imagenet"`: which stem.
        filters: F, whose multiple is the CIFAR stem's filters.
        input_shape: (height, width, channels) of the images.
        num_classes: Number of classes of the softmax classifier.
        name: Name of the model; `"cell_network"` if None.

    Returns:
        A `keras.Model` whose endpoints are `cell_1` .. `cell_<len(plan)>`.

    Raises:
        CandidateBuildError: If a reduced state does not match the size of its cell.

    Example:

    ```python
    plan = network_plan("cifar", num_repeats=2, filters=24)
    model = cell_network(PNASNET_5, None, plan, layout="cifar", filters=24, input_shape=(32, 32, 3),
                         num_classes=10)
    ```
    """
    image = keras.Input(shape=tuple(input_shape), name="image")
    if layout == "cifar":
        x = keras.layers.Conv2D(
            CIFAR_STEM_MULTIPLIER * filters, 3, padding="same", use_bias=False, name="stem_conv"
        )(image)
    else:
        x = keras.layers.Conv2D(
            IMAGENET_STEM_FILTERS, 3, strides=2, padding="valid", use_bias=False, name="stem_conv"
        )(image)
    x = batch_norm("stem_bn")(x)
    prev_prev, prev = x, x
    for cell_plan in plan:
        cell = reduction_cell if cell_plan.reduction and reduction_cell is not None else normal_cell
        output = _CellBuilder(cell_plan).build(cell, prev, prev_prev)
        prev_prev, prev = prev, output
    x = keras.layers.ReLU(name="final_relu")(prev)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(image, probabilities, name=name or "cell_network")


class _CellBuilder:
    """Adds the layers of one cell to a functional model; layer names start with `cell_<n>_`.

    Operations that begin with a ReLU share one ReLU of the state they read.
    """

    def __init__(self, plan: CellPlan) -> None:
        self.plan = plan
        self.filters = plan.filters
        self.name = cell_endpoint_name(plan.number)
        self.states: dict[str, Any] = {}
        self.rectified_states: dict[str, Any] = {}

    def build(self, cell: CellStructure, prev: Any, prev_prev: Any) -> Any:
        rectified_prev = keras.layers.ReLU(name=f"{self.name}_prev_cell_input_relu")(prev)
        self.states[PREV_CELL] = conv_bn(rectified_prev, self.filters, 1, 1, f"{self.name}_prev_cell")
        self.states[PREV_PREV_CELL] = self._match(
            prev_prev, self.states[PREV_CELL], f"{self.name}_prev_prev_cell"
        )
        for number, block in enumerate(cell.blocks, start=1):
            name = f"{self.name}_{block_output(number)}"
            results = [
                apply_operation(
                    operation,
                    self.states[state],
                    functools.partial(self._rectified, state),
                    self.filters,
                    2 if self.plan.reduction and state in CELL_INPUTS else 1,
                    f"{name}_{k}_{operation}",
                )
                for k, (state, operation) in enumerate(zip(block.inputs, block.operations, strict=True), 1)
            ]
            self.states[block_output(number)] = keras.layers.Add(name=name)(results)
        reference = self.states[block_output(len(cell.blocks))]
        joined = [
            self._reduce_to(self.states[state], reference, f"{self.name}_{state}_reduced")
            if state in CELL_INPUTS
            else self.states[state]
            for state in cell.concatenated
        ]
        if len(joined) == 1:
            return keras.layers.Identity(name=self.name)(joined[0])
        return keras.layers.Concatenate(axis=-1, name=self.name)(joined)

    def _rectified(self, state: str) -> Any:
        """ReLU of a state, made once per cell."""
        if state not in self.rectified_states:
            relu = keras.layers.ReLU(name=f"{self.name}_{state}_relu")
            self.rectified_states[state] = relu(self.states[state])
        return self.rectified_states[state]

    def _match(self, prev_prev: Any, prev: Any, name: str) -> Any:
        """`prev_prev` brought to the size of `prev` and to F channels."""
        if prev_prev.shape[1:3] != prev.shape[1:3]:
            x = keras.layers.ReLU(name=f"{name}_input_relu")(prev_prev)
            return self._factorized_reduction(x, prev, name)
        if prev_prev.shape[-1] != self.filters:
            x = keras.layers.ReLU(name=f"{name}_input_relu")(prev_prev)
            return conv_bn(x, self.filters, 1, 1, name)
        return prev_prev

    def _reduce_to(self, state: Any, reference: Any, name: str) -> Any:
        """A cell input joining the output, reduced to the blocks' size if it is larger."""
        if state.shape[1:3] == reference.shape[1:3]:
            return state
        return self._factorized_reduction(state, reference, name)

    def _factorized_reduction(self, x: Any, reference: Any, name: str) -> Any:
        """`factorized_reduction` of `x`, which must bring it to the size of `reference`."""
        x = factorized_reduction(x, self.filters, name)
        if x.shape[1:3] != reference.shape[1:3]:
            raise CandidateBuildError(
                f"Cell {self.plan.number}: a state of size {tuple(x.shape[1:3])} after reduction does not "
                f"match the cell's size {tuple(reference.shape[1:3])}."
            )
        return x
