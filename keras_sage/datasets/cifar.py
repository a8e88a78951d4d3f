"""CIFAR-10 and CIFAR-100 through tensorflow-datasets, split and preprocessed as in the paper.

The paper (supplement, "Datasets and Preprocessing") splits CIFAR's 50,000 training images "by random
selection" into 45,000 training and 5,000 validation images, and preprocesses them as
`keras_sage.datasets.cifar_preprocessing` does. `cifar10()` and `cifar100()` return those splits and the
official test split as batched, prefetched `tf.data` pipelines in a `TFDSSplits`.

How the held-out split is drawn, and why it is the same on every run and machine: the training split is
read with `shuffle_files=False`, so tfds yields its examples in their on-disk order, which tfds fixes when
it prepares the data set (it orders the examples by a hash of their keys, not by the order of the files
or of the machine's threads). Each example is numbered by its position in that order. The validation
examples are a random choice of positions, stratified by class: `sklearn.model_selection.train_test_split`
over the positions with `stratify=labels`, `test_size=validation_size`, `random_state=seed`, after one
pass that reads only the labels. Stratifying gives the validation split the class shares of the training
split (50 images of each CIFAR-100 class, 500 of each CIFAR-10 class), so the paper's probe set, the
5,000 validation images, is also class-balanced (`keras_sage.datasets.probe_set(splits)` returns all of
them). The choice depends only on `seed` and the labels in on-disk order, the two splits are disjoint by
construction, and tfds's file shuffling plays no part: the examples are numbered on the unshuffled read,
before the training images are shuffled.

The machinery (`TFDSSplits`, `DatasetNotAvailableError`, `tfds_splits`) is in
`keras_sage.datasets.tfds_splits`, shared with `keras_sage.datasets.imagenet64`.
"""

from __future__ import annotations

import os

from keras_sage.datasets.preprocessing import cifar_preprocessing
from keras_sage.datasets.tfds_splits import DEFAULT_BATCH_SIZE, TFDSSplits, prepared_builder, tfds_splits

# The paper's split of CIFAR's 50,000 training images: 45,000 for training, 5,000 for validation.
CIFAR_VALIDATION_SIZE = 5000
CIFAR_INPUT_SHAPE = (32, 32, 3)


def cifar10(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    validation_size: int = CIFAR_VALIDATION_SIZE,
    seed: int = 0,
    download: bool = True,
    cache: bool = True,
) -> TFDSSplits:
    """CIFAR-10 (tfds `cifar10`) with the paper's 45,000 / 5,000 split and preprocessing.

    See `cifar100`, which takes the same arguments; the module docstring says how the split is drawn.

    Example:

    ```python
    splits = cifar10(data_dir="/data/tensorflow_datasets", download=False)
    model.fit(splits.train, validation_data=splits.validation, epochs=2)
    ```
    """
    return _cifar("cifar10", data_dir, batch_size, validation_size, seed, download, cache)


def cifar100(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    validation_size: int = CIFAR_VALIDATION_SIZE,
    seed: int = 0,
    download: bool = True,
    cache: bool = True,
) -> TFDSSplits:
    """CIFAR-100 (tfds `cifar100`, fine labels) with the paper's 45,000 / 5,000 split and preprocessing.

    Training images are zero-padded to 40×40, cropped back to 32×32 at random, flipped at random and
    standardized per image; validation and test images are only standardized
    (`keras_sage.datasets.cifar_preprocessing`). The validation images are a random choice, fixed by
    `seed` and stratified by class, of the training split (see the module docstring).

    Args:
        data_dir: The tensorflow-datasets folder (`<data_dir>/cifar100/<version>`); tfds's default
            (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`) if `None`.
        batch_size: Images per batch.
        validation_size: Training images held out for validation (the paper's 5,000).
        seed: Seed of the validation choice and of the training shuffle.
        download: Whether to download and prepare the data set when it is not in `data_dir`. With no
            network, tfds retries for about 3 minutes before the error; `download=False` fails at once.
        cache: Whether to keep the decoded training and test images in memory after their first pass
            (about 170 MB), so that later epochs read no files; the validation images (preprocessed,
            about 60 MB) are always kept.

    Returns:
        A `TFDSSplits` of 32×32×3 images.

    Raises:
        DatasetNotAvailableError: If the data set is not in `data_dir` and `download` is false or the
            download fails; the message says how to provide it.
        ValueError: If `validation_size` is not between 1 and the number of training images − 1.

    Example:

    ```python
    splits = cifar100(data_dir="/data/tensorflow_datasets", seed=0)
    tuner.search(splits.train, validation_data=splits.validation)
    ```
    """
    return _cifar("cifar100", data_dir, batch_size, validation_size, seed, download, cache)


def _cifar(
    name: str,
    data_dir: str | os.PathLike[str] | None,
    batch_size: int,
    validation_size: int,
    seed: int,
    download: bool,
    cache: bool,
) -> TFDSSplits:
    builder = prepared_builder(name, data_dir, download=download, how_to_provide=_cifar_instructions(name))
    return tfds_splits(
        builder,
        preprocessing=cifar_preprocessing,
        input_shape=CIFAR_INPUT_SHAPE,
        batch_size=batch_size,
        validation_size=validation_size,
        seed=seed,
        cache=cache,
        stratify=True,
    )


def _cifar_instructions(name: str) -> str:
    return (
        f"or read CIFAR from class-named image folders (`<folder>/<class>/<image>`) with "
        f"`keras_sage.datasets.image_folder(<folder>, validation_split=0.1, subset='both')` instead of "
        f"`keras_sage.datasets.{name}()`."
    )
