"""tensorflow-datasets pipelines (CIFAR, ImageNet 64×64) and probe sets, on tfds mock data: no download."""

import contextlib
import zlib

import numpy as np
import pytest
import requests
import tensorflow as tf
import tensorflow_datasets as tfds
from sklearn.model_selection import train_test_split

import keras_sage
from keras_sage.datasets import (
    DatasetNotAvailableError,
    TFDSSplits,
    cifar10,
    cifar100,
    imagenet64,
    probe_set,
    standardize,
    vgg_preprocessing,
)
from keras_sage.datasets.preprocessing import vgg_shorter_sides
from keras_sage.datasets.tfds_splits import tfds_splits

NUM_EXAMPLES = 40


@contextlib.contextmanager
def balanced_mock_data(num_examples: int):
    """`tfds.testing.mock_data` with examples drawn by numpy (fast): random images, classes equally often.

    Each split has its own fixed examples; images of unknown size (imagenet2012) are 90×120.
    """

    def as_dataset(builder, split, decoders=None, read_config=None, **kwargs):
        features = builder.info.features
        shape = tuple(
            size or default for size, default in zip(features["image"].shape, (90, 120, 3), strict=True)
        )
        rng = np.random.default_rng(zlib.crc32(str(split).encode()))
        images = rng.integers(0, 256, (num_examples, *shape), dtype=np.uint8)
        labels = rng.permutation(np.arange(num_examples) % features["label"].num_classes)
        examples = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
        if decoders and "image" in decoders:  # undecoded images: their encoded bytes, as tfds stores them
            examples = examples.map(lambda example: {**example, "image": tf.io.encode_png(example["image"])})
        return examples

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        yield


