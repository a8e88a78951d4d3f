"""The space of convolutional cells of NASNet and PNAS (TG-SAGE §4.3), as a KerasTuner HyperModel.

A candidate is one *cell*, repeated to form a network. The rules, and where each comes from:

- **Blocks.** A cell has B blocks. Block b reads two states, each chosen from the cell's two inputs and
  the outputs of blocks 1..b-1; it applies one operation to each and adds the two results.
- **Cell inputs.** `prev_cell` (H_{c-1}) and `prev_prev_cell` (H_{c-2}) are the outputs of the previous
  two cells. Where they do not exist yet, the stem's output stands for them (the paper substitutes the
  input image; NASNet's implementation, like this one, uses the image after the stem convolution). As in
  NASNet's implementation, `prev_cell` goes through ReLU, a 1×1 convolution to F filters and batch
  normalization; `prev_prev_cell`, when larger than `prev_cell` (it precedes a reduction), goes through
  ReLU and a factorized reduction, and otherwise, when its channels are not F, through ReLU-1×1 conv-BN.
  So every state a block reads has F channels, and no operation needs a projection afterwards.
- **Operations.** The paper's 8, in NASNet's ReLU-convolution-batch-norm order, with F filters:
  `identity`; `avg_pool_3x3` and `max_pool_3x3` ("same" padding); `dilated_conv_3x3` (dilation 2);
  `conv_1x7_7x1` (a 1×7 then a 7×1 convolution, one ReLU before and one batch norm after);
  `sep_conv_3x3`, `sep_conv_5x5`, `sep_conv_7x7` (depthwise-separable, depth multiplier 1, applied twice
  as in NASNet and PNAS, each time ReLU-separable conv-BN).
- **Strides.** In a reduction cell, operations on the cell's inputs have stride 2 and operations on block
  outputs (already reduced) stride 1, as in NASNet's implementation. A strided `identity` is ReLU, a 1×1
  convolution with stride 2, and batch norm. Keras does not stride dilated convolutions, so a strided
  `dilated_conv_3x3` keeps every other row and column of its stride-1 output (a 1×1 pooling with stride
  2): the values a strided dilated convolution computes. Every operation maps a size s to ⌈s / stride⌉.
- **Output.** The concatenation, on channels, of the states no block reads (NASNet's "unused hidden
  states": blocks, and cell inputs, in their F-channel form) and, when the paper's two extra
  hyperparameters `concat_prev_cell` / `concat_prev_prev_cell` are on, of that cell input even if blocks
  read it. So every cell's output reaches the classifier: a cell that read neither of its inputs would
  otherwise cut off the cells before it. An input larger than the blocks' outputs (in a reduction cell)
  is first brought down by a factorized reduction, as NASNet's implementation does.
- **Factorized reduction** (NASNet): two 1×1 convolutions with F/2 filters, one on the even rows and
  columns of the input, one on the input shifted by one pixel, concatenated and batch-normalized.

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

Batch normalization uses momentum 0.9 (the decay of NASNet's CIFAR setting): a premature budget is a few
hundred steps, too few for the moving averages of Keras's default 0.99 to settle. The default optimizer
is the paper's for cells (supplement, "CIFAR Training"): SGD with Nesterov momentum 0.9 at the start of
its schedule, a learning rate of 0.025, gradients clipped to a global norm of 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import keras_tuner

from keras_sage.contract import CandidateBuildError, cell_endpoint_name
from keras_sage.hypermodels.base import OptimizerFactory, check_optimizer, new_optimizer, positive_integer

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
PREV_CELL = "prev_cell"
PREV_PREV_CELL = "prev_prev_cell"
CELL_INPUTS = (PREV_CELL, PREV_PREV_CELL)
LAYOUTS = ("cifar", "imagenet")
REDUCTION_PLACEMENTS = ("between_stacks", "first_of_stack")

DEFAULT_NUM_BLOCKS = 5
# N = 2 during search gives the paper's 8 cells (8 RDMs); F = 24 is PNAS's filter count during search.
DEFAULT_NUM_REPEATS = 2
DEFAULT_FILTERS = 24
DEFAULT_LEARNING_RATE = 0.025
DEFAULT_GLOBAL_CLIPNORM = 5.0
BATCH_NORM_MOMENTUM = 0.9
# Stem filters: 3F for CIFAR; a fixed 32 for ImageNet (NASNet's stem multipliers 3 and 1).
CIFAR_STEM_MULTIPLIER = 3
IMAGENET_STEM_FILTERS = 32


def block_output(block: int) -> str:
    """The state name of the output of block `block` (from 1), as block inputs and `concatenated` use it."""
    return f"block_{block}"


@dataclass(frozen=True)
class Block:
    """One block of a cell: two (input, operation) pairs whose results are added.

    Args:
        inputs: The two states read: `"prev_cell"`, `"prev_prev_cell"` or `"block_<k>"` (an earlier block).
        operations: The operation applied to each input, from `OPERATIONS`.
    """

    inputs: tuple[str, str]
    operations: tuple[str, str]


@dataclass(frozen=True)
class CellStructure:
    """A cell: its blocks and the states concatenated into its output.

    `from_blocks` applies the search space's rule for the output; published cells list their
    concatenated states as their authors' code does (see the presets).

    Args:
        blocks: The blocks, in order.
        concatenated: The states joined into the cell's output, in order.
    """

    blocks: tuple[Block, ...]
    concatenated: tuple[str, ...]

    @classmethod
    def from_blocks(
        cls,
        blocks: Sequence[Block],
        concat_prev_cell: bool = False,
        concat_prev_prev_cell: bool = False,
    ) -> CellStructure:
        """The cell whose output joins the states no block reads, and the cell inputs forced into it.

        Args:
            blocks: The blocks, in order.
            concat_prev_cell: Whether `prev_cell` joins the output even if a block reads it.
            concat_prev_prev_cell: Whether `prev_prev_cell` joins the output even if a block reads it.

        Returns:
            The cell.
        """
        read = {state for block in blocks for state in block.inputs}
        forced = {PREV_CELL: concat_prev_cell, PREV_PREV_CELL: concat_prev_prev_cell}
        inputs = [state for state in CELL_INPUTS if forced[state] or state not in read]
        unread = [block_output(b) for b in range(1, len(blocks) + 1) if block_output(b) not in read]
        return cls(tuple(blocks), tuple(inputs + unread))

    def validate(self) -> None:
        """Raises `CandidateBuildError`, naming the block, unless this is a valid cell."""
        if not self.blocks:
            raise CandidateBuildError("A cell needs at least one block.")
        for number, block in enumerate(self.blocks, start=1):
            states = block_sources(number)
            for k, (state, operation) in enumerate(zip(block.inputs, block.operations, strict=True), 1):
                if state not in states:
                    raise CandidateBuildError(f"Block {number}: input {k} is {state!r}, not one of {states}.")
                if operation not in OPERATIONS:
                    raise CandidateBuildError(
                        f"Block {number}: operation {k} is {operation!r}, not one of {list(OPERATIONS)}."
                    )
        states = block_sources(len(self.blocks) + 1)
        if not self.concatenated or len(set(self.concatenated)) != len(self.concatenated):
            raise CandidateBuildError(f"The cell's concatenated states {self.concatenated} must be distinct.")
        for state in self.concatenated:
            if state not in states:
                raise CandidateBuildError(f"The cell's output joins {state!r}, not one of {states}.")

    def __str__(self) -> str:
        lines = [
            f"{block_output(number)} = {block.operations[0]}({block.inputs[0]}) + "
            f"{block.operations[1]}({block.inputs[1]})"
            for number, block in enumerate(self.blocks, start=1)
        ]
        return "\n".join([*lines, f"output = concat({', '.join(self.concatenated)})"])


def block_sources(block: int) -> list[str]:
    """The states block `block` (from 1) may read: the cell's two inputs and the earlier blocks."""
    return [*CELL_INPUTS, *(block_output(b) for b in range(1, block))]


