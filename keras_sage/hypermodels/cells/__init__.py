"""The space of convolutional cells of NASNet and PNAS (TG-SAGE §4.3), as a KerasTuner HyperModel.

A candidate is one cell, repeated to form a network. Each concept has its module, whose docstring gives
its rules and where they come from:

- `ops`: the 8 operations a block applies, with their strides, and the factorized reduction;
- `cell`: a cell's blocks and the states joined into its output (`Block`, `CellStructure`);
- `network`: which cells a layout has (`network_plan`, `CellPlan`) and the layers of the network;
- `presets`: the published cells, NASNet-A and PNASNet-5;
- `space`: `CellSearchSpace`, the HyperModel, its hyperparameters and its default optimizer.

Example:

```python
from keras_sage.hypermodels.cells import CellSearchSpace

space = CellSearchSpace(num_classes=100, input_shape=(32, 32, 3))  # B = 5, N = 2, F = 24: 8 cells
```
"""

from keras_sage.hypermodels.cells.cell import (
    CELL_INPUTS,
    PREV_CELL,
    PREV_PREV_CELL,
    Block,
    CellStructure,
    block_output,
    block_sources,
)
from keras_sage.hypermodels.cells.network import (
    LAYOUTS,
    REDUCTION_PLACEMENTS,
    CellPlan,
    cell_network,
    network_plan,
)
from keras_sage.hypermodels.cells.ops import OPERATIONS
from keras_sage.hypermodels.cells.presets import (
    NASNET_A_NORMAL,
    NASNET_A_REDUCTION,
    PNASNET_5,
    PRESETS,
    CellPreset,
)
from keras_sage.hypermodels.cells.space import CellSearchSpace

__all__ = [
    "CELL_INPUTS",
    "LAYOUTS",
    "NASNET_A_NORMAL",
    "NASNET_A_REDUCTION",
    "OPERATIONS",
    "PNASNET_5",
    "PRESETS",
    "PREV_CELL",
    "PREV_PREV_CELL",
    "REDUCTION_PLACEMENTS",
    "Block",
    "CellPlan",
    "CellPreset",
    "CellSearchSpace",
    "CellStructure",
    "block_output",
    "block_sources",
    "cell_network",
    "network_plan",
]