def as_arrays(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """All the images and labels of a batched dataset."""
    images, labels = zip(*dataset.as_numpy_iterator(), strict=True)
    return np.concatenate(images), np.concatenate(labels)


def raw_examples(name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The examples of a (mocked) tfds split in their on-disk order, undecoded by any preprocessing."""
    return as_arrays(tfds.load(name, split=split, shuffle_files=False, as_supervised=True).batch(64))


def sorted_rows(images: np.ndarray) -> list[bytes]:
    return sorted(image.tobytes() for image in images)


def unprocessed_splits(name: str, validation_size: int, seed: int, stratify: bool) -> TFDSSplits:
    """The splits of `name` with no preprocessing, so their images can be compared with the originals."""
    return tfds_splits(
        tfds.builder(name),
        preprocessing=lambda image, training: tf.cast(image, tf.float32),
        input_shape=(32, 32, 3),
        batch_size=8,
        validation_size=validation_size,
        seed=seed,
        cache=True,
        stratify=stratify,
    )


@pytest.fixture
def mock_tfds():
    with balanced_mock_data(NUM_EXAMPLES):
        yield


@pytest.mark.parametrize("stratify", [True, False])
def test_validation_is_the_documented_seeded_choice_of_positions(stratify):
    with balanced_mock_data(200):
        images, labels = raw_examples("cifar10")
        splits = unprocessed_splits("cifar10", validation_size=50, seed=3, stratify=stratify)
        validation, validation_labels = as_arrays(splits.validation)
        train, _ = as_arrays(splits.train)
        again, _ = as_arrays(unprocessed_splits("cifar10", 50, seed=3, stratify=stratify).validation)
        other, _ = as_arrays(unprocessed_splits("cifar10", 50, seed=4, stratify=stratify).validation)
    if stratify:
        _, chosen = train_test_split(np.arange(200), test_size=50, stratify=labels, random_state=3)
        # Each class keeps its share: a quarter of its images, give or take one.
        assert np.abs(np.bincount(validation_labels, minlength=10) - np.bincount(labels) / 4).max() <= 1
    else:
        chosen = np.random.default_rng(3).choice(200, 50, replace=False)
    # Validation: the chosen positions, in on-disk order; training: every other image, each once.
    images = images.astype(np.float32)
    np.testing.assert_array_equal(validation, images[np.sort(chosen)])
    assert sorted_rows(train) == sorted_rows(np.delete(images, chosen, axis=0))
    assert (splits.train_size, splits.validation_size) == (150, 50)
    assert not set(sorted_rows(train)) & set(sorted_rows(validation))
    np.testing.assert_array_equal(again, validation)
    assert sorted_rows(other) != sorted_rows(validation)


def test_cifar100_pipelines_preprocess_batch_and_label():
    with balanced_mock_data(1000):
        images, labels = raw_examples("cifar100")
        test_images, _ = raw_examples("cifar100", "test")
        splits = cifar100(batch_size=64, validation_size=100, seed=0)
        validation, validation_labels = as_arrays(splits.validation)
        test, test_labels = as_arrays(splits.test)
        first, first_labels = as_arrays(splits.train)
        second, _ = as_arrays(splits.train)
        validation_batches = [int(batch[1].shape[0]) for batch in splits.validation]
        train_batches = [int(batch[1].shape[0]) for batch in splits.train]
    assert isinstance(splits, TFDSSplits)
    assert splits.num_classes == 100 and splits.input_shape == (32, 32, 3)
    assert validation_batches == [64, 36] and train_batches == [64] * 14 + [4]

    # Evaluation: standardized originals, in order; per-image mean 0 and standard deviation 1.
    _, chosen = train_test_split(np.arange(1000), test_size=100, stratify=labels, random_state=0)
    chosen = np.sort(chosen)
    np.testing.assert_allclose(validation, standardize(images[chosen]).numpy(), atol=1e-6)
    np.testing.assert_array_equal(validation_labels, labels[chosen])
    np.testing.assert_allclose(validation.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(validation.std(axis=(1, 2, 3)), 1.0, atol=1e-3)
    np.testing.assert_allclose(test, standardize(test_images).numpy(), atol=1e-6)
    assert test_labels.dtype == np.int64 and test_labels.min() >= 0 and test_labels.max() < 100

    # Training: augmented (almost no image is a standardized original) and different on every pass.
    assert first.shape == (900, 32, 32, 3) and first.dtype == np.float32
    originals = set(sorted_rows(standardize(images).numpy()))
    assert (
        sum(row in originals for row in sorted_rows(first)) <= 20
    )  # 1 in 162 crops and flips is the identity
    assert sorted_rows(first) != sorted_rows(second)
    assert sorted(first_labels) == sorted(np.delete(labels, chosen))


def test_cifar10_rejects_validation_sizes_it_cannot_hold_out(mock_tfds):
    with pytest.raises(ValueError, match=r"validation_size must be between 1 and 39"):
        cifar10(validation_size=NUM_EXAMPLES)
    with pytest.raises(ValueError, match=r"validation_size=5 .* stratified by class"):
        cifar10(validation_size=5)  # fewer than one image per class


def test_vgg_preprocessing_scales_the_paper_recipe_to_64_pixels():
    assert vgg_shorter_sides(224) == (256, 512, 256)
    assert vgg_shorter_sides(64) == (73, 146, 73)
    image = tf.random.stateless_uniform((100, 200, 3), seed=(1, 2), maxval=255.0)
    # Evaluation: shorter side to 73 (the longer to 146), central 64×64 crop, standardized.
    resized = tf.image.resize(image, (73, 146), method="bilinear", antialias=True)
    expected = standardize(resized[4:68, 41:105])
    np.testing.assert_allclose(vgg_preprocessing(image, training=False), expected, atol=1e-5)
    # Training: a random scale, crop and flip; every output is 64×64 and standardized.
    outputs = np.stack([vgg_preprocessing(image, training=True).numpy() for _ in range(4)])
    assert outputs.shape == (4, 64, 64, 3)
    np.testing.assert_allclose(outputs.std(axis=(1, 2, 3)), 1.0, atol=1e-3)
    assert len(set(sorted_rows(outputs))) == 4


def test_imagenet64_holds_out_training_images_and_tests_on_the_official_validation(mock_tfds):
    images, _ = raw_examples("imagenet_resized/64x64")
    splits = imagenet64(batch_size=8, validation_size=6, seed=1, shuffle_buffer=16)
    assert splits.num_classes == 1000 and splits.input_shape == (64, 64, 3)
    assert (splits.train_size, splits.validation_size) == (NUM_EXAMPLES - 6, 6)
    chosen = np.sort(np.random.default_rng(1).choice(NUM_EXAMPLES, 6, replace=False))
    validation, _ = as_arrays(splits.validation)
    expected = np.stack([vgg_preprocessing(image, training=False).numpy() for image in images[chosen]])
    np.testing.assert_allclose(validation, expected, atol=1e-5)
    train, _ = as_arrays(splits.train)
    assert train.shape == (NUM_EXAMPLES - 6, 64, 64, 3)
    test, _ = as_arrays(splits.test)
    assert test.shape == (NUM_EXAMPLES, 64, 64, 3)  # tfds's mock yields NUM_EXAMPLES for every split
    # imagenet2012: images of any size, to the same 64×64 crops.
    full_size = imagenet64(source="imagenet2012", batch_size=8, validation_size=6, shuffle_buffer=16)
    assert next(iter(full_size.train))[0].shape == (8, 64, 64, 3)
    with pytest.raises(ValueError, match="source"):
        imagenet64(source="imagenet")


def test_absent_data_without_download_names_data_set_folder_and_remedies(tmp_path):
    with pytest.raises(DatasetNotAvailableError) as raised:
        cifar100(tmp_path, download=False)
    message = str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)
    assert "'cifar100'" in message and repr(str(tmp_path)) in message and "download=False" in message
    assert "tfds build cifar100 --data_dir" in message and "keras_sage.datasets.image_folder" in message


def test_failed_download_becomes_one_clear_error(tmp_path, monkeypatch):
    def no_network(self, *args, **kwargs):
        raise requests.exceptions.ConnectionError("Max retries exceeded with url: cifar-10-binary.tar.gz")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
    with pytest.raises(DatasetNotAvailableError, match="the download failed") as raised:
        cifar10(tmp_path)
    assert isinstance(raised.value.__cause__, requests.exceptions.ConnectionError)
    assert "tfds build cifar10" in str(raised.value)


def test_imagenet2012_without_archives_says_where_to_put_them(tmp_path):
    # tfds itself raises here (its manual folder is empty); nothing is downloaded.
    with pytest.raises(DatasetNotAvailableError) as raised:
        imagenet64(tmp_path, source="imagenet2012")
    message = str(raised.value)
    assert "ILSVRC2012_img_train.tar" in message and "ILSVRC2012_img_val.tar" in message
    assert f"{tmp_path}/downloads/manual" in message and "source='imagenet2012'" in message


def labelled_dataset(labels: list[int], seed: int = 0) -> tuple[tf.data.Dataset, np.ndarray]:
    images = np.random.default_rng(seed).normal(size=(len(labels), 4, 4, 3)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((images, np.array(labels, np.int64))), images


def reference_probe_positions(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """The documented choice, computed over the whole dataset at once: smallest keys of each class."""
    keys = np.random.default_rng(seed).random(len(labels))
    chosen = [
        np.flatnonzero(labels == c)[np.argsort(keys[labels == c])[:per_class]] for c in np.unique(labels)
    ]
    return np.concatenate([np.sort(positions) for positions in chosen])


def test_probe_set_is_balanced_sorted_and_the_documented_choice():
    labels = np.random.default_rng(5).permutation(np.repeat(np.arange(4), [9, 7, 8, 10]))
    dataset, images = labelled_dataset(labels.tolist())
    for source in (dataset, dataset.batch(5)):
        probe_images, probe_labels = probe_set(source, n=20, seed=2, num_classes=4)
        positions = reference_probe_positions(labels, per_class=5, seed=2)
        np.testing.assert_array_equal(probe_labels, np.repeat(np.arange(4), 5))
        np.testing.assert_array_equal(probe_images, images[positions])
        assert probe_images.dtype == np.float32 and probe_labels.dtype == np.int64
    again = probe_set(dataset.batch(3), n=20, seed=2)  # number of classes from the largest label
    assert again[0].tobytes() == probe_images.tobytes()
    other, _ = probe_set(dataset, per_class=5, seed=3)
    assert other.tobytes() != probe_images.tobytes()
    assert probe_set(dataset, per_class=7, seed=0)[0].shape == (28, 4, 4, 3)


def test_probe_set_of_splits_is_their_whole_stratified_validation_split():
    with balanced_mock_data(100):
        splits = cifar10(batch_size=16, validation_size=60)
        images, labels = as_arrays(splits.validation)
        probe_images, probe_labels = probe_set(splits, n=60, seed=4)
    # As in the paper, the probe set is all the validation images: 6 of each class, in dataset order.
    order = np.argsort(labels, kind="stable")
    np.testing.assert_array_equal(probe_labels, labels[order])
    np.testing.assert_array_equal(probe_images, images[order])
    np.testing.assert_array_equal(np.bincount(probe_labels), [6] * 10)


def test_probe_set_errors_name_the_problem():
    dataset, _ = labelled_dataset([0, 0, 0, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=r"n=10"):
        probe_set(dataset, n=10)
    with pytest.raises(ValueError, match=r"Class 1 has only 2 images in the dataset, fewer than per_class=3"):
        probe_set(dataset, n=9)
    with pytest.raises(ValueError, match=r"Label 2 is outside \[0, 2\)"):
        probe_set(dataset, n=4, num_classes=2)
    with pytest.raises(ValueError, match=r"\(image, label\) pairs"):
        probe_set(dataset.map(lambda image, label: {"image": image, "label": label}), n=3)


def test_public_names():
    assert keras_sage.cifar100 is cifar100 and keras_sage.probe_set is probe_set
    assert issubclass(keras_sage.DatasetNotAvailableError, FileNotFoundError)