@dataclass(frozen=True)
class CellPreset:
    """A published cell and the settings its authors report.

    Args:
        normal_cell: The cell.
        reduction_cell: A separate reduction cell (NASNet-A), or None to use `normal_cell` with stride 2.
        settings: For each layout, the published (N, F).
        reduction_placement: Where the authors' networks put their reduction cells (see `network_plan`).
    """

    normal_cell: CellStructure
    reduction_cell: CellStructure | None
    settings: dict[str, tuple[int, int]]
    reduction_placement: str = "between_stacks"


def _cell(pairs: Sequence[tuple[str, str, str, str]], concatenated: Sequence[str]) -> CellStructure:
    """A cell from (operation 1, input 1, operation 2, input 2) per block."""
    blocks = tuple(Block((input_1, input_2), (op_1, op_2)) for op_1, input_1, op_2, input_2 in pairs)
    return CellStructure(blocks, tuple(concatenated))


# The published cells, read from the authors' TensorFlow-Slim definitions (nets/nasnet/nasnet_utils.py
# and pnasnet.py in tensorflow/models), where `used_hiddenstates` lists the states left out of the
# output. N and F: NASNet-A and PNASNet-5 rows of the paper's Tables 2 (CIFAR) and 3 (ImageNet mobile).
# PNAS's implementation counts the reduction cell among the N cells of a stack (9 cells for N = 3, plus
# the ImageNet stem's two): so built, PNASNet-5 has the published 3.2M parameters at N = 3, F = 48; with
# reduction cells between stacks of N normal cells it would have 4.3M.
PNASNET_5 = _cell(
    [
        ("sep_conv_5x5", PREV_PREV_CELL, "max_pool_3x3", PREV_PREV_CELL),
        ("sep_conv_7x7", PREV_CELL, "max_pool_3x3", PREV_CELL),
        ("sep_conv_5x5", PREV_CELL, "sep_conv_3x3", PREV_CELL),
        ("sep_conv_3x3", block_output(3), "max_pool_3x3", PREV_CELL),
        ("sep_conv_3x3", PREV_PREV_CELL, "identity", PREV_CELL),
    ],
    [block_output(b) for b in range(1, 6)],
)
NASNET_A_NORMAL = _cell(
    [
        ("sep_conv_5x5", PREV_CELL, "sep_conv_3x3", PREV_PREV_CELL),
        ("sep_conv_5x5", PREV_PREV_CELL, "sep_conv_3x3", PREV_PREV_CELL),
        ("avg_pool_3x3", PREV_CELL, "identity", PREV_PREV_CELL),
        ("avg_pool_3x3", PREV_PREV_CELL, "avg_pool_3x3", PREV_PREV_CELL),
        ("sep_conv_3x3", PREV_CELL, "identity", PREV_CELL),
    ],
    [PREV_PREV_CELL, *(block_output(b) for b in range(1, 6))],
)
NASNET_A_REDUCTION = _cell(
    [
        ("sep_conv_5x5", PREV_CELL, "sep_conv_7x7", PREV_PREV_CELL),
        ("max_pool_3x3", PREV_CELL, "sep_conv_7x7", PREV_PREV_CELL),
        ("avg_pool_3x3", PREV_CELL, "sep_conv_5x5", PREV_PREV_CELL),
        ("identity", block_output(3), "avg_pool_3x3", block_output(2)),
        ("sep_conv_3x3", block_output(2), "max_pool_3x3", PREV_CELL),
    ],
    [block_output(b) for b in range(2, 6)],
)
PRESETS = {
    "pnasnet_5": CellPreset(PNASNET_5, None, {"cifar": (3, 48), "imagenet": (3, 56)}, "first_of_stack"),
    "nasnet_a": CellPreset(NASNET_A_NORMAL, NASNET_A_REDUCTION, {"cifar": (6, 32), "imagenet": (4, 44)}),
}


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
    """
    if reduction_placement not in REDUCTION_PLACEMENTS:
        raise ValueError(
            f"reduction_placement must be one of {list(REDUCTION_PLACEMENTS)}, got {reduction_placement!r}."
        )
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
    cells = []
    for reduction, scale in sequence:
        if reduction and dropped < drop_first_reductions:
            dropped += 1
            continue
        cells.append(CellPlan(len(cells) + 1, reduction, max(2, int(filters * scale))))
    return tuple(cells)


class CellSearchSpace(keras_tuner.HyperModel):
    """The paper's space of convolutional cells (NASNet/PNAS), generating networks as PNAS does.

    Hyperparameters (b = 1..B, k = 1, 2; none conditional): `block_b_input_k`, a choice among
    `prev_cell`, `prev_prev_cell` and `block_1`..`block_<b-1>`; `block_b_op_k`, a choice among the 8
    `OPERATIONS`; `concat_prev_cell` and `concat_prev_prev_cell`, booleans forcing a cell input into the
    output. The module docstring gives the rules that turn these into a network.

    With `normal_cell` given (or from `preset`), the space is that one network and declares no
    hyperparameter. `build(hp)` returns a model compiled with `sparse_categorical_crossentropy` and
    `accuracy`, whose endpoints are its cells (`cell_1` .. `cell_<3N+2>` for CIFAR).

    Args:
        num_blocks: B, blocks per cell.
        num_repeats: N, normal cells between reductions (2 during the paper's search: 8 cells).
        filters: F, filters of each operation in the first normal cells, doubled at each reduction.
        num_classes: Number of classes of the softmax classifier.
        input_shape: (height, width, channels) of the images.
        layout: `"cifar"`, or `"imagenet"` for the mobile ImageNet network (see the module docstring).
        drop_first_reductions: Leading reduction cells to leave out (2 for the paper's 64×64 search).
        reduction_placement: `"between_stacks"` (3N + 2 cells, the paper's search) or `"first_of_stack"`
            (3N cells, PNAS's PNASNet-5); see `network_plan`.
        normal_cell: A fixed cell instead of a searched one.
        reduction_cell: A separate fixed reduction cell (needs `normal_cell`).
        optimizer: `None` for the paper's SGD (see the module docstring); the name of a Keras optimizer,
            created with `learning_rate`; or a callable with no arguments returning a new optimizer.
        learning_rate: Learning rate of the default or named optimizer.
        name: Name of the HyperModel.
        tunable: Whether the hyperparameters are added to the search space.

    Example:

    ```python
    space = CellSearchSpace(num_classes=100, input_shape=(32, 32, 3))  # B = 5, N = 2, F = 24
    tuner = SageTuner(space, teacher="resnet_teacher.h5", oracle=TPEOracle(max_trials=1000))
    tuner.search(train, validation_data=validation)
    best = tuner.get_best_hyperparameters()[0]
    full = CellSearchSpace(num_repeats=6, filters=32, num_classes=100, input_shape=(32, 32, 3))
    model = full.build(best)  # the found cell at the size of Table 2
    pnasnet = CellSearchSpace.preset("pnasnet_5", num_classes=10, input_shape=(32, 32, 3))
    model = pnasnet.build(keras_tuner.HyperParameters())
    ```
    """

    def __init__(
        self,
        num_blocks: int = DEFAULT_NUM_BLOCKS,
        num_repeats: int = DEFAULT_NUM_REPEATS,
        filters: int = DEFAULT_FILTERS,
        *,
        num_classes: int,
        input_shape: Sequence[int],
        layout: str = "cifar",
        drop_first_reductions: int = 0,
        reduction_placement: str = "between_stacks",
        normal_cell: CellStructure | None = None,
        reduction_cell: CellStructure | None = None,
        optimizer: str | OptimizerFactory | None = None,
        learning_rate: float = DEFAULT_LEARNING_RATE,
        name: str | None = None,
        tunable: bool = True,
    ) -> None:
        super().__init__(name=name, tunable=tunable)
        self.num_blocks = positive_integer(num_blocks, "num_blocks")
        self.num_repeats = positive_integer(num_repeats, "num_repeats")
        self.filters = positive_integer(filters, "filters")
        if self.filters < 2:
            raise ValueError(f"filters must be at least 2 (a factorized reduction halves it), got {filters}.")
        self.num_classes = positive_integer(num_classes, "num_classes")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        if isinstance(input_shape, str) or len(input_shape) != 3:
            raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}.")
        self.input_shape = tuple(positive_integer(size, "each size in input_shape") for size in input_shape)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}.")
        if layout == "imagenet" and min(self.input_shape[:2]) < 3:
            raise ValueError(f"The imagenet layout needs images of at least 3×3, got {self.input_shape}.")
        self.layout = layout
        plan = network_plan(layout, 1, self.filters, reduction_placement=reduction_placement)
        self.reduction_placement = reduction_placement
        reductions = sum(cell.reduction for cell in plan)
        if (
            not isinstance(drop_first_reductions, int)
            or isinstance(drop_first_reductions, bool)
            or not 0 <= drop_first_reductions <= reductions
        ):
            raise ValueError(
                f"drop_first_reductions must be an integer in [0, {reductions}] for the {layout} layout, "
                f"got {drop_first_reductions!r}."
            )
        self.drop_first_reductions = drop_first_reductions
        if reduction_cell is not None and normal_cell is None:
            raise ValueError("reduction_cell needs a normal_cell: a searched cell is both.")
        for argument, cell in (("normal_cell", normal_cell), ("reduction_cell", reduction_cell)):
            if cell is None:
                continue
            if not isinstance(cell, CellStructure):
                raise TypeError(f"{argument} must be a CellStructure, got {cell!r}.")
            try:
                cell.validate()
            except CandidateBuildError as error:
                raise ValueError(f"{argument} is not a valid cell: {error}") from error
        self.normal_cell = normal_cell
        self.reduction_cell = reduction_cell
        check_optimizer(optimizer)
        self.optimizer = optimizer
        self.learning_rate = learning_rate

    @classmethod
    def preset(
        cls,
        name: str,
        *,
        num_classes: int,
        input_shape: Sequence[int],
        layout: str = "cifar",
        num_repeats: int | None = None,
        filters: int | None = None,
        **kwargs: Any,
    ) -> CellSearchSpace:
        """The network of a published cell, with the N and F its authors report for `layout`.

        Args:
            name: `"pnasnet_5"` (PNASNet-5: one cell, PNAS generation) or `"nasnet_a"` (NASNet-A: its
                normal and its reduction cell). SAGENet's cell is only in the paper's missing Figure S2,
                so it is not a preset.
            num_classes: Number of classes.
            input_shape: (height, width, channels) of the images.
            layout: `"cifar"` (Table 2) or `"imagenet"` (Table 3, mobile).
            num_repeats: N, instead of the published one.
            filters: F, instead of the published one.
            **kwargs: Other arguments of `CellSearchSpace` (optimizer, learning_rate, ...).

        Returns:
            A space of one network; `build(keras_tuner.HyperParameters())` builds it.

        Example:

        ```python
        space = CellSearchSpace.preset("nasnet_a", num_classes=10, input_shape=(32, 32, 3))
        space.build(keras_tuner.HyperParameters()).count_params()  # about 3.3M, as in Table 2 (N = 6, F = 32)
        ```
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown cell preset {name!r}; the presets are {sorted(PRESETS)}.")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}.")
        preset = PRESETS[name]
        published_repeats, published_filters = preset.settings[layout]
        return cls(
            num_repeats=published_repeats if num_repeats is None else num_repeats,
            filters=published_filters if filters is None else filters,
            num_blocks=len(preset.normal_cell.blocks),
            num_classes=num_classes,
            input_shape=input_shape,
            layout=layout,
            normal_cell=preset.normal_cell,
            reduction_cell=preset.reduction_cell,
            reduction_placement=preset.reduction_placement,
            name=kwargs.pop("name", name),
            **kwargs,
        )

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Declares every hyperparameter of the space in `hp`."""
        self.cell_structure(hp)

    def cell_structure(self, hp: keras_tuner.HyperParameters) -> CellStructure:
        """Declares the hyperparameters in `hp` and returns the cell their values describe.

        Args:
            hp: The hyperparameters of one candidate.

        Returns:
            The cell (the fixed `normal_cell`, if the space has one).

        Raises:
            CandidateBuildError: If a value in `hp` lies outside the space (for example one set by hand).
        """
        if self.normal_cell is not None:
            return self.normal_cell
        blocks = []
        for number in range(1, self.num_blocks + 1):
            sources = block_sources(number)
            inputs = tuple(hp.Choice(f"block_{number}_input_{k}", sources) for k in (1, 2))
            operations = tuple(hp.Choice(f"block_{number}_op_{k}", list(OPERATIONS)) for k in (1, 2))
            blocks.append(Block(inputs, operations))
        cell = CellStructure.from_blocks(
            blocks,
            concat_prev_cell=hp.Boolean("concat_prev_cell", default=False),
            concat_prev_prev_cell=hp.Boolean("concat_prev_prev_cell", default=False),
        )
        cell.validate()
        return cell

    def network_plan(self) -> tuple[CellPlan, ...]:
        """The cells of this space's networks, in depth order."""
        return network_plan(
            self.layout, self.num_repeats, self.filters, self.drop_first_reductions, self.reduction_placement
        )

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Builds and compiles the network of the cell that `hp` describes.

        Args:
            hp: The hyperparameters of one candidate (an empty `keras_tuner.HyperParameters()` for a
                fixed cell, or for the defaults).

        Returns:
            A compiled `keras.Model` whose endpoints are `cell_1` .. `cell_<number of cells>`.

        Raises:
            CandidateBuildError: If a value in `hp` lies outside the space.
        """
        cell = self.cell_structure(hp)
        model = self.model_from_cells(cell, self.reduction_cell)
        model.compile(
            optimizer=new_optimizer(self.optimizer, self.learning_rate, DEFAULT_GLOBAL_CLIPNORM),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def model_from_cells(
        self, normal_cell: CellStructure, reduction_cell: CellStructure | None = None
    ) -> keras.Model:
        """Returns the uncompiled network of `normal_cell` (and `reduction_cell`, if given)."""
        image = keras.Input(shape=self.input_shape, name="image")
        if self.layout == "cifar":
            x = keras.layers.Conv2D(
                CIFAR_STEM_MULTIPLIER * self.filters, 3, padding="same", use_bias=False, name="stem_conv"
            )(image)
        else:
            x = keras.layers.Conv2D(
                IMAGENET_STEM_FILTERS, 3, strides=2, padding="valid", use_bias=False, name="stem_conv"
            )(image)
        x = _batch_norm("stem_bn")(x)
        prev_prev, prev = x, x
        for plan in self.network_plan():
            cell = reduction_cell if plan.reduction and reduction_cell is not None else normal_cell
            output = _CellBuilder(plan).build(cell, prev, prev_prev)
            prev_prev, prev = prev, output
        x = keras.layers.ReLU(name="final_relu")(prev)
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
        probabilities = keras.layers.Dense(self.num_classes, activation="softmax", name="classifier")(x)
        return keras.Model(image, probabilities, name=self.name or "cell_network")


def _batch_norm(name: str) -> keras.layers.Layer:
    return keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=name)


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
        self.states[PREV_CELL] = self._conv_bn(rectified_prev, 1, 1, f"{self.name}_prev_cell")
        self.states[PREV_PREV_CELL] = self._match(
            prev_prev, self.states[PREV_CELL], f"{self.name}_prev_prev_cell"
        )
        for number, block in enumerate(cell.blocks, start=1):
            name = f"{self.name}_{block_output(number)}"
            results = [
                self._operation(state, operation, f"{name}_{k}_{operation}")
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
            return self._conv_bn(keras.layers.ReLU(name=f"{name}_input_relu")(prev_prev), 1, 1, name)
        return prev_prev

    def _reduce_to(self, state: Any, reference: Any, name: str) -> Any:
        """A cell input joining the output, reduced to the blocks' size if it is larger."""
        if state.shape[1:3] == reference.shape[1:3]:
            return state
        return self._factorized_reduction(state, reference, name)

    def _factorized_reduction(self, x: Any, reference: Any, name: str) -> Any:
        half = self.filters // 2
        even = keras.layers.AveragePooling2D(1, strides=2, name=f"{name}_even")(x)
        even = keras.layers.Conv2D(half, 1, use_bias=False, name=f"{name}_even_conv")(even)
        shifted = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pad")(x)
        shifted = keras.layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_shift")(shifted)
        shifted = keras.layers.AveragePooling2D(1, strides=2, name=f"{name}_odd")(shifted)
        shifted = keras.layers.Conv2D(self.filters - half, 1, use_bias=False, name=f"{name}_odd_conv")(
            shifted
        )
        x = keras.layers.Concatenate(axis=-1, name=f"{name}_concat")([even, shifted])
        x = _batch_norm(f"{name}_bn")(x)
        if x.shape[1:3] != reference.shape[1:3]:
            raise CandidateBuildError(
                f"Cell {self.plan.number}: a state of size {tuple(x.shape[1:3])} after reduction does not "
                f"match the cell's size {tuple(reference.shape[1:3])}."
            )
        return x

    def _conv_bn(self, x: Any, kernel_size: int, strides: int, name: str) -> Any:
        x = keras.layers.Conv2D(
            self.filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        return _batch_norm(f"{name}_bn")(x)

    def _operation(self, state: str, operation: str, name: str) -> Any:
        stride = 2 if self.plan.reduction and state in CELL_INPUTS else 1
        if operation == "identity":
            if stride == 1:
                return self.states[state]
            return self._conv_bn(self._rectified(state), 1, stride, name)
        if operation in ("avg_pool_3x3", "max_pool_3x3"):
            average = operation == "avg_pool_3x3"
            pooling = keras.layers.AveragePooling2D if average else keras.layers.MaxPooling2D
            return pooling(3, strides=stride, padding="same", name=name)(self.states[state])
        x = self._rectified(state)
        if operation == "dilated_conv_3x3":
            x = keras.layers.Conv2D(
                self.filters, 3, dilation_rate=2, padding="same", use_bias=False, name=f"{name}_conv"
            )(x)
            if stride == 2:
                x = keras.layers.AveragePooling2D(1, strides=2, name=f"{name}_stride")(x)
            return _batch_norm(f"{name}_bn")(x)
        if operation == "conv_1x7_7x1":
            x = keras.layers.Conv2D(
                self.filters, (1, 7), strides=(1, stride), padding="same", use_bias=False, name=f"{name}_1x7"
            )(x)
            x = keras.layers.Conv2D(
                self.filters, (7, 1), strides=(stride, 1), padding="same", use_bias=False, name=f"{name}_7x1"
            )(x)
            return _batch_norm(f"{name}_bn")(x)
        kernel_size = int(operation[-1])
        for repeat in (1, 2):
            if repeat == 2:
                x = keras.layers.ReLU(name=f"{name}_relu_2")(x)
            x = keras.layers.SeparableConv2D(
                self.filters,
                kernel_size,
                strides=stride if repeat == 1 else 1,
                padding="same",
                use_bias=False,
                name=f"{name}_sep_{repeat}",
            )(x)
            x = _batch_norm(f"{name}_bn_{repeat}")(x)
        return x
