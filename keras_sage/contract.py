"""The names that cross keras-sage's rooms, in one place: trial metrics, endpoint naming, build errors.

A trial's metrics are written by the tuner (`tuners/sage_tuner.py`), computed by the scorer
(`objective.py`), and read back by the analysis and the command line; representation endpoints are named
by the search spaces and teacher networks (`hypermodels/`) and found by the scorer and the teacher
registration (`teachers/`). Each of those names is defined here once. This module imports nothing of
keras-sage and no third-party package, so any room can import it without pulling in another.

Example:

```python
from keras_sage import contract

contract.similarity_metric_name("L1")           # "S_L1"
contract.teacher_layer_of_metric("S_L1")        # "L1"
contract.normalised_similarity_metric_name("IT")  # "S_IT/ceiling"
contract.representation_endpoints(model)        # ["layer_1", "layer_2", ...]
```
"""

from __future__ import annotations

import re
from typing import Any

# Trial metrics (KerasTuner `MetricsTracker` names) of a teacher-guided trial.
SCORE = "score"  # P + α·TG, the objective the oracle maximises
PREMATURE_ACCURACY = "premature_accuracy"  # P
TEACHER_GUIDANCE = "teacher_guidance"  # TG = mean_i S_i (of S_i / ceiling_i when the score normalises)
TEACHER_GUIDANCE_NORMALISED = "teacher_guidance_normalised"  # mean_i S_i / ceiling_i
SIMILARITY_PREFIX = "S_"  # S_<teacher layer>: S_i = max_j r(T_i, C_j)
# S_<teacher layer>/ceiling: S_i divided by the noise ceiling of region i. A teacher layer's name never
# holds "/" (HDF5 reads it as a path separator), so this name cannot be another layer's S_i.
NORMALISED_SIMILARITY_SUFFIX = "/ceiling"
PARAMS = "params"  # the candidate's parameter count
FLOPS = "flops"  # 2 × mult-adds of one image's forward pass
# The field's training-free scores at initialisation (keras_sage.proxies), as pool columns and score terms.
SYNFLOW = "synflow"  # Σ |θ ⊙ ∂R/∂θ|, R the summed output of the |θ| network on an all-ones input
SNIP = "snip"  # Σ |∂L/∂W ⊙ W| on one training batch
GRAD_NORM = "grad_norm"  # Σ_layers ‖∂L/∂W‖₂ on one training batch
NASWOT = "naswot"  # log det of the kernel of the binary ReLU codes of one batch
# Every proxy keras-sage computes at initialisation, size metrics included.
PROXY_NAMES = (PARAMS, FLOPS, SYNFLOW, SNIP, GRAD_NORM, NASWOT)
EXAMPLES_PROCESSED = "examples_processed"  # examples SGD processed in the trial's training
TEACHER_VERSION = "teacher_version"  # the teacher file's version that scored the trial (0: its /rdms)
MATURE_ACCURACY = "mature_accuracy"  # validation accuracy after the long training (rerank, pools)

# The metrics an oracle may take as its objective besides `S_<teacher layer>`, and the costs a Pareto
# search may minimise beside them.
SCORE_METRICS = (SCORE, PREMATURE_ACCURACY, TEACHER_GUIDANCE)
COST_METRICS = (PARAMS, FLOPS)


def is_objective_metric(name: str) -> bool:
    """Whether a search may take the metric `name` as an objective: a score metric, a cost, or an S_i."""
    return name in (*SCORE_METRICS, *COST_METRICS) or teacher_layer_of_metric(name) is not None


def similarity_metric_name(teacher_layer: str) -> str:
    """The trial metric that holds S_i for teacher RDM `teacher_layer`: `S_<teacher_layer>`."""
    return f"{SIMILARITY_PREFIX}{teacher_layer}"


def teacher_layer_of_metric(metric_name: str) -> str | None:
    """The teacher layer whose S_i the metric `metric_name` holds, or None for any other metric (a
    normalised `S_<layer>/ceiling` included)."""
    layer = metric_name[len(SIMILARITY_PREFIX) :]
    if metric_name.startswith(SIMILARITY_PREFIX) and layer and "/" not in layer:
        return layer
    return None


def normalised_similarity_metric_name(teacher_layer: str) -> str:
    """The trial metric that holds S_i / ceiling_i for region `teacher_layer`: `S_<teacher_layer>/ceiling`."""
    return f"{similarity_metric_name(teacher_layer)}{NORMALISED_SIMILARITY_SUFFIX}"


def teacher_layer_of_normalised_metric(metric_name: str) -> str | None:
    """The region whose S_i / ceiling_i the metric `metric_name` holds, or None for any other metric."""
    if not metric_name.endswith(NORMALISED_SIMILARITY_SUFFIX):
        return None
    return teacher_layer_of_metric(metric_name[: -len(NORMALISED_SIMILARITY_SUFFIX)])


# Representation endpoints: layers whose outputs are compared with the teacher, marked by name so that
# they survive `model.save()` and `keras.saving.load_model()`. The number after the prefix gives the
# depth order.
LAYER_ENDPOINT_PREFIX = "layer_"  # layer n of a layer-wise space (CNNSearchSpace)
CELL_ENDPOINT_PREFIX = "cell_"  # cell n of a cell network, every cell in depth order
STACK_ENDPOINT_PREFIX = "L"  # stack n of a CIFAR ResNet, the paper's L1-L3
_ENDPOINT_NAME = re.compile(
    rf"^(?:{LAYER_ENDPOINT_PREFIX}|{CELL_ENDPOINT_PREFIX}|{STACK_ENDPOINT_PREFIX})(\d+)$"
)


def layer_endpoint_name(layer: int) -> str:
    """The name of the endpoint of layer `layer` (from 1) of a layer-wise search space."""
    return f"{LAYER_ENDPOINT_PREFIX}{layer}"


def cell_endpoint_name(cell: int) -> str:
    """The name of the endpoint of cell `cell` (from 1, counting every cell of the network in depth order)."""
    return f"{CELL_ENDPOINT_PREFIX}{cell}"


def stack_endpoint_name(stack: int) -> str:
    """The name of the endpoint after stack `stack` (from 1) of a ResNet, the paper's `L1`-`L3`."""
    return f"{STACK_ENDPOINT_PREFIX}{stack}"


def endpoint_depth(layer_name: str) -> int | None:
    """The depth order of an endpoint named `layer_name` (`layer_3` → 3), or None if it is no endpoint."""
    match = _ENDPOINT_NAME.match(layer_name)
    return int(match.group(1)) if match else None


def representation_endpoints(model: Any) -> list[str]:
    """Returns the names of the representation endpoints of `model`, in depth order.

    An endpoint is a layer named `layer_<n>`, `cell_<n>` or `L<n>`; `n` gives the order.

    Args:
        model: A Keras model (anything with `layers` that have a `name`), for example one built by
            `CNNSearchSpace`, `CellSearchSpace` or `resnet_cifar`, or loaded back from a file.

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
        depth = endpoint_depth(layer.name)
        if depth is not None:
            numbered.append((depth, layer.name))
    return [name for _, name in sorted(numbered)]


class CandidateBuildError(ValueError):
    """A candidate architecture cannot be built; the message names the layer and the reason.

    A tuner records such a candidate as a failed trial with this message instead of stopping the search.
    """
