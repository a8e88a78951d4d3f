"""The field's training-free scores of a network at initialisation: synflow, snip, grad_norm, naswot.

Each is a number computed from an untrained network and at most one batch of training images, which NAS
papers rank candidates by instead of training them; keras-sage reports them as controls beside TG
(`keras_sage.analysis.pool`) and as terms of a candidate's score. The definitions are those of the
papers, as their reference code computes them:

- `grad_norm`, `snip` and `synflow` as Abdelfattah et al. (2021), "Zero-Cost Proxies for Lightweight NAS",
  ICLR (github.com/SamsungLabs/zero-cost-nas, `foresight/pruners`), score a whole network: a per-weight
  saliency summed over the weights of every convolution and dense layer (not their biases, not batch
  normalization's γ and β). Their one batch is 64 training images (`nasbench2_pred.py`); the loss is the
  batch-mean cross-entropy of the logits; batch normalization runs in training mode (batch statistics)
  for grad_norm and snip and is removed for synflow (`get_prunable_copy(bn=False)`).
- `naswot` as Mellor et al. (2021), "Neural Architecture Search without Training", ICML
  (github.com/BayesWatch/nas-without-training, `score_networks.py`): the log-determinant of the kernel of
  the binary codes that the ReLUs give each image of a batch (128 images in the paper's NAS-Bench-201 runs).

How Keras forces a choice:

- Weights. The counterparts of PyTorch's `nn.Conv2d` and `nn.Linear` are the convolution and dense layers
  whose FLOPs `keras_sage.model_size` counts (standard, grouped, depthwise, separable, transposed; dense);
  their kernels are summed (a separable convolution's depthwise and pointwise kernels each count, as the
  two convolutions PyTorch would build), their biases are not.
- Logits. Keras classifiers end in a softmax, PyTorch ones in logits: the softmax of the model's output
  layer (a `Dense(activation="softmax")`, an `Activation("softmax")` or a `Softmax` layer) is removed, so
  the loss is the cross-entropy of the logits and synflow sums the logits (the sum of a softmax is 1,
  whose gradient is 0).
- Copies. Every proxy works on a copy (`keras.models.clone_model` with the original's weights), so the
  model is left exactly as it was, batch normalization's moving statistics included. A copy can only be
  made of a functional or sequential model with one input and one output and no nested model; custom
  layers need `get_config` / `from_config`. Synflow's copy replaces every `BatchNormalization` by an
  `Identity` layer and builds every layer in float64 (the reference's `net.double()`).
- Modes. The reference runs PyTorch's training mode: `training=True` for grad_norm, snip and naswot (batch
  statistics; a dropout layer would drop, as there); `training=False` for synflow, whose copy has no batch
  normalization left, so that only dropout changes, and synflow's R is defined without it.
- ReLUs. PyTorch's reference hooks the input of every `nn.ReLU` module and codes it as input > 0. Keras
  has no forward hooks and three ways to write a ReLU: a `ReLU` (or `LeakyReLU`) layer, an
  `Activation("relu")` layer, or `activation="relu"` (or `"relu6"`, `"leaky_relu"`) on a convolution or
  dense layer. Each of these outputs is coded as output > 0, which equals input > 0 for all of them.

Example:

```python
model = keras_sage.resnet_cifar(depth=20)
scores = zero_cost_proxies(model, images[:64], labels[:64])
# {"params": ..., "flops": ..., "synflow": ..., "snip": ..., "grad_norm": ..., "naswot": ...}
```
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_sage._validation import check_choice
from keras_sage.contract import FLOPS, NASWOT, PARAMS, PROXY_NAMES, SNIP, SYNFLOW
from keras_sage.model_size import _CONVOLUTIONS_AT_INPUT, _CONVOLUTIONS_AT_OUTPUT, count_flops

__all__ = ["PROXY_BATCH_SIZE", "PROXY_NAMES", "grad_norm", "naswot", "snip", "synflow", "zero_cost_proxies"]

# Every score `zero_cost_proxies` computes, in the order it computes them.

_WEIGHTED_LAYERS = _CONVOLUTIONS_AT_OUTPUT + _CONVOLUTIONS_AT_INPUT
_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel")
_RELU_ACTIVATIONS = (keras.activations.relu, keras.activations.relu6, keras.activations.leaky_relu)


# Training images a proxy at initialisation sees: Abdelfattah et al.'s one batch.
PROXY_BATCH_SIZE = 64


def synflow(model: keras.Model, input_shape: Sequence[int] | None = None) -> float:
    """Returns the synaptic flow of `model`: Σ |θ ⊙ ∂R/∂θ| over its convolution and dense kernels θ.

    Tanaka et al. (2020), "Pruning neural networks without any data by iteratively conserving synaptic
    flow", NeurIPS, score a weight by |θ ⊙ ∂R/∂θ|, where R = 1ᵀ f(1; |Θ|) is the sum of the outputs of
    the network whose every parameter is replaced by its absolute value, on one input of all ones;
    Abdelfattah et al. (2021, ICLR) sum that over the network. As their reference does, batch
    normalization is removed, the copy computes in float64, R sums the logits, and every parameter
    (biases too) is made absolute while only the kernels' scores are summed. Needs no data.

    Args:
        model: A functional or sequential Keras model at initialisation; it is not changed.
        input_shape: The shape of one input without the batch axis, e.g. `(32, 32, 3)`; the model's own
            input shape if None.

    Returns:
        The synflow score, at least 0.

    Raises:
        ValueError: If the model cannot be copied (naming it or its layer), or if `input_shape` is None
            and the model's input shape is not fully known.

    Example:

    ```python
    synflow(keras_sage.resnet_cifar(depth=20))  # a large positive number
    ```
    """
    network = _single_graph(model)
    shape = tuple(network.input_shape[1:]) if input_shape is None else tuple(input_shape)
    if any(size is None for size in shape):
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {network.input_shape}; pass synflow an input_shape."
        )
    linearised = _copy(network, remove_batch_norm=True, dtype="float64", weight_map=np.abs)
    kernels = _kernels(linearised)
    with tf.GradientTape() as tape:
        total = keras.ops.sum(linearised(np.ones((1, *shape), dtype="float64"), training=False))
    return _summed_saliency(_with_gradients(tape, total, kernels))


def snip(model: keras.Model, images: Any, labels: Any) -> float:
    """Returns the SNIP saliency of `model`: Σ |∂L/∂W ⊙ W| over its convolution and dense kernels W.

    Lee et al. (2019), "SNIP: Single-shot network pruning based on connection sensitivity", ICLR, score a
    connection by |∂L/∂c| for a multiplicative mask c = 1 on its weight, which is |∂L/∂W ⊙ W|;
    Abdelfattah et al. (2021, ICLR) sum it over the network. L is the batch-mean cross-entropy of the
    logits on one batch, with batch normalization in training mode.

    Args:
        model: A functional or sequential Keras classifier at initialisation; it is not changed.
        images: One batch of training images, shape (n, *the model's input shape).
        labels: Their integer classes, shape (n,).

    Returns:
        The snip score, at least 0.

    Raises:
        ValueError: If the batch does not fit the model, or the model cannot be copied.

    Example:

    ```python
    snip(model, images[:64], labels[:64])
    ```
    """
    return _summed_saliency(_kernel_gradients(model, images, labels))


def grad_norm(model: keras.Model, images: Any, labels: Any) -> float:
    """Returns Σ_layers ‖∂L/∂W‖₂, the Euclidean norms of the loss gradient of each kernel W, summed.

    Abdelfattah et al. (2021), "Zero-Cost Proxies for Lightweight NAS", ICLR: the norm is taken per
    convolution and dense kernel and summed over them. L is the batch-mean cross-entropy of the logits on
    one batch, with batch normalization in training mode.

    Args:
        model: A functional or sequential Keras classifier at initialisation; it is not changed.
        images: One batch of training images, shape (n, *the model's input shape).
        labels: Their integer classes, shape (n,).

    Returns:
        The grad_norm score, at least 0.

    Raises:
        ValueError: If the batch does not fit the model, or the model cannot be copied.

    Example:

    ```python
    grad_norm(model, images[:64], labels[:64])
    ```
    """
    return _summed_gradient_norms(_kernel_gradients(model, images, labels))


def naswot(model: keras.Model, images: Any) -> float:
    """Returns log det K_H, the NASWOT score of `model` on a batch of images.

    Mellor et al. (2021), "Neural Architecture Search without Training", ICML: every image i of the batch
    gets a binary code c_i, one bit per ReLU unit of the network (1 where the unit is active); K_H[i, j]
    = N_A − Hamming(c_i, c_j), with N_A the number of units, which is c_iᵀc_j + (1 − c_i)ᵀ(1 − c_j). The
    score is log |det K_H| (numpy's `slogdet`, as the reference): −inf when two images share a code, or
    when the network has no ReLU (K_H = 0).
    Batch normalization runs in training mode, as in the reference.

    Args:
        model: A functional or sequential Keras model at initialisation; it is not changed.
        images: One batch of training images, shape (n, *the model's input shape).

    Returns:
        The naswot score (−inf if K_H is singular).

    Raises:
        ValueError: If the images do not fit the model, or the model cannot be copied.

    Example:

    ```python
    naswot(model, images[:128])
    ```
    """
    network = _single_graph(model)
    batch = _checked_images(network, images)
    relu_outputs: list[Any] = []
    copy = _copy(network, remove_batch_norm=False, dtype=None, relu_outputs=relu_outputs)
    if not relu_outputs:
        return -math.inf  # no unit: every code is empty, K_H = 0
    codes_model = keras.Model(copy.inputs[0], relu_outputs)
    kernel = np.zeros((len(batch), len(batch)))
    for activations in keras.tree.flatten(codes_model(batch, training=True)):  # one output: not a list
        # With s = 2c − 1, c_iᵀc_j + (1 − c_i)ᵀ(1 − c_j) = (N_A + s_iᵀs_j) / 2: one product of ±1 codes,
        # exact in float32 (its sums are integers) up to 2²⁴ units a layer.
        signs = np.where(_numpy(activations) > 0, 1, -1).astype(np.float32).reshape(len(batch), -1)
        kernel += (signs.shape[1] + (signs @ signs.T).astype(np.float64)) / 2
    return float(np.linalg.slogdet(kernel)[1])


def zero_cost_proxies(
    model: keras.Model, images: Any, labels: Any, names: Iterable[str] = PROXY_NAMES
) -> dict[str, float]:
    """Returns the requested training-free scores of `model` on one batch, by name.

    `params` is the model's parameter count (`Model.count_params`), `flops` its FLOPs
    (`keras_sage.model_size.count_flops`); the others are `synflow`, `snip`, `grad_norm` and `naswot` of
    this module. Snip and grad_norm share one gradient computation.

    Args:
        model: A functional or sequential Keras classifier at initialisation; it is not changed.
        images: One batch of training images, shape (n, *the model's input shape).
        labels: Their integer classes, shape (n,); read by snip and grad_norm only.
        names: Which scores, from `PROXY_NAMES`; all of them by default.

    Returns:
        A dict from each requested name to its score, in the order of `names`.

    Raises:
        ValueError: If a name is unknown, the batch does not fit the model, or the model cannot be copied.

    Example:

    ```python
    zero_cost_proxies(model, images[:64], labels[:64], names=("synflow", "naswot"))
    # {"synflow": ..., "naswot": ...}: synflow first, as asked
    ```
    """
    requested = list(names)
    for name in requested:
        check_choice("names", name, PROXY_NAMES)
    batch = _checked_images(_single_graph(model), images)
    scores: dict[str, float] = {}
    gradients = None
    for name in requested:
        if name == PARAMS:
            scores[name] = float(model.count_params())
        elif name == FLOPS:
            scores[name] = float(count_flops(model))
        elif name == SYNFLOW:
            scores[name] = synflow(model, batch.shape[1:])
        elif name == NASWOT:
            scores[name] = naswot(model, batch)
        else:
            if gradients is None:
                gradients = _kernel_gradients(model, batch, labels)
            scores[name] = _summed_saliency(gradients) if name == SNIP else _summed_gradient_norms(gradients)
    return scores


def _summed_saliency(gradients: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Σ |W ⊙ ∂/∂W| over the kernels: snip's score for the gradients of L, synflow's for those of R."""
    return float(sum(np.sum(np.abs(kernel * gradient)) for kernel, gradient in gradients))


def _summed_gradient_norms(gradients: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Σ ‖∂/∂W‖₂ over the kernels: grad_norm's score."""
    return float(sum(np.linalg.norm(gradient) for _, gradient in gradients))


def _kernel_gradients(model: keras.Model, images: Any, labels: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each convolution and dense kernel W of a copy of `model` with ∂L/∂W, L the batch-mean cross-entropy
    of the logits (batch normalization in training mode)."""
    network = _single_graph(model)
    batch = _checked_images(network, images)
    classes = _checked_labels(network, labels, len(batch))
    copy = _copy(network, remove_batch_norm=False, dtype=None)
    kernels = _kernels(copy)
    with tf.GradientTape() as tape:
        logits = copy(batch, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(classes, logits, from_logits=True))
    return _with_gradients(tape, loss, kernels)


def _with_gradients(
    tape: tf.GradientTape, target: Any, kernels: list[Any]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each kernel with the gradient of `target`, as numpy arrays; zeros where it does not reach a kernel
    (as the reference's `torch.zeros_like`)."""
    gradients = tape.gradient(target, kernels)
    return [
        (_numpy(kernel), np.zeros(kernel.shape) if gradient is None else _numpy(gradient))
        for kernel, gradient in zip(kernels, gradients, strict=True)
    ]


def _single_graph(model: keras.Model) -> keras.Model:
    """`model` as a functional model with one input and one output and no nested model, or a ValueError."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ValueError(
            f"Model {model.name!r} is neither functional nor a sequential model with an Input; the proxies "
            "copy it with keras.models.clone_model."
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs and {len(outputs)} outputs; the proxies score a "
            "classifier with one input and one output."
        )
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ValueError(
            f"Layer {nested[0]!r} of model {model.name!r} is a nested model; the proxies need a flat model."
        )
    if isinstance(model, keras.Sequential):
        return keras.Model(inputs[0], outputs[0], name=model.name)
    return model


def _copy(
    network: keras.Model,
    *,
    remove_batch_norm: bool,
    dtype: str | None,
    weight_map: Callable[[np.ndarray], np.ndarray] | None = None,
    relu_outputs: list[Any] | None = None,
) -> keras.Model:
    """A copy of `network` with its weights (through `weight_map`), its output softmax removed, its batch
    normalization removed if `remove_batch_norm`, and every layer in `dtype` if given. The symbolic output
    of every ReLU of the copy is appended to `relu_outputs` if given."""
    output_layer = network.get_layer(network.output_names[0])
    removed: set[str] = set()

    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        softmax_layer = isinstance(layer, keras.layers.Softmax) or (
            isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.softmax
        )
        batch_norm = remove_batch_norm and isinstance(layer, keras.layers.BatchNormalization)
        if batch_norm or (layer is output_layer and softmax_layer):
            removed.add(layer.name)  # never called: its input passes through (`call_layer`)
            return layer
        config = layer.get_config()
        if dtype is not None:
            config["dtype"] = dtype
        if layer is output_layer and getattr(layer, "activation", None) is keras.activations.softmax:
            config["activation"] = "linear"
        try:
            return layer.__class__.from_config(config)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Layer {layer.name!r} of model {network.name!r} cannot be rebuilt from its config: {error}"
            ) from error

    def call_layer(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        if layer.name in removed:
            return args[0]
        output = layer(*args, **kwargs)
        relu = isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU))
        if relu_outputs is not None and (relu or getattr(layer, "activation", None) in _RELU_ACTIVATIONS):
            relu_outputs.append(output)
        return output

    copy = keras.models.clone_model(network, clone_function=clone_layer, call_function=call_layer)
    for layer in network.layers:
        weights = layer.get_weights()
        if weights and layer.name not in removed:
            copy.get_layer(layer.name).set_weights([weight_map(w) if weight_map else w for w in weights])
    return copy


def _kernels(model: keras.Model) -> list[Any]:
    """The kernels of the convolution and dense layers of `model`, in layer order."""
    return [
        getattr(layer, name)
        for layer in model.layers
        if isinstance(layer, _WEIGHTED_LAYERS)
        for name in _KERNEL_NAMES
        if hasattr(layer, name)
    ]


def _checked_images(network: keras.Model, images: Any) -> np.ndarray:
    batch = np.asarray(images, dtype="float32")
    expected = tuple(network.input_shape[1:])
    fits = batch.ndim == len(expected) + 1 and all(
        size is None or size == given for size, given in zip(expected, batch.shape[1:], strict=True)
    )
    if not fits or len(batch) == 0:
        raise ValueError(
            f"images has shape {batch.shape}, but model {network.name!r} takes a batch of shape "
            f"{network.input_shape} with at least one image."
        )
    return batch


def _checked_labels(network: keras.Model, labels: Any, count: int) -> np.ndarray:
    classes = np.asarray(labels)
    num_classes = network.output_shape[-1]
    if (
        classes.shape != (count,)
        or not np.issubdtype(classes.dtype, np.integer)
        or classes.min() < 0
        or classes.max() >= num_classes
    ):
        raise ValueError(
            f"labels must be {count} integer classes in [0, {num_classes}) for model {network.name!r}, "
            f"got an array of shape {classes.shape} and dtype {classes.dtype}."
        )
    return classes


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor))
