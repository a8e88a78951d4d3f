"""Layer activations on a set of images, flattened and feature-subsampled inside the model.

Teacher registration and candidate scoring both need, for some layers of a Keras model, the activations on
a fixed image set with a fixed random subsample of features per layer (the paper's "random subsample of
features", `feature_subsample_indices`). Here each layer's output is flattened and subsampled inside the
model, so only the kept features leave it, and images go through one batch at a time into preallocated
buffers (never `Model.predict`, which holds every batch of every full layer output until the end).
What a caller does to each image's kept features on its own (for an RDM, centre and normalise the row:
`keras_sage.rsa.prepared_rows`) can run inside the same graph, and the buffers can be float16.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keras_sage._validation import check_choice
from keras_sage.contract import representation_endpoints
from keras_sage.rsa import DEFAULT_MAX_FEATURES, feature_subsample_indices

# The dtypes `layer_features` returns.
FEATURE_DTYPES = ("float32", "float16")


def default_endpoints(model: Any) -> list[str]:
    """The layers of a model whose representations are compared with a teacher's, when none are named.

    One rule for both sides of the comparison: `register_teacher` takes a teacher's layers by it, and the
    scorer a candidate's endpoints (unless `SageTuner(endpoints=...)` names them).

    1. The model's representation endpoints, if its layers follow the naming convention of
       `keras_sage.contract.representation_endpoints` (`layer_<n>`, `cell_<n>`, `L<n>`), as keras-sage's
       search spaces and teacher networks do.
    2. Otherwise the end of each stage: among the top-level layers from the first layer with trainable
       weights on, leaving out the classifier (the last layer with weights, and any layer after it, such as
       a separate `Softmax`), the last layer of each spatial resolution (e.g. the last `8×8` feature map,
       the last `4×4` one), and the last layer with a flat output (e.g. the hidden `Dense` before the
       classifier). A plain
       `keras.Sequential` of `Conv2D` layers, as in KerasTuner's getting-started example, has these.

    Args:
        model: A built Keras model.

    Returns:
        Layer names, in depth order (the convention's) or in the order of `model.layers`; empty if the
        model has neither (e.g. no layer with weights before its output).

    Example:

    ```python
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(8, 3, name="conv"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(10)])
    default_endpoints(model)  # ["conv", "flat"]
    ```
    """
    marked = representation_endpoints(model)
    if marked:
        return marked
    weighted = [i for i, layer in enumerate(model.layers) if layer.trainable_weights]
    if not weighted:
        return []
    # The classifier is the last layer with weights, and what follows it (e.g. a separate Softmax).
    last_per_resolution: dict[tuple[Any, ...], str] = {}
    for layer in model.layers[weighted[0] : weighted[-1]]:
        output = single_output(layer)
        if output is None or len(output.shape) < 2:
            continue
        resolution = tuple(output.shape[1:-1])
        last_per_resolution.pop(resolution, None)
        last_per_resolution[resolution] = layer.name
    return list(last_per_resolution.values())


def single_output(layer: Any) -> Any:
    """The layer's output tensor, or `None` if it has several or is used at several places."""
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    return None if isinstance(output, (list, tuple, dict)) else output


def layer_feature_counts(model: Any, layer_names: Sequence[str]) -> list[int]:
    """Returns the number of features (the product of the non-batch output dimensions) of each layer.

    Args:
        model: A built Keras model.
        layer_names: Names of its layers.

    Returns:
        One count per layer, in order.
    """
    return [math.prod(int(size) for size in _layer_output(model, name).shape[1:]) for name in layer_names]


def layer_features(
    model: Any,
    layer_names: Sequence[str],
    images: np.ndarray,
    max_features: int | None = DEFAULT_MAX_FEATURES,
    seed: int = 0,
    batch_size: int = 64,
    preprocessing: Callable[[np.ndarray], Any] | None = None,
    verbose: int = 0,
    rows: Callable[[Any], Any] | None = None,
    dtype: str = "float32",
) -> list[np.ndarray]:
    """The flattened, feature-subsampled outputs of some layers of a model on a set of images.

    Args:
        model: A built Keras model.
        layer_names: Names of its layers.
        images: The images, `(n, ...)`.
        max_features: Features kept per layer, chosen by `feature_subsample_indices(count, max_features,
            seed)`; `None` keeps all.
        seed: Seed of the subsample.
        batch_size: Images per forward pass.
        preprocessing: Applied to each batch of images before the model sees it; by default the batch is
            cast to float32.
        verbose: 1 shows a `keras.utils.Progbar`, 0 is silent.
        rows: Optional TensorFlow function applied inside the graph to each layer's kept features of a batch
            (a float32 `(batch, features kept)` tensor), which must treat each row (image) on its own, e.g.
            `keras_sage.rsa.prepared_rows`.
        dtype: Of the returned arrays, "float32" or "float16" (cast inside the graph, after `rows`).
            float16 keeps about 3 significant digits and overflows above 65,504: use it for rows that
            `rows` scales (the unit-norm rows of `prepared_rows`), not for raw activations.

    Returns:
        Per layer, an array `(n, features kept)` of `dtype`.

    Example:

    ```python
    features = layer_features(model, ["L1", "L2"], probe_images, max_features=4096)
    ```
    """
    import keras

    check_choice("dtype", dtype, FEATURE_DTYPES)
    kept_outputs, kept_counts = [], []
    for name, count in zip(layer_names, layer_feature_counts(model, layer_names), strict=True):
        output = _layer_output(model, name)
        flat = keras.ops.reshape(keras.ops.cast(output, "float32"), (-1, count))
        indices = feature_subsample_indices(count, max_features, seed)
        kept_outputs.append(flat if indices is None else keras.ops.take(flat, indices, axis=1))
        kept_counts.append(count if indices is None else len(indices))
    # `model.inputs`: a Sequential model of Keras 3 has no `input` (it was never called), only `inputs`.
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    feature_model = keras.Model(inputs, kept_outputs)

    n_images = images.shape[0]
    buffers = [np.empty((n_images, count), dtype=dtype) for count in kept_counts]
    progress = keras.utils.Progbar(n_images, verbose=verbose, unit_name="image")
    forward = None
    for start in range(0, n_images, batch_size):
        batch = images[start : start + batch_size]
        batch = preprocessing(batch) if preprocessing is not None else np.asarray(batch, dtype=np.float32)
        if forward is None:
            forward = _batch_forward(
                feature_model, batch, several_batches=n_images > batch_size, rows=rows, dtype=dtype
            )
        kept = forward(batch)
        for buffer, layer_kept in zip(buffers, kept, strict=True):
            buffer[start : start + batch_size] = keras.ops.convert_to_numpy(layer_kept)
        progress.update(min(start + batch_size, n_images))
    return buffers


def _batch_forward(
    feature_model: Any,
    first_batch: Any,
    several_batches: bool,
    rows: Callable[[Any], Any] | None,
    dtype: str,
) -> Callable[[Any], list[Any]]:
    """The feature model's forward pass on one batch, then `rows` and the cast to `dtype` of each output:
    eager for a single batch, else a graph.

    In a graph TensorFlow fuses each convolution with its bias and activation, so on a CPU a batch takes
    about 0.6 of the time of an eager call, and tracing costs about one eager call: the graph pays from the
    second batch on. It is traced once, for batches like the first of any size (`get_concrete_function`,
    which also keeps a search's one tracing per candidate out of TensorFlow's frequent-retracing warning).
    """
    import tensorflow as tf

    def call(batch: Any) -> list[Any]:
        kept = feature_model(batch, training=False)
        kept = kept if isinstance(kept, (list, tuple)) else [kept]
        if rows is not None:
            kept = [rows(layer_kept) for layer_kept in kept]
        return [tf.cast(layer_kept, dtype) for layer_kept in kept]

    if not several_batches:
        return call
    first_batch = tf.convert_to_tensor(first_batch)
    batch_spec = tf.TensorSpec((None, *first_batch.shape[1:]), first_batch.dtype)
    graph = tf.function(call).get_concrete_function(batch_spec)
    return lambda batch: graph(tf.convert_to_tensor(batch, batch_spec.dtype))


def _layer_output(model: Any, name: str) -> Any:
    try:
        layer = model.get_layer(name)
    except ValueError as error:
        raise ValueError(f"model {model.name!r} has no layer {name!r}") from error
    return layer.output
