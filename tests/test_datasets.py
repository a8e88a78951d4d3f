import math
import os
import shutil
import tarfile
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from keras_sage.datasets import cifar_preprocessing, digits, image_folder

CIFAR10_TARBALL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar10-jpeg.tar.gz")
CIFAR10_CACHE = "/tmp/keras-sage-test-cache/cifar10-jpeg"


def rows_with_labels(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    return sorted(image.tobytes() + bytes([label]) for image, label in zip(images, labels, strict=True))


def test_digits_splits_partition_the_data_set():
    data = digits(image_size=8, standardized=False, probe_size=100, validation_fraction=0.25)
    bunch = load_digits()
    assert len(data.y_train) + len(data.y_val) + len(data.y_probe) == len(bunch.target) == 1797
    assert len(data.y_probe) == 100
    assert len(data.y_val) == math.ceil(0.25 * 1697)  # scikit-learn rounds the held-out share up
    every_split = rows_with_labels(
        np.concatenate([data.x_train, data.x_val, data.x_probe]),
        np.concatenate([data.y_train, data.y_val, data.y_probe]),
    )
    original = rows_with_labels(bunch.images[..., np.newaxis].astype(np.float32) / 16.0, bunch.target)
    assert every_split == original


def test_digits_probe_is_balanced_and_validation_stratified():
    data = digits(probe_size=50)
    assert np.bincount(data.y_probe).tolist() == [5] * 10
    assert data.num_classes == 10
    assert data.class_names[3] == "3"
    train_share = np.bincount(data.y_train) / len(data.y_train)
    val_share = np.bincount(data.y_val) / len(data.y_val)
    np.testing.assert_allclose(val_share, train_share, atol=0.01)


def test_digits_is_fixed_by_the_seed():
    first, again, other = digits(seed=3), digits(seed=3), digits(seed=4)
    np.testing.assert_array_equal(first.x_probe, again.x_probe)
    np.testing.assert_array_equal(first.y_train, again.y_train)
    np.testing.assert_array_equal(first.x_val, again.x_val)
    assert not np.array_equal(first.x_probe, other.x_probe)


def test_digits_resized_bilinearly_and_standardized():
    raw = digits(image_size=32, standardized=False, channels=3)
    assert raw.x_train.shape[1:] == (32, 32, 3) and raw.x_train.dtype == np.float32
    assert raw.y_train.dtype == np.int64
    np.testing.assert_array_equal(raw.x_train[..., 0], raw.x_train[..., 2])
    assert raw.x_train.min() == 0.0 and raw.x_train.max() == 1.0
    # Same seed, same split: compare with TensorFlow's bilinear resize of the 8x8 originals.
    small = digits(image_size=8, standardized=False)
    expected = tf.image.resize(small.x_probe, (32, 32), method="bilinear").numpy()
    np.testing.assert_allclose(raw.x_probe[..., :1], expected, atol=1e-6)

    standardized = digits(image_size=16)
    assert standardized.x_train.shape[1:] == (16, 16, 1)
    np.testing.assert_allclose(standardized.x_train.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(standardized.x_train.std(axis=(1, 2, 3)), 1.0, atol=1e-4)


def test_digits_rejects_bad_arguments():
    with pytest.raises(ValueError, match="probe_size"):
        digits(probe_size=15)
    with pytest.raises(ValueError, match="image_size"):
        digits(image_size=4)
    with pytest.raises(ValueError, match="channels"):
        digits(channels=2)


def test_cifar_preprocessing_evaluation_only_standardizes():
    image = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3)).astype(np.uint8)
    result = cifar_preprocessing(tf.constant(image), training=False).numpy()
    pixels = image.astype(np.float64)
    np.testing.assert_allclose(result, (pixels - pixels.mean()) / pixels.std(), atol=1e-4)


