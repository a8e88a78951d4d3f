"""The machinery behind the tensorflow-datasets pipelines: preparing a builder, and its three splits.

`keras_sage.datasets.cifar` and `keras_sage.datasets.imagenet64` use it; the cifar module's docstring
says how the held-out validation split is drawn and why it is the same on every run and machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.model_selection import train_test_split

from keras_sage._validation import check_positive_int
from keras_sage.datasets.preprocessing import Preprocessing, preprocess_and_batch

DEFAULT_BATCH_SIZE = 128
# Labels read per step of the pass that stratifies the validation choice.
LABEL_BATCH_SIZE = 8192


class DatasetNotAvailableError(FileNotFoundError):
    """A tensorflow-datasets data set is not prepared in `data_dir` and cannot be downloaded.

    The message names the data set and the folder, and says how to provide the data.
    """


@dataclass(frozen=True)
class TFDSSplits:
    """Training, validation and test pipelines of a tensorflow-datasets image data set.

    Every pipeline yields `(images, labels)` batches: float32 images `(batch, *input_shape)` and int64
    labels. One pass over `train` is one epoch (the pipelines do not repeat).

    Args:
        train: Augmented, shuffled anew on every pass.
        validation: Held out from the data set's training split; preprocessed for evaluation, in a
            fixed order.
        test: The data set's official evaluation split, preprocessed for evaluation, in a fixed order.
        class_names: Name of each class, indexed by label.
        input_shape: (height, width, channels) of one preprocessed image.
        train_size: Number of training images (one epoch).
        validation_size: Number of validation images.

    Example:

    ```python
    splits = keras_sage.datasets.cifar100(data_dir="~/tensorflow_datasets")
    tuner.search(splits.train, validation_data=splits.validation)
    ```
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    train_size: int
    validation_size: int

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def prepared_builder(
    name: str,
    data_dir: str | os.PathLike[str] | None,
    *,
    download: bool,
    how_to_provide: str,
    download_config: tfds.download.DownloadConfig | None = None,
) -> tfds.core.DatasetBuilder:
    """The tfds builder of `name`, with its data prepared in `data_dir` (downloaded if allowed).

    Args:
        name: The tfds name, e.g. `"cifar100"` or `"imagenet_resized/64x64"`.
        data_dir: The tensorflow-datasets folder, or `None` for tfds's default.
        download: Whether to download and prepare the data when it is absent.
        how_to_provide: The data set's own ways to provide it, appended to the error message; `{data_dir}`
            in it is replaced by the data folder.
        download_config: Passed to `download_and_prepare` (e.g. a `manual_dir`).

    Returns:
        The builder, ready for `as_dataset`.

    Raises:
        DatasetNotAvailableError: If the data is absent and `download` is false, or the download or
            preparation fails for lack of network or files.
    """
    data_dir = None if data_dir is None else os.path.expanduser(os.fspath(data_dir))
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if not download:
        raise DatasetNotAvailableError(_absent_message(builder, name, "download=False", how_to_provide))
    try:
        builder.download_and_prepare(download_config=download_config)
    except (
        OSError,  # includes the `requests` connection errors of a machine with no network
        AssertionError,  # tfds's "Manual directory ... does not exist or is empty"
        tfds.download.DownloadError,
    ) as error:
        reason = f"the download failed ({type(error).__name__}: {error})"
        raise DatasetNotAvailableError(_absent_message(builder, name, reason, how_to_provide)) from error
    return builder


def _absent_message(builder: tfds.core.DatasetBuilder, name: str, reason: str, how_to_provide: str) -> str:
    root = os.fspath(builder.data_dir_root)
    return (
        f"The tensorflow-datasets data set {name!r} (version {builder.version}) is not prepared in "
        f"data_dir {root!r} (expected {os.fspath(builder.data_dir)!r}) and {reason}. "
        f"To provide it: on a machine with network run `tfds build {name} --data_dir <folder>` and copy "
        f"<folder>/{name.split('/')[0]} into {root!r}; {how_to_provide.format(data_dir=root)}"
    )


