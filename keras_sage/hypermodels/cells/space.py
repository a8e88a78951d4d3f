"""The paper's space of convolutional cells (NASNet/PNAS, TG-SAGE §4.3), as a KerasTuner HyperModel.

A candidate is one cell (`cell`), repeated to form a network (`network`). The hyperparameters
(b = 1..B, k = 1, 2; none conditional): `block_b_input_k`, a choice among `prev_cell`, `prev_prev_cell`
and `block_1`..`block_<b-1>`; `block_b_op_k`, a choice among the 8 `OPERATIONS` (`ops`);
`concat_prev_cell` and `concat_prev_prev_cell`, booleans forcing a cell input into the cell's output.

The default optimizer is the paper's for cells (supplement, "CIFAR Training"): SGD with Nesterov momentum
0.9 at the start of its schedule, a learning rate of 0.025, gradients clipped to a global norm of 5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner

from keras_sage._validation import check_choice, check_positive_int
from keras_sage.contract import CandidateBuildError
from keras_sage.hypermodels.base import (
    OptimizerFactory,
    check_input_shape,
    check_num_classes,
    check_optimizer,
    compiled_candidate,
)
from keras_sage.hypermodels.cells.cell import Block, CellStructure, block_sources
from keras_sage.hypermodels.cells.network import LAYOUTS, CellPlan, cell_network, network_plan
from keras_sage.hypermodels.cells.ops import OPERATIONS
from keras_sage.hypermodels.cells.presets import PRESETS

DEFAULT_NUM_BLOCKS = 5
# N = 2 during search gives the paper's 8 cells (8 RDMs); F = 24 is PNAS's filter count during search.
DEFAULT_NUM_REPEATS = 2
DEFAULT_FILTERS = 24
DEFAULT_LEARNING_RATE = 0.025
DEFAULT_GLOBAL_CLIPNORM = 5.0


class CellSearchSpace(keras_tuner.HyperModel):
    """The paper's space of convolutional cells (NASNet/PNAS), generating networks as PNAS does.

    The module docstring lists its hyperparameters; the docstrings of `cell`, `ops` and `network` (in
    `keras_sage.hypermodels.cells`) give the rules that turn them into a network.

    With `normal_cell` given (or from `preset`), the space is that one network and declares no
    hyperparameter. `build(hp)` returns a model compiled with `sparse_categorical_crossentropy` and
    `accuracy`, whose endpoints are its cells (`cell_1` .. `cell_<3N+2>` for CIFAR).

    Args:
        num_blocks: B, blocks per cell.
        num_repeats: N, normal cells between reductions (2 during the paper's search: 8 cells).
        filters: F, filters of each operation in the first normal cells, doubled at each reduction.
        num_classes: Number of classes of the softmax classifier.
        input_shape: (height, width, channels) of the images.
        layout: `"cifar"`, or `"imagenet"` for the mobile ImageNet network (see `network`).
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
        self.num_blocks = check_positive_int("num_blocks", num_blocks)
        self.num_repeats = check_positive_int("num_repeats", num_repeats)
        self.filters = check_positive_int("filters", filters)
        if self.filters < 2:
            raise ValueError(f"filters must be at least 2 (a factorized reduction halves it), got {filters}.")
        self.num_classes = check_num_classes(num_classes)
        self.input_shape = check_input_shape(input_shape)
        check_choice("layout", layout, LAYOUTS)
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
        check_choice("layout", layout, LAYOUTS)
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
        return compiled_candidate(model, self.optimizer, self.learning_rate, DEFAULT_GLOBAL_CLIPNORM)

    def model_from_cells(
        self, normal_cell: CellStructure, reduction_cell: CellStructure | None = None
    ) -> keras.Model:
        """Returns the uncompiled network of `normal_cell` (and `reduction_cell`, if given)."""
        return cell_network(
            normal_cell,
            reduction_cell,
            self.network_plan(),
            layout=self.layout,
            filters=self.filters,
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            name=self.name,
        )