def test_cifar_preprocessing_training_is_a_padded_random_crop_with_flips():
    image = np.random.default_rng(1).uniform(1, 255, size=(32, 32, 3)).astype(np.float32)
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    candidates = {}
    for top in range(9):
        for left in range(9):
            crop = padded[top : top + 32, left : left + 32]
            for flipped, window in [(False, crop), (True, crop[:, ::-1])]:
                candidates[(top, left, flipped)] = (window - window.mean()) / window.std()
    tf.random.set_seed(0)
    seen = set()
    for _ in range(30):
        result = cifar_preprocessing(tf.constant(image), training=True).numpy()
        assert result.shape == (32, 32, 3)
        matches = [key for key, window in candidates.items() if np.allclose(result, window, atol=1e-4)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 10
    assert {flipped for _, _, flipped in seen} == {False, True}


def test_cifar_preprocessing_in_a_dataset_keeps_static_shape():
    dataset = tf.data.Dataset.from_tensor_slices(
        np.zeros((4, 16, 16, 1), np.float32) + np.arange(4)[:, None, None, None]
    )
    mapped = dataset.map(lambda image: cifar_preprocessing(image, training=True))
    assert mapped.element_spec.shape == (16, 16, 1)


def write_image_folder(root, colours: dict[str, tuple[int, int, int]], per_class: int = 3, size: int = 10):
    for name, colour in colours.items():
        os.makedirs(root / name)
        for index in range(per_class):
            pixels = np.broadcast_to(np.array(colour, np.uint8), (size, size, 3))
            encoded = tf.io.encode_png(pixels) if index % 2 else tf.io.encode_jpeg(pixels, quality=100)
            suffix = "png" if index % 2 else "jpg"
            tf.io.write_file(str(root / name / f"{index}.{suffix}"), encoded)


def test_image_folder_reads_labels_from_folder_names(tmp_path):
    write_image_folder(tmp_path, {"blue": (0, 0, 255), "red": (255, 0, 0)})
    dataset = image_folder(tmp_path, image_size=(8, 8), batch_size=4, preprocessing=None)
    assert dataset.class_names == ["blue", "red"]
    images, labels = (np.concatenate(parts) for parts in zip(*dataset.as_numpy_iterator(), strict=True))
    assert images.shape == (6, 8, 8, 3) and np.bincount(labels).tolist() == [3, 3]
    red_channel = images[..., 0].mean(axis=(1, 2))
    np.testing.assert_allclose(red_channel, np.where(labels == 1, 255.0, 0.0), atol=2.0)


def test_image_folder_both_subsets_with_cifar_preprocessing(tmp_path):
    write_image_folder(tmp_path, {"a": (10, 200, 30), "b": (250, 40, 90)}, per_class=5)
    train, val = image_folder(tmp_path, image_size=(8, 8), validation_split=0.4, subset="both", seed=1)
    train_images = np.concatenate([images for images, _ in train.as_numpy_iterator()])
    val_images = np.concatenate([images for images, _ in val.as_numpy_iterator()])
    assert len(train_images) + len(val_images) == 10 and len(val_images) == 4
    np.testing.assert_allclose(val_images.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    assert train.class_names == val.class_names == ["a", "b"]


def test_image_folder_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match="missing"):
        image_folder(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "stray.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.*no class folders"):
        image_folder(empty)


def extracted_cifar10() -> str:
    """Extracts the shared CIFAR-10 JPEG tarball once into /tmp (never into the repository)."""
    if not os.path.isdir(CIFAR10_CACHE):
        if not os.path.exists(CIFAR10_TARBALL):
            pytest.skip(f"{CIFAR10_TARBALL} is not available")
        os.makedirs(os.path.dirname(CIFAR10_CACHE), exist_ok=True)
        partial = tempfile.mkdtemp(dir=os.path.dirname(CIFAR10_CACHE))
        with tarfile.open(CIFAR10_TARBALL) as archive:
            archive.extractall(partial, filter="data")
        try:
            os.replace(partial, CIFAR10_CACHE)
        except OSError:  # another process finished first
            shutil.rmtree(partial)
    return CIFAR10_CACHE


@pytest.mark.slow
def test_image_folder_reads_real_cifar10():
    test_folder = os.path.join(extracted_cifar10(), "test")
    dataset = image_folder(test_folder, batch_size=500, shuffle=False)
    assert dataset.class_names[:3] == ["airplane", "automobile", "bird"] and len(dataset.class_names) == 10
    labels = np.concatenate([labels for _, labels in dataset.as_numpy_iterator()])
    assert np.bincount(labels).tolist() == [1000] * 10
    images, _ = next(iter(dataset))
    assert images.shape == (500, 32, 32, 3)
    np.testing.assert_allclose(images.numpy().std(axis=(1, 2, 3)), 1.0, atol=1e-3)
