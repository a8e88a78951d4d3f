"""The structure of a cell: its blocks, the states they read, the states joined into its output.

- **Blocks.** A cell has B blocks. Block b reads two states, each chosen from the cell's two inputs and
  the outputs of blocks 1..b-1; it applies one operation (`ops.OPERATIONS`) to each and adds the two
  results.
- **Cell inputs.** `prev_cell` (H_{c-1}) and `prev_prev_cell` (H_{c-2}) are the outputs of the previous
  two cells (how a network makes them is in `network`).
- **Output.** The concatenation, on channels, of the states no block reads (NASNet's "unused hidden
  states": blocks, and cell inputs) and, when the paper's two extra hyperparameters `concat_prev_cell` /
  `concat_prev_prev_cell` are on, of that cell input even if blocks read it. So every cell's output
  reaches the classifier: a cell that read neither of its inputs would otherwise cut off the cells before
  it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keras_sage.contract import CandidateBuildError
from keras_sage.hypermodels.cells.ops import OPERATIONS

PREV_CELL = "prev_cell"
PREV_PREV_CELL = "prev_prev_cell"
CELL_INPUTS = (PREV_CELL, PREV_PREV_CELL)


def block_output(block: int) -> str:
    """The state name of the output of block `block` (from 1), as block inputs and `concatenated` use it."""
    return f"block_{block}"


def block_sources(block: int) -> list[str]:
    """The states block `block` (from 1) may read: the cell's two inputs and the earlier blocks."""
    return [*CELL_INPUTS, *(block_output(b) for b in range(1, block))]


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
