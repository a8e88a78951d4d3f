"""Probe sets: the fixed, class-balanced images on which teacher and student representations are compared.

The paper compares representations on the 5,000 validation images of CIFAR-100 (§4.1, §4.3).
`probe_set` draws such a set from any `(image, label)` dataset in one streaming pass, keeping only the
chosen images in memory, and returns arrays ready for `keras_sage.teachers.register_teacher`. The
validation split of `keras_sage.datasets.cifar100()` is stratified by class (50 images of each), so
`probe_set(splits)` with the default `n=5000` is that whole split, as in the paper.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_sage._validation import check_positive_int
from keras_sage.datasets.tfds_splits import TFDSSplits

DEFAULT_PROBE_SIZE = 5000
# Images read per step of the streaming pass when the dataset is not batched.
STREAM_BATCH_SIZE = 256


def probe_set(
    dataset: TFDSSplits | tf.data.Dataset,
    n: int = DEFAULT_PROBE_SIZE,
    per_class: int | None = None,
    seed: int = 0,
    *,
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draws a fixed probe set with the same number of images of every class.

    Each image of the dataset gets a random key from `numpy.random.default_rng(seed)`, drawn in the order
    the dataset yields its images, and each class keeps its `per_class` images of smallest key, so one
    pass suffices and at most twice `n` images plus one batch are held in memory. The result is sorted
    by label, then by position in the dataset, so the same call on the same dataset gives byte-identical
    arrays (which the teacher file fingerprints). A dataset that shuffles or augments (such as a training
    pipeline) gives a different set on every pass: draw probes from an evaluation pipeline.

    Args:
        dataset: A `TFDSSplits` (the images come from its `validation` split, as the paper's do), or a
            `tf.data.Dataset` of `(image, label)` pairs, batched or not.
        n: Total number of probe images; a multiple of the number of classes when `per_class` is not given.
        per_class: Images of each class; `n // num_classes` by default. When given, `n` is not used.
        seed: Seed of the random choice.
        num_classes: Number of classes (labels 0 to `num_classes - 1`); taken from a `TFDSSplits` or a
            dataset's `class_names`, otherwise counted in an extra pass over the labels.

    Returns:
        `(images, labels)`: float32 images `(num_classes * per_class, height, width, channels)`, as the
        dataset yields them (preprocessed), and their int64 labels.

    Raises:
        ValueError: If `n` is not a multiple of the number of classes, a class has fewer than `per_class`
            images, a label is outside `[0, num_classes)`, or the dataset does not yield `(image, label)`.

    Example:

    ```python
    splits = keras_sage.datasets.cifar100(data_dir)
    probe_images, probe_labels = probe_set(splits, n=5000)
    register_teacher(teacher, probe_images, probe_labels, path="resnet.h5")
    ```
    """
    if isinstance(dataset, TFDSSplits):
        num_classes = dataset.num_classes if num_classes is None else num_classes
        dataset = dataset.validation
    batches = _batches(dataset)
    if num_classes is None:
        num_classes = _num_classes(dataset, batches)
    if per_class is None:
        if n < num_classes or n % num_classes:
            raise ValueError(
                f"n must be a positive multiple of the number of classes ({num_classes}) so that every class "
                f"has n // {num_classes} images, got n={n!r}; or give per_class."
            )
        per_class = n // num_classes
    per_class = check_positive_int("per_class", per_class)

    rng = np.random.default_rng(seed)
    # Images, labels, keys and positions: the images kept so far, then the batches read since. The
    # batches are merged into the kept images whenever they hold as many images as the probe set, so
    # memory stays under twice the probe set plus a batch and each image is copied a few times at most.
    kept: list[list[np.ndarray]] = [[], [], [], []]
    pending = 0
    position = 0
    for batch_images, batch_labels in batches.as_numpy_iterator():
        batch_labels = batch_labels.astype(np.int64)
        outside = batch_labels[(batch_labels < 0) | (batch_labels >= num_classes)]
        if outside.size:
            raise ValueError(
                f"Label {int(outside[0])} is outside [0, {num_classes}) (num_classes={num_classes})."
            )
        size = len(batch_labels)
        batch = (batch_images, batch_labels, rng.random(size), np.arange(position, position + size))
        for parts, array in zip(kept, batch, strict=True):
            parts.append(array)
        position += size
        pending += size
        if pending >= per_class * num_classes:
            kept = _smallest_keys_per_class(kept, per_class)
            pending = 0
    if not position:
        raise ValueError("The dataset yields no images.")
    images, labels, _, positions = (parts[0] for parts in _smallest_keys_per_class(kept, per_class))

    counts = np.bincount(labels, minlength=num_classes)
    short = np.flatnonzero(counts < per_class)
    if short.size:
        raise ValueError(
            f"Class {int(short[0])} has only {int(counts[short[0]])} images in the dataset, fewer than "
            f"per_class={per_class} ({short.size} classes are short)."
        )
    order = np.lexsort((positions, labels))
    return images[order].astype(np.float32), labels[order]


def _smallest_keys_per_class(kept: list[list[np.ndarray]], per_class: int) -> list[list[np.ndarray]]:
    """Merges the parts of images, labels, keys and positions, keeping the smallest keys of each label."""
    images, labels, keys, positions = (np.concatenate(parts) for parts in kept)
    order = np.lexsort((keys, labels))
    sorted_labels = labels[order]
    rank_in_class = np.arange(len(order)) - np.searchsorted(sorted_labels, sorted_labels, side="left")
    keep = np.sort(order[rank_in_class < per_class])
    return [[images[keep]], [labels[keep]], [keys[keep]], [positions[keep]]]


def _batches(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset as batches of `(images, labels)`, batching it if it yields single images."""
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, tf.TensorSpec) for s in spec)):
        raise ValueError(f"The dataset must yield (image, label) pairs, got elements of spec {spec}.")
    image_spec, label_spec = spec
    if label_spec.shape.rank == 0 and image_spec.shape.rank == 3:
        return dataset.batch(STREAM_BATCH_SIZE)
    if label_spec.shape.rank == 1 and image_spec.shape.rank == 4:
        return dataset
    raise ValueError(
        f"The dataset must yield images (height, width, channels) with scalar labels, or batches of them; "
        f"got images of shape {image_spec.shape} and labels of shape {label_spec.shape}."
    )


def _num_classes(dataset: tf.data.Dataset, batches: tf.data.Dataset) -> int:
    """The number of classes: from the dataset's `class_names`, or one more than its largest label."""
    class_names = getattr(dataset, "class_names", None)
    if class_names is not None:
        return len(class_names)
    largest = batches.map(lambda images, labels: tf.reduce_max(labels)).reduce(
        tf.constant(-1, tf.int64), lambda largest, label: tf.maximum(largest, tf.cast(label, tf.int64))
    )
    return int(largest) + 1
