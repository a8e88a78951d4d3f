"""Image data that needs no download: scikit-learn's bundled digits, and folders of image files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import scipy.ndimage
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from keras_sage.datasets.preprocessing import (
    Preprocessing,
    cifar_preprocessing,
    preprocess_and_batch,
    standardize,
)

# scikit-learn's digits are 8×8 pixels with integer intensities 0-16.
DIGITS_SIZE = 8
DIGITS_MAX_INTENSITY = 16.0


@dataclass(frozen=True)
class ImageSplits:
    """Disjoint training, validation and probe splits of an image data set, as numpy arrays.

    The probe split holds the images on which teacher and student representations are compared.

    Args:
        x_train: float32 images (n, height, width, channels); `y_train` their int64 labels (n,).
        x_val: Validation images; `y_val` their labels.
        x_probe: Probe images, the same number of each class; `y_probe` their labels.
        class_names: Name of each class, indexed by label.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_probe: np.ndarray
    y_probe: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def digits(
    image_size: int = 16,
    *,
    channels: int = 1,
    validation_fraction: float = 0.2,
    probe_size: int = 100,
    seed: int = 0,
    standardized: bool = True,
) -> ImageSplits:
    """scikit-learn's handwritten digits (1,797 real 8×8 images, 10 classes), resized and split.

    The images are scaled to [0, 1], resized by bilinear interpolation to `image_size`×`image_size`,
    copied to `channels` channels, and, if `standardized`, standardized per image as in the paper's CIFAR
    preprocessing. Random crops and flips are left out: a mirrored digit is often another digit.

    The probe split takes `probe_size / 10` images of each class at random; the rest is split into
    training and validation, stratified by class. All three are disjoint and fixed by `seed`.

    Args:
        image_size: Height and width of the returned images, at least 8 (16 and 32 are typical).
        channels: 1 (grey) or 3 (the grey image in each channel, for networks that expect RGB).
        validation_fraction: Fraction of the non-probe images held out for validation, in (0, 1).
        probe_size: Number of probe images, a multiple of 10 (0 for none).
        seed: Seed of the random splits.
        standardized: Whether to standardize each image (zero mean, unit standard deviation); if not,
            pixel values lie in [0, 1].

    Returns:
        An `ImageSplits` of float32 images (n, image_size, image_size, channels) and int64 labels.

    Example:

    ```python
    data = digits(image_size=16)
    model.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val))
    ```
    """
    if not isinstance(image_size, int) or image_size < DIGITS_SIZE:
        raise ValueError(f"image_size must be an integer of at least {DIGITS_SIZE}, got {image_size!r}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}.")
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must lie in (0, 1), got {validation_fraction!r}.")
    bunch = load_digits()
    labels = bunch.target.astype(np.int64)
    class_names = tuple(str(name) for name in bunch.target_names)
    num_classes = len(class_names)
    smallest_class = int(np.bincount(labels).min())
    if probe_size % num_classes or not 0 <= probe_size // num_classes < smallest_class:
        raise ValueError(
            f"probe_size must be a multiple of {num_classes} below {num_classes * smallest_class}, "
            f"got {probe_size!r}."
        )

    rng = np.random.default_rng(seed)
    per_class = probe_size // num_classes
    probe = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(num_classes)])
    )
    rest = np.setdiff1d(np.arange(len(labels)), probe)
    train, val = train_test_split(
        rest, test_size=validation_fraction, stratify=labels[rest], random_state=seed, shuffle=True
    )

    images = _resize(bunch.images.astype(np.float32) / DIGITS_MAX_INTENSITY, image_size)
    images = np.repeat(images[..., np.newaxis], channels, axis=-1)
    if standardized:
        images = standardize(images).numpy()
    return ImageSplits(
        x_train=images[train],
        y_train=labels[train],
        x_val=images[val],
        y_val=labels[val],
        x_probe=images[probe],
        y_probe=labels[probe],
        class_names=class_names,
    )


def _resize(images: np.ndarray, image_size: int) -> np.ndarray:
    """Bilinear resize of (n, 8, 8) images to (n, image_size, image_size), pixel areas aligned."""
    if image_size == images.shape[1]:
        return images
    factor = image_size / images.shape[1]
    resized = scipy.ndimage.zoom(images, (1, factor, factor), order=1, mode="nearest", grid_mode=True)
    return np.asarray(np.clip(resized, 0.0, 1.0), dtype=np.float32)


def image_folder(
    path: str | os.PathLike[str],
    image_size: Sequence[int] = (32, 32),
    *,
    validation_split: float | None = None,
    subset: str | None = None,
    seed: int = 0,
    batch_size: int = 32,
    preprocessing: Preprocessing | None = cifar_preprocessing,
    training: bool | None = None,
    color_mode: str = "rgb",
    shuffle: bool = True,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Images in class-named folders (`path/<class>/<image>`), as a batched `tf.data.Dataset`.

    The files are read by `keras.utils.image_dataset_from_directory` (labels are the indices of the
    sorted folder names), each image is passed through `preprocessing(image, training)`, then batched.
    The dataset has a `class_names` attribute.

    Args:
        path: The folder that holds one folder per class.
        image_size: (height, width) the images are resized to.
        validation_split: Fraction of the images held out for validation, with `subset`.
        subset: `"training"`, `"validation"` or `"both"` (a pair of datasets), with `validation_split`.
        seed: Seed of the shuffling and of the validation split.
        batch_size: Number of images per batch.
        preprocessing: Function `(image, training) -> image` applied to each image (0-255 float32);
            the paper's CIFAR preprocessing by default; `None` keeps the pixel values.
        training: Whether `preprocessing` augments; by default, for the training subset only.
        color_mode: `"rgb"`, `"rgba"` or `"grayscale"`.
        shuffle: Whether to shuffle the images.

    Returns:
        A dataset of (images, labels) batches, or a (training, validation) pair if `subset="both"`.

    Raises:
        FileNotFoundError: If `path` is not a folder.
        ValueError: If `path` has no class folder.

    Example:

    ```python
    train, val = image_folder("cifar10/train", validation_split=0.1, subset="both")
    ```
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Image folder {path!r} does not exist or is not a folder.")
    if not any(entry.is_dir() for entry in os.scandir(path)):
        raise ValueError(f"Image folder {path!r} has no class folders (expected {path}/<class>/<image>).")
    datasets = keras.utils.image_dataset_from_directory(
        path,
        labels="inferred",
        label_mode="int",
        color_mode=color_mode,
        batch_size=None,
        image_size=tuple(image_size),
        shuffle=shuffle,
        seed=seed,
        validation_split=validation_split,
        subset=subset,
    )
    if subset == "both":
        train, val = datasets
        return (
            _preprocess_and_batch(train, preprocessing, True if training is None else training, batch_size),
            _preprocess_and_batch(val, preprocessing, False if training is None else training, batch_size),
        )
    augment = subset == "training" if training is None else training
    return _preprocess_and_batch(datasets, preprocessing, augment, batch_size)


def _preprocess_and_batch(
    dataset: tf.data.Dataset, preprocessing: Preprocessing | None, training: bool, batch_size: int
) -> tf.data.Dataset:
    """`preprocess_and_batch`, keeping the `class_names` attribute Keras gives folder datasets."""
    batched = preprocess_and_batch(dataset, preprocessing, training, batch_size)
    batched.class_names = dataset.class_names
    return batched
