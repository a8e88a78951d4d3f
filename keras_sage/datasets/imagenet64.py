"""ImageNet at 64×64 through tensorflow-datasets, for the paper's search with a neural teacher (§4.4).

Two sources, chosen by the `source` argument of `imagenet64`:

- `"imagenet_resized"` (default): tfds `imagenet_resized/64x64`, ImageNet's 1,281,167 training and
  50,000 validation images downsampled to 64×64 (Chrabaszcz et al., 2017). tfds downloads it from
  image-net.org when it is not in `data_dir`.
- `"imagenet2012"`: tfds `imagenet2012`, the full-size images. tfds cannot download them: put
  `ILSVRC2012_img_train.tar` and `ILSVRC2012_img_val.tar` (from https://image-net.org, after
  registration) in the manual folder, `<data_dir>/downloads/manual` unless `manual_dir` says otherwise,
  and tfds prepares the data set from them without network.

Splits, as in the paper: `validation` is `validation_size` (50,000) images held out from ImageNet's
training split, chosen at random by `seed` among the positions in tfds's fixed on-disk order, as
`keras_sage.datasets.cifar` describes, so the same on every run and machine. Unlike CIFAR's, the choice is
not stratified by class (that would need a pass over all 1.28 million training images): the positions
are `numpy.random.default_rng(seed).choice(num_examples, validation_size, replace=False)`, about 50 images
of each class. `test` is ImageNet's official validation split.

Preprocessing: `keras_sage.datasets.vgg_preprocessing` at 64×64, the paper's VGG recipe with every size
multiplied by 64/224. Training: shorter side resized (aspect ratio kept, bilinear, antialiased) to a
size drawn uniformly from the integers 73 to 146 (256 and 512 scaled), a random 64×64 crop, a random left
to right flip. Evaluation: shorter side resized to 73 (256 scaled), the central 64×64 crop. Every crop
is then standardized per image to zero mean and unit standard deviation, as CIFAR images are.

Shuffling: the training images are numbered in tfds's on-disk order (`shuffle_files=False`), which tfds
fixes by a hash of each example's key, so it is already mixed across classes; a buffer of
`shuffle_buffer` images reshuffles it on every pass. ImageNet does not fit in memory, so the training and
test images are read from the files on every pass unless `cache=True`. The validation images are kept in
memory after their first pass, preprocessed (float32, about 2.5 GB for 50,000 at 64×64×3): finding them
again would mean reading the whole training split.
"""

from __future__ import annotations

import functools
import os

import tensorflow_datasets as tfds

from keras_sage._validation import check_choice, check_positive_int
from keras_sage.datasets.preprocessing import vgg_preprocessing
from keras_sage.datasets.tfds_splits import DEFAULT_BATCH_SIZE, TFDSSplits, prepared_builder, tfds_splits

IMAGE_SIZE = 64
# §4.4: "We held out 50,000 of the images from the original Imagenet training set as the validation set".
IMAGENET_VALIDATION_SIZE = 50_000
DEFAULT_SHUFFLE_BUFFER = 10_000
# `source` argument -> tfds name.
SOURCES = {"imagenet_resized": "imagenet_resized/64x64", "imagenet2012": "imagenet2012"}
ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


def imagenet64(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    source: str = "imagenet_resized",
    manual_dir: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    validation_size: int = IMAGENET_VALIDATION_SIZE,
    seed: int = 0,
    download: bool = True,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    cache: bool = False,
) -> TFDSSplits:
    """ImageNet at 64×64 with the paper's held-out validation images and VGG-style preprocessing.

    The module docstring gives the sources, the split and the exact preprocessing.

    Args:
        data_dir: The tensorflow-datasets folder; tfds's default (`~/tensorflow_datasets` or
            `$TFDS_DATA_DIR`) if `None`.
        source: `"imagenet_resized"` (tfds `imagenet_resized/64x64`) or `"imagenet2012"` (tfds
            `imagenet2012`, prepared from the archives in `manual_dir`).
        manual_dir: Folder with ImageNet's archives for `source="imagenet2012"`; tfds's default,
            `<data_dir>/downloads/manual`, if `None`.
        batch_size: Images per batch.
        validation_size: Training images held out for validation (the paper's 50,000).
        seed: Seed of the validation choice and of the training shuffle.
        download: Whether to download (or, for `imagenet2012`, prepare from the archives) the data set
            when it is not in `data_dir`. With no network, tfds retries for minutes before the error;
            `download=False` fails at once.
        shuffle_buffer: Images in the training shuffle buffer.
        cache: Whether to keep the decoded training and test images in memory after their first pass
            (only for subsets that fit in memory); the validation images are always kept.

    Returns:
        A `TFDSSplits` of 64×64×3 images; `test` is ImageNet's official validation split.

    Raises:
        DatasetNotAvailableError: If the data set is not in `data_dir` and `download` is false or the
            download or preparation fails; the message says how to provide it.
        ValueError: If `source` is unknown or `validation_size` is out of range.

    Example:

    ```python
    splits = imagenet64("/data/tensorflow_datasets", source="imagenet2012")
    tuner.search(splits.train, validation_data=splits.validation, steps_per_epoch=2000)
    ```
    """
    check_choice("source", source, tuple(SOURCES))
    if manual_dir is not None and source != "imagenet2012":
        raise ValueError(f"manual_dir is only read for source='imagenet2012', not source={source!r}.")
    check_positive_int("shuffle_buffer", shuffle_buffer)
    name = SOURCES[source]
    download_config = None
    if manual_dir is not None:
        download_config = tfds.download.DownloadConfig(manual_dir=os.path.expanduser(os.fspath(manual_dir)))
    builder = prepared_builder(
        name,
        data_dir,
        download=download,
        how_to_provide=_instructions(manual_dir),
        download_config=download_config,
    )
    return tfds_splits(
        builder,
        preprocessing=functools.partial(vgg_preprocessing, image_size=IMAGE_SIZE),
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        batch_size=batch_size,
        validation_size=validation_size,
        seed=seed,
        cache=cache,
        stratify=False,
        shuffle_buffer=shuffle_buffer,
        train_split="train",
        test_split="validation",
    )


def _instructions(manual_dir: str | os.PathLike[str] | None) -> str:
    folder = "'{data_dir}/downloads/manual'" if manual_dir is None else repr(os.fspath(manual_dir))
    return (
        f"or put {' and '.join(ARCHIVES)} (from https://image-net.org) in {folder} and call "
        f"`keras_sage.datasets.imagenet64(data_dir, source='imagenet2012')`, which prepares ImageNet "
        f"from them with no network; or read class-named image folders (`<folder>/<class>/<image>`) with "
        f"`keras_sage.datasets.image_folder(<folder>, image_size=(64, 64), "
        f"preprocessing=keras_sage.datasets.vgg_preprocessing)`."
    )
