"""The published cells: NASNet-A (a normal and a reduction cell) and PNASNet-5 (one cell).

They are read from the authors' TensorFlow-Slim definitions (nets/nasnet/nasnet_utils.py and pnasnet.py in
tensorflow/models), where `used_hiddenstates` lists the states left out of the output. N and F: NASNet-A
and PNASNet-5 rows of the paper's Tables 2 (CIFAR) and 3 (ImageNet mobile). PNAS's implementation counts
the reduction cell among the N cells of a stack (9 cells for N = 3, plus the ImageNet stem's two): so
built, PNASNet-5 has the published 3.2M parameters at N = 3, F = 48; with reduction cells between stacks
of N normal cells it would have 4.3M.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keras_sage.hypermodels.cells.cell import PREV_CELL, PREV_PREV_CELL, Block, CellStructure, block_output


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