def tfds_splits(
    builder: tfds.core.DatasetBuilder,
    *,
    preprocessing: Preprocessing,
    input_shape: tuple[int, int, int],
    batch_size: int,
    validation_size: int,
    seed: int,
    cache: bool,
    stratify: bool,
    shuffle_buffer: int | None = None,
    train_split: str = "train",
    test_split: str = "test",
) -> TFDSSplits:
    """Training, held-out validation and test pipelines of a prepared tfds image data set.

    Args:
        builder: A prepared builder whose examples have `image` and `label` (its supervised keys).
        preprocessing: `(image, training) -> image`; `training=True` for the training pipeline.
        input_shape: Shape of one preprocessed image.
        batch_size: Images per batch.
        validation_size: Number of examples of `train_split` held out for validation.
        seed: Seed of the validation choice (see the module docstring) and of the training shuffle.
        cache: Whether to keep the decoded training and test images in memory after their first pass.
            The validation images are always kept, preprocessed, after the first pass: without them every
            pass would read the whole training split to find them.
        stratify: Whether the validation choice is stratified by class (one extra pass reads the labels);
            otherwise the positions are `numpy.random.default_rng(seed).choice(num_examples,
            validation_size, replace=False)`.
        shuffle_buffer: Size of the training shuffle buffer; all the training images if `None`.
        train_split: The tfds split the training and validation images come from.
        test_split: The tfds split used as the test set.

    Returns:
        A `TFDSSplits`.

    Raises:
        ValueError: If `batch_size` or `validation_size` is out of range.
    """
    check_positive_int("batch_size", batch_size)
    # Images stay encoded until the held-out selection: each split decodes only its own images.
    examples = builder.as_dataset(
        split=train_split,
        shuffle_files=False,
        as_supervised=True,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    num_examples = int(examples.cardinality())
    if num_examples < 0:
        raise ValueError(f"The size of the {builder.name!r} split {train_split!r} is unknown to tfds.")
    if not 0 < validation_size < num_examples:
        raise ValueError(
            f"validation_size must be between 1 and {num_examples - 1} (the {builder.name!r} split "
            f"{train_split!r} has {num_examples} images), got {validation_size!r}."
        )
    is_validation = np.zeros(num_examples, dtype=bool)
    is_validation[
        _validation_positions(builder, train_split, num_examples, validation_size, seed, stratify)
    ] = True
    numbered = examples.enumerate()
    image_feature = builder.info.features["image"]
    train = _decoded(_select(numbered, tf.constant(~is_validation)), image_feature)
    validation = _decoded(_select(numbered, tf.constant(is_validation)), image_feature)
    test = builder.as_dataset(split=test_split, shuffle_files=False, as_supervised=True)
    if cache:
        train, test = train.cache(), test.cache()
    train_size = num_examples - validation_size
    train = train.shuffle(shuffle_buffer or train_size, seed=seed, reshuffle_each_iteration=True)
    return TFDSSplits(
        train=preprocess_and_batch(train, preprocessing, True, batch_size),
        # Always cached (after its deterministic preprocessing): an uncached pass would read the whole
        # training split again to find the held-out images.
        validation=preprocess_and_batch(validation, preprocessing, False, batch_size, cache=True),
        test=preprocess_and_batch(test, preprocessing, False, batch_size),
        class_names=tuple(builder.info.features["label"].names),
        input_shape=input_shape,
        train_size=train_size,
        validation_size=validation_size,
    )


def _validation_positions(
    builder: tfds.core.DatasetBuilder,
    split: str,
    num_examples: int,
    validation_size: int,
    seed: int,
    stratify: bool,
) -> np.ndarray:
    """Positions, in on-disk order, of the examples of `split` held out for validation."""
    if not stratify:
        return np.random.default_rng(seed).choice(num_examples, validation_size, replace=False)
    labels = builder.as_dataset(
        split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
    ).map(lambda example: example["label"])
    labels = np.concatenate(list(labels.batch(LABEL_BATCH_SIZE).as_numpy_iterator()))
    try:
        _, positions = train_test_split(
            np.arange(num_examples), test_size=validation_size, stratify=labels, random_state=seed
        )
    except ValueError as error:
        raise ValueError(
            f"Cannot hold out validation_size={validation_size} images of the {builder.name!r} split "
            f"{split!r} stratified by class: {error}"
        ) from error
    return np.asarray(positions, dtype=np.int64)


def _select(numbered: tf.data.Dataset, selected: tf.Tensor) -> tf.data.Dataset:
    """The examples of an enumerated dataset whose position is true in `selected`, without the position."""

    def is_selected(position: tf.Tensor, example: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        return selected[position]

    def drop_position(
        position: tf.Tensor, example: tuple[tf.Tensor, tf.Tensor]
    ) -> tuple[tf.Tensor, tf.Tensor]:
        return example

    return numbered.filter(is_selected).map(drop_position)


def _decoded(dataset: tf.data.Dataset, image_feature: tfds.features.Image) -> tf.data.Dataset:
    """Decodes the encoded images of `(image, label)` pairs as the tfds feature does."""
    return dataset.map(
        lambda image, label: (image_feature.decode_example(image), label), num_parallel_calls=tf.data.AUTOTUNE
    )
