"""layer_features: batched, feature-subsampled layer outputs equal the full outputs at the chosen indices."""

import keras
import numpy as np
import pytest

from keras_sage.features import layer_feature_counts, layer_features
from keras_sage.rsa import feature_subsample_indices


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(3)
    image = keras.Input((6, 6, 2))
    first = keras.layers.Conv2D(4, 3, padding="same", name="first")(image)
    second = keras.layers.Dense(5, name="second")(keras.layers.Flatten()(first))
    return keras.Model(image, second)


def test_counts_and_subsampled_features_match_the_full_outputs(model):
    images = np.random.default_rng(0).normal(size=(11, 6, 6, 2)).astype(np.float32)
    assert layer_feature_counts(model, ["first", "second"]) == [144, 5]
    full = keras.Model(model.input, [model.get_layer("first").output, model.get_layer("second").output])
    full_first, full_second = (np.asarray(output) for output in full(images))

    kept = feature_subsample_indices(144, 20, 7)
    for batch_size in (4, 11):  # a graph traced once for batches of 4, 4 and 3; one eager call
        first, second = layer_features(
            model, ["first", "second"], images, max_features=20, seed=7, batch_size=batch_size
        )
        np.testing.assert_allclose(first, full_first.reshape(11, -1)[:, kept], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(second, full_second, rtol=1e-6, atol=1e-6)  # 5 ≤ 20 features: all kept


def test_rows_and_dtype_are_applied_inside_the_forward_pass(model):
    images = np.random.default_rng(1).normal(size=(11, 6, 6, 2)).astype(np.float32)
    full_first = np.asarray(keras.Model(model.input, model.get_layer("first").output)(images))
    expected = full_first.reshape(11, -1)[:, feature_subsample_indices(144, 20, 7)]
    for batch_size in (4, 11):  # a graph; one eager call
        (first,) = layer_features(
            model,
            ["first"],
            images,
            max_features=20,
            seed=7,
            batch_size=batch_size,
            rows=lambda features: features - features[:, :1],
            dtype="float16",
        )
        assert first.dtype == np.float16
        np.testing.assert_allclose(first, expected - expected[:, :1], rtol=2e-3, atol=2e-3)
    with pytest.raises(ValueError, match="dtype must be one of 'float32', 'float16', got 'int8'"):
        layer_features(model, ["first"], images, dtype="int8")


def test_preprocessing_is_applied_to_each_batch(model):
    images = np.zeros((3, 6, 6, 2), dtype=np.uint8)
    (plain,) = layer_features(model, ["second"], images, max_features=None)
    (shifted,) = layer_features(
        model, ["second"], images, max_features=None, preprocessing=lambda b: b.astype("float32") + 1
    )
    assert not np.allclose(plain, shifted)


def test_unknown_layer_names_the_model_and_layer(model):
    with pytest.raises(ValueError, match="has no layer 'third'"):
        layer_feature_counts(model, ["third"])
